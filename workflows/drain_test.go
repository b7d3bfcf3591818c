package workflows

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.temporal.io/sdk/converter"
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

// TestEventsPendingAtContinueAsNewAreKept: events that arrive while the
// journey reads the profile just before it continues as new are taken in
// by the run that ends (its checkpoint counts and remembers every one), not
// lost with it.
func TestEventsPendingAtContinueAsNewAreKept(t *testing.T) {
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
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("err %v, want the run to continue as new", err)
	}
	var next JourneyInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	// The scenario this test is for: the run ended at the wait's top, right
	// after the exit_when check that read the profile, with an event taken
	// in just before continuing as new.
	steps := next.Resume.Steps
	if n := len(steps); n < 3 || steps[n-3].Kind != "update" || steps[n-2].Kind != "event" || steps[n-1].Kind != "continue-as-new" {
		t.Fatalf("the run did not end at the wait with an event pending (last steps %+v): adjust the scenario", steps[max(0, len(steps)-3):])
	}
	if got := next.Resume.Counters.Events; got != mem.sent {
		t.Fatalf("the run took in %d events of the %d signalled before it continued as new: %d lost", got, mem.sent, mem.sent-got)
	}
}
