// Package simulate runs one customer through a playbook in simulated time:
// the real Journey workflow in the Temporal SDK's test environment, against
// the in-memory activities (activities.Memory), with no server and no
// database. It is what `rapport simulate` runs.
//
// It lives apart from package workflows because it links the SDK's test
// suite (go.temporal.io/sdk/testsuite), which the worker and the API must
// not carry (TestProductionPackagesDoNotLinkTheTestSuite).
//
// The simulator makes production's decisions with production's code:
// every event is stored as the event API stores it (Memory.RecordEvent:
// once per ID, purchases through activities.ApplyPurchase), an event
// starts an enrollment when the dispatcher would start one
// (engine.Plan.TriggeredBy) and reaches a running journey when the
// dispatcher would signal it (engine.Plan.Listens), a segment or date
// playbook enrolls when the scan would (scan.Matcher, scan.DateDue), and
// the journey itself decides re-entry, audience, holdout, consent, caps,
// quiet hours and addresses through the policy functions the store calls
// too (activities.DecideEntry, activities.DecideSend).
package simulate

import (
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
	"github.com/rapport-crm/rapport/scan"
	"github.com/rapport-crm/rapport/simulate/simfile"
	"github.com/rapport-crm/rapport/workflows"
)

// DefaultStart is the simulated start time unless told otherwise: fixed,
// so that simulations are reproducible.
var DefaultStart = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// dateHorizon bounds the search for the first scan at which a date
// trigger is due: a birthday or anniversary comes within a year.
const dateHorizon = 367 * 24 * time.Hour

// Event is an event that happens At after the start of a simulation
// (simfile.Event). Every event is dispatched as the event API dispatches
// it: applied to the profile, then starting an enrollment when it
// triggers the playbook and no journey is running, else signalled to the
// running journey when the journey listens for it.
type Event = simfile.Event

// Options configure a simulation.
type Options struct {
	Customer rules.Customer // the customer (required: ID)
	// Consents are the customer's recorded consent decisions, stored in
	// Memory with the customer.
	Consents []simfile.Consent
	// Trigger is the trigger event at the start; default: for an event
	// playbook without marked trigger events, an event of the trigger's
	// name at the start. For a manual playbook its ID and properties go
	// to the "manual" event the enrollment starts with; segment and date
	// playbooks start with the scan's event and ignore it.
	Trigger *rules.Event
	Events  []Event
	Start   time.Time // default DefaultStart
	// Memory holds the simulated world; a fresh one when nil. The
	// customer is stored in it before the simulation starts.
	Memory *activities.Memory
	// MaxRuns bounds the workflow runs (continue-as-new) simulated over
	// all journeys; default 1000.
	MaxRuns int
	// Horizon is how much simulated time from the start a journey may
	// run; one still running then (a subscription that lasts for years)
	// stops there, active (Result.Horizon). Default DefaultHorizon.
	Horizon time.Duration
}

// DefaultHorizon is the simulated time a simulation may run: three years.
const DefaultHorizon = 3 * 365 * 24 * time.Hour

// Journey is one enrollment the simulation started, and how it ended.
type Journey struct {
	Start  time.Time
	Status activities.Status
	Reason string
	Err    error // why the workflow failed, if it did
}

// Result is what a simulation did.
type Result struct {
	Start time.Time
	// Log is every step log entry of every run of every journey, with the
	// simulator's own entry decisions (step "entry", action "trigger"),
	// in time order.
	Log []workflows.StepLog
	// Journeys are the enrollments started, in order.
	Journeys []Journey
	Result   workflows.JourneyResult // of the last journey; zero when it failed
	Err      error                   // why the last journey failed, if it did
	Runs     int
	// RunEvents is the journey's estimate of each run's history length
	// (the SDK test environment has no real history).
	RunEvents []int
	Memory    *activities.Memory
	Final     workflows.State // of the last journey
	// NotAdmitted says why no journey started, when none did.
	NotAdmitted string
	// Horizon is set when the last journey was still running at the
	// simulation's horizon.
	Horizon time.Duration
}

