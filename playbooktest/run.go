package playbooktest

import (
	"fmt"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/simulate"
)

// Result is how one case went.
type Result struct {
	File     string
	Playbook string
	Case     string
	Line     int // of the case
	Elapsed  time.Duration
	// Failures are the expectations that did not hold, in the file's
	// order; none means the case passed.
	Failures []Failure
}

// Pass says whether every expectation held.
func (r Result) Pass() bool { return len(r.Failures) == 0 }

// Failure is one expectation that did not hold, at the line that states
// it. Msg says what was wanted and what happened; Context (optional) is
// what the simulation did that bears on it, e.g. every message sent.
type Failure struct {
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Msg     string `json:"message"`
	Context string `json:"context,omitempty"`
}

// Run runs every case of f against plan, the compiled playbook f names.
func Run(f *File, plan *engine.Plan) []Result {
	out := make([]Result, 0, len(f.Cases))
	for _, c := range f.Cases {
		out = append(out, RunCase(f, plan, c))
	}
	return out
}

// RunCase simulates one case as `rapport simulate` would (the case's
// customer, consents and events, production's default frequency cap
// unless the case sets one) and checks its expectations.
func RunCase(f *File, plan *engine.Plan, c Case) Result {
	began := time.Now()
	res := Result{File: f.Path, Playbook: f.Playbook, Case: c.Name, Line: c.Line}
	mem := activities.NewMemory()
	mem.GlobalCapMax, mem.GlobalCapPer = c.CapMax, c.CapPer
	if c.InGlobalControl != nil {
		in := *c.InGlobalControl
		mem.GlobalControlDraw = func(string) bool { return in }
	}
	sim, err := simulate.Run(plan, simulate.Options{
		Customer: c.Customer.Customer, Consents: c.Customer.Consents, Events: c.Events, Start: c.Start, Memory: mem,
	})
	if err != nil {
		res.Failures = []Failure{{Line: c.Line, Col: 1, Msg: fmt.Sprintf("the simulation did not finish: %v", err)}}
	} else {
		res.Failures = check(c, observe(sim, c.Customer.Customer.ID))
	}
	res.Elapsed = time.Since(began)
	return res
}

// observed is what a simulation did, in the terms of the expectations.
type observed struct {
	start     time.Time
	messages  []activities.Message
	tasks     []seenTask
	coupons   []activities.IssuedCoupon
	ledger    []activities.LedgerEntry
	outcome   string
	reason    string
	converted bool
	holdout   bool
	journeys  int // admitted: the entry policy did not reject them
	customer  rules.Customer
	failure   string // why a journey failed, if one did
}

// seenTask is a task and when it was created (known from the step log).
type seenTask struct {
	activities.Task
	at *time.Time
}

func observe(sim *simulate.Result, customerID string) observed {
	o := observed{
		start: sim.Start, messages: sim.Memory.Messages(), coupons: sim.Memory.Coupons(),
		ledger: sim.Memory.Ledger(customerID), outcome: string(sim.Final.Status), reason: sim.Final.Reason,
		converted: sim.Final.Converted, holdout: sim.Final.Holdout, journeys: admitted(sim), failure: sim.Failure(),
	}
	if len(sim.Journeys) == 0 {
		o.outcome, o.reason = "not_admitted", sim.NotAdmitted
	}
	o.customer, _ = sim.Memory.Customer(customerID)
	o.tasks = tasksWithTimes(sim)
	return o
}

// tasksWithTimes pairs each created task with the time of its step's log
// line: the journey logs one "task" line per task it creates, in order.
func tasksWithTimes(sim *simulate.Result) []seenTask {
	var times []time.Time
	for _, l := range sim.Log {
		if l.Kind == "task" {
			times = append(times, l.At)
		}
	}
	tasks := sim.Memory.Tasks()
	out := make([]seenTask, len(tasks))
	for i, t := range tasks {
		out[i].Task = t
		if len(times) == len(tasks) {
			out[i].at = &times[i]
		}
	}
	return out
}

// admitted counts the journeys the entry policy let in: a trigger refused
// for re-entry, audience or cooldown starts a workflow that is rejected at
// once, and a test of re-entry means the journeys that ran.
func admitted(sim *simulate.Result) int {
	n := 0
	for _, j := range sim.Journeys {
		if j.Status != activities.StatusRejected {
			n++
		}
	}
	return n
}
