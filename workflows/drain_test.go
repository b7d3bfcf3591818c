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
	"github.com/rapport-crm/rapport/rules"
)

// chattyMemory signals the journey an event when it loads the customer
// right after a profile update: in the walk, that load is the
// exit_when check before the next step, and when that step is a wait and
// the history is full, the run continues as new right after it, with the
// burst pending.
type chattyMemory struct {
	*activities.Memory
	signal func(rules.Event)
	armed  bool
	sent   int
}

func (m *chattyMemory) UpdateProfile(ctx context.Context, u activities.ProfileUpdate) error {
	m.armed = true
	return m.Memory.UpdateProfile(ctx, u)
}

func (m *chattyMemory) LoadCustomer(ctx context.Context, id string) (rules.Customer, error) {
	if m.armed {
		m.armed = false
		for range 1 {
			m.sent++
			m.signal(rules.Event{ID: fmt.Sprintf("e%d", m.sent), Name: "visit"})
		}
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
	env := newTestEnv(t)
	mem := &chattyMemory{Memory: activities.NewMemory()}
	mem.Put(customer("c1"))
	mem.signal = func(ev rules.Event) { env.SignalWorkflow(EventSignal, ev) }
	Register(env, mem)
	env.ExecuteWorkflow(WorkflowName, input(t, plan, "c1", rules.Event{ID: "t1", Name: "signup"}))
	next := continuedAs(t, env)
	steps := next.Resume.Steps
	if n := len(steps); n < 3 || steps[n-3].Kind != "wait" || steps[n-2].Kind != "event" || steps[n-1].Kind != "continue-as-new" {
		t.Fatalf("last steps %+v: want the wait to start, take in the pending event and then continue as new", steps[max(0, len(steps)-3):])
	}
	if got := next.Resume.Counters.Events; got != mem.sent {
		t.Fatalf("the run took in %d events of the %d signalled before it continued as new: %d lost", got, mem.sent, mem.sent-got)
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
	signal func(rules.Event)
	sent   int
}

func (m *deferralChatter) RecordStep(ctx context.Context, s activities.StepRecord) error {
	if strings.Contains(s.Detail, "deferred") {
		m.sent++
		m.signal(rules.Event{ID: fmt.Sprintf("e%d", m.sent), Name: "visit"})
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
	env := newTestEnv(t)
	mem := &deferralChatter{Memory: activities.NewMemory()}
	mem.Put(customer("c1"))
	mem.signal = func(ev rules.Event) { env.SignalWorkflow(EventSignal, ev) }
	Register(env, mem)
	env.ExecuteWorkflow(WorkflowName, input(t, plan, "c1", rules.Event{ID: "t1", Name: "signup"}))
	next := continuedAs(t, env)
	steps := next.Resume.Steps
	if n := len(steps); n < 3 || steps[n-3].Kind != "defer" || steps[n-2].Kind != "event" || steps[n-1].Kind != "continue-as-new" || next.Resume.Deferral == nil {
		t.Fatalf("last steps %+v, deferral %+v: want the run to continue as new mid-deferral with the event taken in", steps[max(0, len(steps)-3):], next.Resume.Deferral)
	}
	if got := next.Resume.Counters.Events; got != mem.sent {
		t.Fatalf("the run took in %d events of the %d signalled before it continued as new: %d lost", got, mem.sent, mem.sent-got)
	}
}