// due is an event at its absolute time.
type due struct {
	when    time.Time
	ev      rules.Event
	trigger bool
	of      string // the send step a message event is about (Event.Of)
}

// sim is one simulation in progress.
type sim struct {
	plan    *engine.Plan
	opts    Options
	res     *Result
	pending []due // every event, in time order
	next    int   // index of the first event not yet dispatched
	marked  bool  // some event is marked as a trigger
	lastSeq int
	extra   []workflows.StepLog // entry lines of the current journey's runs
	// enrollment is the ID of the journey running (or last run).
	enrollment string
}

// Run simulates opts.Customer in plan. Continue-as-new is followed by
// starting the next run in a fresh test environment at the time the last
// one stopped; a journey that ends leaves later events to start the next
// enrollment, as the dispatcher would.
func Run(plan *engine.Plan, opts Options) (*Result, error) {
	if opts.Customer.ID == "" {
		return nil, errors.New("simulate: the customer needs an id")
	}
	s := &sim{plan: plan, opts: opts, res: &Result{Start: opts.Start, Memory: opts.Memory}}
	if s.res.Start.IsZero() {
		s.res.Start = DefaultStart
	}
	if s.res.Memory == nil {
		s.res.Memory = activities.NewMemory()
	}
	if s.opts.MaxRuns <= 0 {
		s.opts.MaxRuns = 1000
	}
	if s.opts.Horizon <= 0 {
		s.opts.Horizon = DefaultHorizon
	}
	s.res.Memory.Put(opts.Customer)
	for _, k := range opts.Consents {
		s.res.Memory.SetConsent(opts.Customer.ID, k.Channel, k.Topic, k.Granted)
	}
	s.schedule()
	if err := s.first(); err != nil {
		return s.res, err
	}
	for s.next < len(s.pending) {
		d := s.pending[s.next]
		s.next++
		if err := s.dispatchIdle(d); err != nil {
			return s.res, err
		}
	}
	sort.SliceStable(s.res.Log, func(a, b int) bool { return s.res.Log[a].At.Before(s.res.Log[b].At) })
	if len(s.res.Journeys) == 0 && s.res.NotAdmitted == "" {
		s.res.NotAdmitted = "no event triggered the playbook"
	}
	return s.res, nil
}

// schedule puts every event, and the start's trigger event, in time order.
func (s *sim) schedule() {
	marked := s.opts.Trigger != nil
	for _, e := range s.opts.Events {
		marked = marked || e.Trigger
		s.marked = s.marked || e.Trigger
	}
	if t := s.startTrigger(marked); t != nil && s.plan.Trigger.Kind == engine.TriggerEvent {
		s.pending = append(s.pending, due{when: t.Time, ev: *t, trigger: true})
	}
	for _, e := range s.opts.Events {
		when := s.res.Start.Add(e.At)
		ev := e.Event
		if ev.Time.IsZero() {
			ev.Time = when
		}
		s.pending = append(s.pending, due{when: when, ev: ev, trigger: e.Trigger, of: e.Of})
	}
	sort.SliceStable(s.pending, func(a, b int) bool { return s.pending[a].when.Before(s.pending[b].when) })
}

// startTrigger is the trigger event at the start: the given one, or for
// an event trigger without marked trigger events an event of that name,
// whose ID names the start so that simulations sharing one Memory are
// distinct triggers. Other trigger kinds enroll in first.
func (s *sim) startTrigger(marked bool) *rules.Event {
	if given := s.opts.Trigger; given != nil {
		ev := *given
		if ev.Time.IsZero() {
			ev.Time = s.res.Start
		}
		return &ev
	}
	if ets := s.plan.Trigger.EventTriggers(); len(ets) > 0 && !marked {
		return &rules.Event{ID: "sim-" + s.res.Start.UTC().Format(time.RFC3339), Name: ets[0].Event, Time: s.res.Start}
	}
	return nil
}

