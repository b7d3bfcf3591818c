package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// chatter signals the running journey an event, counting them.
type chatter struct {
	signal func(rules.Event)
	sent   int
}

func (c *chatter) emit() {
	c.sent++
	c.signal(rules.Event{ID: fmt.Sprintf("e%d", c.sent), Name: "visit"})
}

// chattyMemory signals the journey an event when it loads the customer
// right after a profile update: in the walk, that load is the exit_when
// check before the next step, and when that step is a wait and the
// history is full, the run continues as new right after it, with the
// event pending.
type chattyMemory struct {
	*activities.Memory
	chatter
	armed bool
}

func (m *chattyMemory) UpdateProfile(ctx context.Context, u activities.ProfileUpdate) error {
	m.armed = true
	return m.Memory.UpdateProfile(ctx, u)
}

func (m *chattyMemory) LoadCustomer(ctx context.Context, id string) (rules.Customer, error) {
	if m.armed {
		m.armed = false
		m.emit()
	}
	return m.Memory.LoadCustomer(ctx, id)
}

// TestEventsPendingBeforeAWaitReachTheWait: an event that arrives while
// the journey reads the profile for the exit_when check before a wait, when
// the history is full, is taken in by the wait in this run (which then
// continues as new), so the wait sees it; none is lost.
func TestEventsPendingBeforeAWaitReachTheWait(t *testing.T) {
	plan := playbook(t, `exit_when: event.name == "stop"`, `
  - id: tick
    send: { channel: email, template: hi, transactional: true }
  - update: { add_tags: [ticked] }
  - wait: 1h
  - goto: tick
`)
	mem := &chattyMemory{Memory: activities.NewMemory()}
	next := runUntilContinued(t, plan, mem, &mem.chatter)
	wantTail(t, next, &mem.chatter, "wait", "event", "continue-as-new")
}

// runUntilContinued runs plan for customer c1 on acts, whose chatter
// signals the journey, until the run continues as new, and returns the
// next run's input.
func runUntilContinued(t *testing.T, plan *engine.Plan, acts activities.All, ch *chatter) JourneyInput {
	t.Helper()
	env := newTestEnv(t)
	acts.(interface{ Put(rules.Customer) }).Put(customer("c1"))
	ch.signal = func(ev rules.Event) { env.SignalWorkflow(EventSignal, ev) }
	Register(env, acts)
	env.ExecuteWorkflow(WorkflowName, input(t, plan, "c1", rules.Event{ID: "t1", Name: "signup"}))
	return continuedAs(t, env)
}

// wantTail checks the scenario a test is for, the kinds of the last step
// log entries before the run continued as new, and that the run took in
// every event signalled to it.
func wantTail(t *testing.T, next JourneyInput, ch *chatter, kinds ...string) {
	t.Helper()
	steps := next.Resume.Steps
	tail := steps[max(0, len(steps)-len(kinds)):]
	for i, k := range kinds {
		if i >= len(tail) || tail[i].Kind != k {
			t.Fatalf("last steps %+v, want kinds %v: the run did not end as the scenario needs", tail, kinds)
		}
	}
	if got := next.Resume.Counters.Events; got != ch.sent {
		t.Fatalf("the run took in %d events of the %d signalled before it continued as new: %d lost", got, ch.sent, ch.sent-got)
	}
}

// continuedAs is the input of the run that env's run continued as.
func continuedAs(t *testing.T, env *testsuite.TestWorkflowEnvironment) JourneyInput {
	t.Helper()
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("err %v, want the run to continue as new", err)
	}
	var next JourneyInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	return next
}

// deferralChatter signals the journey an event when a send's deferral is
// recorded: the moment before the deferral's wait, where a run whose
// history is full continues as new at once.
type deferralChatter struct {
	*activities.Memory
	chatter
}

func (m *deferralChatter) RecordStep(ctx context.Context, s activities.StepRecord) error {
	if strings.Contains(s.Detail, "deferred") {
		m.emit()
	}
	return m.Memory.RecordStep(ctx, s)
}

// TestEventsPendingAtAContinuedDeferralAreKept: an event that arrives as a
// deferral is recorded, when the history is full and the run continues as
// new before the deferral's wait, is taken in by the run that ends (its
// checkpoint counts it), not lost with it.
func TestEventsPendingAtAContinuedDeferralAreKept(t *testing.T) {
	plan := playbook(t, "policies:\n  frequency_cap: { max: 1, per: 1h, action: defer }", `
  - id: tick
    send: { channel: email, template: hi }
  - wait: 10m
  - goto: tick
`)
	mem := &deferralChatter{Memory: activities.NewMemory()}
	next := runUntilContinued(t, plan, mem, &mem.chatter)
	wantTail(t, next, &mem.chatter, "defer", "event", "continue-as-new")
	if next.Resume.Deferral == nil {
		t.Fatal("the run did not continue as new mid-deferral")
	}
}
