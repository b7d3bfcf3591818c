package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// DefaultSimStart is the simulated start time unless told otherwise: fixed,
// so that simulations are reproducible.
var DefaultSimStart = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// SimEvent is an event delivered At after the start of a simulation.
type SimEvent struct {
	At    time.Duration
	Event rules.Event
}

// SimOptions configure a simulation.
type SimOptions struct {
	Customer rules.Customer // the customer who enters (required: ID)
	Trigger  *rules.Event   // the trigger event; default: the playbook's trigger event, if any
	Events   []SimEvent     // events delivered as signals
	Start    time.Time      // default DefaultSimStart
	// Memory holds the simulated world; a fresh one when nil. The
	// customer is stored in it before the journey starts.
	Memory *activities.Memory
	// MaxRuns bounds the runs (continue-as-new) simulated; default 1000.
	MaxRuns int
	// Horizon is how much simulated time a journey may run; one still
	// running then (a subscription that lasts for years) stops there,
	// active (SimResult.Horizon). Default DefaultSimHorizon.
	Horizon time.Duration
}

// DefaultSimHorizon is the simulated time a journey may run: three years.
const DefaultSimHorizon = 3 * 365 * 24 * time.Hour

// SimResult is what a simulation did.
type SimResult struct {
	Start  time.Time
	Log    []StepLog     // every step log entry of every run, in order
	Result JourneyResult // zero when the journey failed
	Err    error         // why the journey failed, if it did
	Runs   int
	// RunEvents is the journey's estimate of each run's history length
	// (the SDK test environment has no real history).
	RunEvents []int
	Memory    *activities.Memory
	Final     State
	// Horizon: the journey was still running at the simulation's horizon.
	Horizon time.Duration
}

// Simulate runs the real Journey workflow for one customer in the SDK's
// test environment, with time skipping and in-memory activities: no server,
// no database. Continue-as-new is followed by starting the next run in a
// fresh environment at the time the last one stopped.
func Simulate(plan *engine.Plan, opts SimOptions) (*SimResult, error) {
	if opts.Customer.ID == "" {
		return nil, errors.New("simulate: the customer needs an id")
	}
	res := &SimResult{Start: opts.Start, Memory: opts.Memory}
	if res.Start.IsZero() {
		res.Start = DefaultSimStart
	}
	if res.Memory == nil {
		res.Memory = activities.NewMemory()
	}
	if opts.MaxRuns <= 0 {
		opts.MaxRuns = 1000
	}
	if opts.Horizon <= 0 {
		opts.Horizon = DefaultSimHorizon
	}
	res.Memory.Put(opts.Customer)
	in, err := Input(plan, opts.Customer.ID, simTrigger(plan, opts.Trigger, res.Start))
	if err != nil {
		return nil, err
	}
	at, lastSeq := res.Start, 0
	for res.Runs < opts.MaxRuns {
		res.Runs++
		next, now, state, err := simulateRun(in, at, res, opts.Events, res.Start.Add(opts.Horizon).Sub(at))
		if err != nil {
			return res, err
		}
		if res.Err != nil && temporal.IsTimeoutError(res.Err) && state.Status == activities.StatusActive {
			res.Err, res.Horizon = nil, opts.Horizon // still running at the horizon
		}
		for _, s := range state.Steps {
			if s.Seq > lastSeq {
				res.Log = append(res.Log, s)
				lastSeq = s.Seq
			}
		}
		res.RunEvents = append(res.RunEvents, state.EstimatedEvents)
		res.Final = state
		if next == nil {
			return res, nil
		}
		in, at = *next, now
	}
	return res, fmt.Errorf("simulate: still running after %d runs", opts.MaxRuns)
}