// first enrolls the customer the way a playbook's trigger kind does in
// production, unless the trigger is an event (dispatched in Run): the
// segment scan at the start, the first hourly date scan at which the date
// is due, or a manual start.
func (s *sim) first() error {
	start := s.res.Start
	switch s.plan.Trigger.Kind {
	case engine.TriggerEvent:
		return nil
	case engine.TriggerManual:
		if s.marked {
			return nil // each marked event is a manual start (dispatchIdle)
		}
		ev := rules.Event{ID: "sim-manual-" + start.UTC().Format(time.RFC3339), Time: start}
		if t := s.opts.Trigger; t != nil {
			ev = *t
			ev.Time = start
		}
		return s.journey(manualStart(ev), start)
	case engine.TriggerSegment:
		s.applyUntil(start)
		ok, why, err := s.scanMatch(start)
		if err != nil {
			return err
		}
		if !ok {
			s.refuse(start, "not admitted by the segment scan: "+why)
			return nil
		}
		return s.journey(scan.TriggerEvent(s.plan, s.opts.Customer.ID, start), start)
	case engine.TriggerDate:
		// The hourly scans at or after the start, in production's slots.
		at := start.Truncate(scan.DateWindow)
		if at.Before(start) {
			at = at.Add(scan.DateWindow)
		}
		for ; !at.After(start.Add(dateHorizon)); at = at.Add(scan.DateWindow) {
			s.applyUntil(at)
			c, _ := s.res.Memory.Customer(s.opts.Customer.ID)
			if !scan.DateDue(s.plan.Trigger, c, at) {
				continue
			}
			ok, why, err := s.scanMatch(at)
			if err != nil {
				return err
			}
			if !ok {
				s.refuse(at, "not admitted by the "+s.plan.Trigger.Date+" scan: "+why)
				return nil
			}
			return s.journey(scan.TriggerEvent(s.plan, s.opts.Customer.ID, at), at)
		}
		s.refuse(start, fmt.Sprintf("not admitted: the %s is not due within a year of the start (is it set?)", s.plan.Trigger.Date))
		return nil
	}
	return fmt.Errorf("simulate: playbook %s has an unknown trigger kind %q", s.plan.Name, s.plan.Trigger.Kind)
}

// scanMatch is the scan's decision for the customer as stored now.
func (s *sim) scanMatch(at time.Time) (bool, string, error) {
	m, err := scan.NewMatcher(s.plan, at)
	if err != nil {
		return false, "", fmt.Errorf("simulate: %w", err)
	}
	c, _ := s.res.Memory.Customer(s.opts.Customer.ID)
	ok, err := m.Match(c)
	if err != nil {
		// The scan counts a failing rule as no match, and logs it.
		return false, "the where rule failed: " + err.Error(), nil
	}
	if !ok && s.plan.Trigger.Where != nil {
		return false, "where " + oneLine(s.plan.Trigger.Where.Source) + " is false", nil
	}
	return ok, "", nil
}

// applyUntil applies the events before at to the profile, as the event
// API stores them, when no journey hears of them (before the first scan).
func (s *sim) applyUntil(at time.Time) {
	for s.next < len(s.pending) && s.pending[s.next].when.Before(at) {
		d := s.pending[s.next]
		s.next++
		s.res.Memory.RecordEvent(s.opts.Customer.ID, d.ev)
	}
}

// dispatchIdle dispatches an event while no journey runs: it is applied
// to the profile and, when it triggers the playbook, starts a journey.
func (s *sim) dispatchIdle(d due) error {
	if s.manual(d) {
		return s.journey(manualStart(d.ev), d.when)
	}
	s.res.Memory.RecordEvent(s.opts.Customer.ID, d.ev)
	ok, why := s.triggers(d.ev)
	if !ok {
		if d.trigger {
			s.refuse(d.when, fmt.Sprintf("%s %s not admitted: %s", d.ev.Name, d.ev.ID, why))
		}
		return nil
	}
	return s.journey(d.ev, d.when)
}

