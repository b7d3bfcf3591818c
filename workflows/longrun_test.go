package workflows_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
	. "github.com/rapport-crm/rapport/workflows"
)

// A journey that loops for a year continues as new before any run's
// history passes the bound, and carries its state across runs.
func TestContinueAsNewOnYearLongLoop(t *testing.T) {
	head := `exit_when: event.name == "stop"`
	steps := `
  - id: tick
    send: { channel: email, template: hi }
  - wait: 1d
  - goto: tick
`
	plan := playbook(t, head, steps)
	r := simulate(t, plan, SimOptions{Events: []SimEvent{ev(365*day+time12h, "stop", "s1")}})
	wantOutcome(t, r, activities.StatusExited, "exit_when")
	if r.Runs < 3 {
		t.Fatalf("%d runs for a year of daily sends; want continue-as-new", r.Runs)
	}
	for i, n := range r.RunEvents {
		if n > MaxHistory+20 {
			t.Errorf("run %d: about %d history events, over the bound %d", i+1, n, MaxHistory)
		}
	}
	msgs := r.Memory.Messages()
	if len(msgs) != 366 {
		t.Fatalf("%d messages in a year of daily sends, want 366", len(msgs))
	}
	// Idempotency keys keep counting visits across runs: no key repeats.
	keys := map[string]bool{}
	for _, m := range msgs {
		if keys[m.Key] {
			t.Fatalf("key %s used twice", m.Key)
		}
		keys[m.Key] = true
		if !strings.HasPrefix(m.Key, r.Final.EnrollmentID+"/tick/") {
			t.Fatalf("key %s does not carry the enrollment ID %s", m.Key, r.Final.EnrollmentID)
		}
	}
	if r.Final.Counters.Runs != r.Runs || r.Final.Counters.Sends != 366 {
		t.Errorf("counters %+v after %d runs", r.Final.Counters, r.Runs)
	}
}

const time12h = 12 * time.Hour

// A stream of events during one long wait fills the history; the run
// continues as new mid-wait and the next run keeps the wait's deadline and
// the seen event IDs.
func TestContinueAsNewMidWait(t *testing.T) {
	steps := `
  - id: hold
    wait: { event: stop, timeout: 30d }
    on_event:
      - exit: stopped
`
	var events []SimEvent
	for i := range 400 {
		events = append(events, ev(day+time.Duration(i)*time.Minute, "visit", fmt.Sprintf("v%d", i)))
	}
	events = append(events, ev(2*day, "visit", "v160")) // a duplicate from the first run, still among the last 256 IDs the journey keeps
	// exit_when makes the journey listen to the visits (the dispatcher
	// signals only the journeys that listen).
	r := simulate(t, playbook(t, `exit_when: event.name == "never"`, steps), SimOptions{Events: events})
	wantOutcome(t, r, activities.StatusCompleted, "")
	if r.Runs < 2 {
		t.Fatalf("%d run(s); want continue-as-new mid-wait", r.Runs)
	}
	if got := r.End().Sub(r.Start); got != 30*day {
		t.Errorf("the wait ended after %s, want the original 30d deadline", got)
	}
	tr := trace(r)
	first, cut, dup := strings.Index(tr, "hold event visit received"), strings.Index(tr, "continue-as-new"), strings.Index(tr, "v160 duplicate, ignored")
	if first < 0 || cut < 0 || dup < cut {
		t.Fatalf("want the duplicate of a first-run event dropped in a later run:\n%s", tr)
	}
	if got := strings.Count(tr[:cut], "hold event visit received"); got <= 160 {
		t.Fatalf("v160 was not received in the first run (%d events before continue-as-new)", got)
	}
	if r.Final.Counters.Events != 400 {
		t.Errorf("%d distinct events counted, want 400 (the duplicate dropped across runs)", r.Final.Counters.Events)
	}
}

// Version pinning: the run compiles the source it carries, across
// continue-as-new, whatever is deployed meanwhile; a source that is not the
// version the enrollment names fails the run.
func TestVersionPinning(t *testing.T) {
	v1 := playbook(t, "", "  - id: old_step\n    send: { channel: email, template: hi }\n  - id: loop\n    wait: 1d\n  - goto: old_step\n")
	v2src := strings.ReplaceAll(string(v1.Source), "old_step", "new_step")
	r, err := Simulate(v1, SimOptions{Customer: customer("c1"), MaxRuns: 3})
	if err == nil || !strings.Contains(err.Error(), "still running after 3 runs") {
		t.Fatalf("err = %v, want the endless loop cut after 3 runs", err)
	}
	for _, l := range r.Log {
		if strings.Contains(l.StepID, "new_step") {
			t.Fatalf("v2 step in a v1 enrollment: %+v", l)
		}
	}
	if r.Runs < 2 {
		t.Fatalf("want continue-as-new in the pinning test, got %d run(s)", r.Runs)
	}

	env := newTestEnv(t)
	mem := activities.NewMemory()
	mem.Put(customer("c1"))
	Register(env, mem)
	in := input(t, v1, "c1", rules.Event{Name: "signup"})
	in.Plan = nil     // a journey started before plans were pinned compiles its source
	in.Source = v2src // "deployed" v2 under v1's name and version
	env.ExecuteWorkflow(WorkflowName, in)
	err = env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "but the enrollment is for test version "+v1.Version) {
		t.Fatalf("err = %v, want a version mismatch", err)
	}
}