// simulateRun runs one workflow run starting at time at. It returns the
// input of the next run when the run continued as new, and the time it
// stopped.
func simulateRun(in JourneyInput, at time.Time, res *SimResult, events []SimEvent, left time.Duration) (*JourneyInput, time.Time, State, error) {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(at)
	env.SetWorkflowRunTimeout(max(left, time.Second))
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: WorkflowID(in.Playbook, in.CustomerID), TaskQueue: TaskQueue})
	Register(env, res.Memory)
	deliverEvents(env, in.CustomerID, at, res, events)
	env.ExecuteWorkflow(WorkflowName, in)
	var state State
	if v, err := env.QueryWorkflow(StateQuery); err != nil {
		return nil, at, state, fmt.Errorf("simulate: query state: %w", err)
	} else if err := v.Get(&state); err != nil {
		return nil, at, state, fmt.Errorf("simulate: decode state: %w", err)
	}
	if !env.IsWorkflowCompleted() {
		return nil, at, state, errors.New("simulate: the workflow did not complete")
	}
	werr := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if errors.As(werr, &can) {
		var next JourneyInput
		if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
			return nil, at, state, fmt.Errorf("simulate: decode continue-as-new input: %w", err)
		}
		return &next, env.Now(), state, nil
	}
	if werr != nil {
		res.Err = werr
		return nil, env.Now(), state, nil
	}
	if err := env.GetWorkflowResult(&res.Result); err != nil {
		return nil, env.Now(), state, fmt.Errorf("simulate: decode result: %w", err)
	}
	return nil, env.Now(), state, nil
}

// deliverEvents signals the events due in a run that starts at at, in
// time order, as the event API does: store the event (updating the
// profile), then signal the journey. Events are scheduled one time at a
// time, each delivery scheduling the next, because the SDK's test
// environment queues at most 1,000 callbacks registered ahead of the run.
func deliverEvents(env *testsuite.TestWorkflowEnvironment, customerID string, at time.Time, res *SimResult, events []SimEvent) {
	type due struct {
		when time.Time
		ev   rules.Event
	}
	var pending []due
	for _, ev := range events {
		when := res.Start.Add(ev.At)
		if when.Before(at) || (when.Equal(at) && at != res.Start) {
			continue // delivered in an earlier run
		}
		e := ev.Event
		if e.Time.IsZero() {
			e.Time = when
		}
		pending = append(pending, due{when, e})
	}
	sort.SliceStable(pending, func(a, b int) bool { return pending[a].when.Before(pending[b].when) })
	var schedule func(i int, now time.Time)
	schedule = func(i int, now time.Time) {
		if i >= len(pending) {
			return
		}
		env.RegisterDelayedCallback(func() {
			k := i
			for ; k < len(pending) && pending[k].when.Equal(pending[i].when); k++ {
				res.Memory.RecordEvent(customerID, pending[k].ev)
				env.SignalWorkflow(EventSignal, pending[k].ev)
			}
			schedule(k, pending[i].when)
		}, pending[i].when.Sub(now))
	}
	schedule(0, at)
}

// simTrigger is the trigger event of a simulation: the given one, or for
// an event trigger an event of that name at the start, whose ID names the
// start so that simulations sharing one Memory are distinct triggers.
func simTrigger(plan *engine.Plan, given *rules.Event, start time.Time) rules.Event {
	if given != nil {
		ev := *given
		if ev.Time.IsZero() {
			ev.Time = start
		}
		return ev
	}
	if ets := plan.Trigger.EventTriggers(); len(ets) > 0 {
		return rules.Event{ID: "sim-" + start.UTC().Format(time.RFC3339), Name: ets[0].Event, Time: start}
	}
	return rules.Event{}
}

// SimLine is one line of simulator output.
type SimLine struct {
	Elapsed time.Duration
	At      time.Time
	Step    string
	Action  string
	Detail  string
}

// MarshalJSON writes the elapsed time as a duration string ("72h0m0s").
func (l SimLine) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Elapsed string    `json:"elapsed"`
		At      time.Time `json:"at"`
		Step    string    `json:"step"`
		Action  string    `json:"action"`
		Detail  string    `json:"detail,omitempty"`
	}{"+" + l.Elapsed.String(), l.At, l.Step, l.Action, l.Detail})
}