// manual says whether d is a manual start (POST /v1/enroll) rather than
// an event: a marked event of a manual playbook.
func (s *sim) manual(d due) bool {
	return d.trigger && s.plan.Trigger.Kind == engine.TriggerManual
}

// manualStart is the event a manual enrollment starts with, as POST
// /v1/enroll builds it: named manual, with the request's ID and
// properties.
func manualStart(ev rules.Event) rules.Event {
	if ev.ID == "" {
		ev.ID = "sim-manual-" + ev.Time.UTC().Format(time.RFC3339)
	}
	return rules.Event{ID: ev.ID, Name: "manual", Time: ev.Time, Props: ev.Props}
}

// triggers is the dispatcher's decision for ev, on the profile as stored
// after ev was applied; when false, why says why in plain words.
func (s *sim) triggers(ev rules.Event) (bool, string) {
	if s.plan.Trigger.Kind != engine.TriggerEvent {
		return false, fmt.Sprintf("the playbook has a %s trigger, not an event trigger", s.plan.Trigger.Kind)
	}
	c, _ := s.res.Memory.Customer(s.opts.Customer.ID)
	ok, err := s.plan.TriggeredBy(c, ev)
	switch {
	case err != nil:
		// The dispatcher logs a failing rule and counts it as false.
		return false, err.Error()
	case ok:
		return true, ""
	}
	for _, et := range s.plan.Trigger.EventTriggers() {
		if et.Event == ev.Name {
			return false, fmt.Sprintf("when %s is false", oneLine(et.When.Source))
		}
	}
	var names []string
	for _, et := range s.plan.Trigger.EventTriggers() {
		names = append(names, et.Event)
	}
	return false, fmt.Sprintf("the trigger event is %s", strings.Join(names, " or "))
}

// refuse logs an entry decision that started nothing.
func (s *sim) refuse(at time.Time, why string) {
	s.res.Log = append(s.res.Log, workflows.StepLog{At: at, StepID: "entry", Kind: "trigger", Detail: why})
	if len(s.res.Journeys) == 0 && s.res.NotAdmitted == "" {
		s.res.NotAdmitted = why
	}
}

// journey runs one enrollment started by trigger at at, run after run,
// delivering the events that fall inside it.
func (s *sim) journey(trigger rules.Event, at time.Time) error {
	in, err := workflows.Input(s.plan, s.opts.Customer.ID, trigger)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	s.res.Journeys = append(s.res.Journeys, Journey{Start: at})
	s.enrollment = workflows.SimulatedEnrollmentID(workflows.WorkflowID(in.Playbook, in.CustomerID), at)
	j := &s.res.Journeys[len(s.res.Journeys)-1]
	s.res.Err, s.res.Result = nil, workflows.JourneyResult{}
	for s.res.Runs < s.opts.MaxRuns {
		s.res.Runs++
		next, now, state, err := s.run(in, at)
		if err != nil {
			return err
		}
		for _, l := range state.Steps {
			if l.Seq > s.lastSeq {
				s.res.Log = append(s.res.Log, l)
				s.lastSeq = l.Seq
			}
		}
		s.res.RunEvents = append(s.res.RunEvents, state.EstimatedEvents)
		s.res.Final = state
		s.res.Horizon = 0
		if s.res.Err != nil && temporal.IsTimeoutError(s.res.Err) && state.Status == activities.StatusActive {
			s.res.Err, s.res.Horizon = nil, s.opts.Horizon // still running at the horizon
		}
		j.Status, j.Reason, j.Err = state.Status, state.Reason, s.res.Err
		if next == nil {
			s.res.Log = append(s.res.Log, s.extra...)
			s.extra, s.lastSeq = nil, 0
			return nil
		}
		in, at = *next, now
	}
	return fmt.Errorf("simulate: still running after %d runs", s.opts.MaxRuns)
}