// Lines turns the step log into output lines, with a final summary line.
func (r *SimResult) Lines() []SimLine {
	out := make([]SimLine, 0, len(r.Log)+1)
	for _, s := range r.Log {
		out = append(out, SimLine{Elapsed: s.At.Sub(r.Start), At: s.At, Step: s.StepID, Action: s.Kind, Detail: s.Detail})
	}
	return out
}

// String formats a line as "+<elapsed> <step> <action> <detail>".
func (l SimLine) String() string {
	s := fmt.Sprintf("+%s %s %s", l.Elapsed, l.Step, l.Action)
	if l.Detail != "" {
		s += " " + l.Detail
	}
	return s
}

// Summary is the closing line: outcome, runs, estimated history events and
// what the simulated world holds afterwards.
func (r *SimResult) Summary() string {
	total := 0
	for _, n := range r.RunEvents {
		total += n
	}
	status := outcomeDetail(r.Final.Status, r.Final.Reason)
	if r.Horizon > 0 {
		status += fmt.Sprintf(" (still running at the simulation's horizon, %s)", FormatDuration(r.Horizon))
	}
	if r.Final.Converted && r.Final.Status != activities.StatusConverted {
		status += ", goal reached"
	}
	return fmt.Sprintf("%s after %s: %d steps, %d sends (%d messages sent), %d run(s), ≈%d history events",
		status, r.end().Sub(r.Start), r.Final.Counters.Steps, r.Final.Counters.Sends, r.sent(), r.Runs, total)
}

func (r *SimResult) end() time.Time {
	if len(r.Log) == 0 {
		return r.Start
	}
	return r.Log[len(r.Log)-1].At
}

func (r *SimResult) sent() int {
	n := 0
	for _, m := range r.Memory.Messages() {
		if m.Status == activities.SendSent {
			n++
		}
	}
	return n
}

// Write prints the simulation, as text lines or (asJSON) one JSON object
// per line, the summary last.
func (r *SimResult) Write(w io.Writer, asJSON bool) error {
	var b strings.Builder
	for _, l := range r.Lines() {
		if asJSON {
			j, err := json.Marshal(l)
			if err != nil {
				return err
			}
			b.Write(j)
			b.WriteByte('\n')
			continue
		}
		b.WriteString(l.String())
		b.WriteByte('\n')
	}
	if asJSON {
		j, err := json.Marshal(map[string]any{
			"outcome": r.Final.Status, "reason": r.Final.Reason, "converted": r.Final.Converted, "elapsed": "+" + r.end().Sub(r.Start).String(),
			"steps": r.Final.Counters.Steps, "sends": r.Final.Counters.Sends, "sent": r.sent(), "runs": r.Runs, "history_events_estimate": r.RunEvents,
		})
		if err != nil {
			return err
		}
		b.Write(j)
		b.WriteByte('\n')
	} else {
		b.WriteString(r.Summary())
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// SampleCustomer is the customer simulations use when none is given: Ada,
// a gold-tier customer in Shanghai who reads Chinese and last bought 120
// days before the simulation starts at start.
func SampleCustomer(start time.Time) rules.Customer {
	return rules.Customer{
		ID: "c-42", Email: "ada@example.com", Phone: "+8613800000042", Name: "Ada",
		Locale: "zh", Timezone: "Asia/Shanghai", Tier: "gold", Stage: "active",
		Points: 1200, LifetimeValue: 1850, OrderCount: 9, AvgOrderValue: 205.5, PurchaseGap: 35,
		LastPurchaseAt: start.AddDate(0, 0, -120),
		Birthday:       time.Date(1990, 1, 12, 0, 0, 0, 0, time.UTC),
		SignupAt:       start.AddDate(-3, 0, 0),
		Tags:           []string{"newsletter"},
		Attrs:          map[string]any{"industry": "retail"},
	}
}