// run runs one workflow run starting at time at. It returns the input of
// the next run when the run continued as new, and the time it stopped.
func (s *sim) run(in workflows.JourneyInput, at time.Time) (*workflows.JourneyInput, time.Time, workflows.State, error) {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(at)
	env.SetWorkflowRunTimeout(max(s.res.Start.Add(s.opts.Horizon).Sub(at), time.Second))
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.WorkflowID(in.Playbook, in.CustomerID), TaskQueue: workflows.TaskQueue})
	workflows.Register(env, s.res.Memory)
	s.deliver(env, at)
	env.ExecuteWorkflow(workflows.WorkflowName, in)
	var state workflows.State
	if v, err := env.QueryWorkflow(workflows.StateQuery); err != nil {
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
		var next workflows.JourneyInput
		if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
			return nil, at, state, fmt.Errorf("simulate: decode continue-as-new input: %w", err)
		}
		return &next, env.Now(), state, nil
	}
	if werr != nil {
		s.res.Err = werr
		return nil, env.Now(), state, nil
	}
	if err := env.GetWorkflowResult(&s.res.Result); err != nil {
		return nil, env.Now(), state, fmt.Errorf("simulate: decode result: %w", err)
	}
	return nil, env.Now(), state, nil
}

// deliver dispatches the events due while the run that starts at at is
// running, in time order, as the event API does: store the event
// (updating the profile), then — the journey running — signal it when it
// listens; a triggering event finds the journey running and starts
// nothing, as the dispatcher's Enroll does. Events are scheduled one time
// at a time, each delivery scheduling the next, because the SDK's test
// environment queues at most 1,000 callbacks registered ahead of the run.
// Events the run did not live to see are left for Run.
func (s *sim) deliver(env *testsuite.TestWorkflowEnvironment, at time.Time) {
	customerID := s.opts.Customer.ID
	var schedule func(now time.Time)
	schedule = func(now time.Time) {
		if s.next >= len(s.pending) {
			return
		}
		when := s.pending[s.next].when
		if when.Before(now) {
			when = now
		}
		env.RegisterDelayedCallback(func() {
			for s.next < len(s.pending) && !s.pending[s.next].when.After(when) {
				d := s.pending[s.next]
				s.next++
				d.ev = s.aboutMessage(d)
				if s.manual(d) {
					s.extra = append(s.extra, workflows.StepLog{At: d.when, StepID: "entry", Kind: "trigger",
						Detail: fmt.Sprintf("manual start %s not started: the customer's journey of the playbook is still running", d.ev.ID)})
					continue
				}
				s.res.Memory.RecordEvent(customerID, d.ev)
				if ok, _ := s.triggers(d.ev); ok {
					s.extra = append(s.extra, workflows.StepLog{At: d.when, StepID: "entry", Kind: "trigger",
						Detail: fmt.Sprintf("%s %s not started: the customer's journey of the playbook is still running", d.ev.Name, d.ev.ID)})
				}
				if s.plan.Listens(d.ev.Name) {
					env.SignalWorkflow(workflows.EventSignal, d.ev)
				}
			}
			schedule(when)
		}, when.Sub(now))
	}
	schedule(at)
}

// oneLine folds a rule written over several lines into one, for a log line.
func oneLine(src string) string { return strings.Join(strings.Fields(src), " ") }

// aboutMessage fills in the props a provider's report of d's message event
// carries, for the send step d names (of) in the journey running: what
// the email or SMS provider would send back about the message that step
// sent. Props the events file gives are kept.
func (s *sim) aboutMessage(d due) rules.Event {
	idx, ok := s.plan.StepIndex[d.of]
	if d.of == "" || !ok {
		return d.ev
	}
	ev := d.ev
	props := map[string]any{"enrollment_id": s.enrollment, "step_id": d.of, "playbook": s.plan.Name, "provider": "simulator"}
	if send := s.plan.Steps[idx].Send; send != nil {
		props["template"], props["channel"] = send.Template, string(send.Channel)
	}
	for k, v := range ev.Props {
		props[k] = v
	}
	ev.Props = props
	return ev
}
