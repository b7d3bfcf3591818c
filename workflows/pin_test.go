package workflows

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// TestJourneyRunsThePinnedPlan stands in for a compiler change between
// releases: the plan a journey carries names its send step and words its
// subject differently from what today's compiler makes of the source. The
// journey must run the pinned program (its step id in the idempotency key,
// its subject), not the one a recompile would give.
func TestJourneyRunsThePinnedPlan(t *testing.T) {
	plan := playbook(t, "", "  - send: { channel: email, template: hi }\n")
	compiledID := plan.Steps[0].ID
	in := input(t, plan, "c1", rules.Event{ID: "t1", Name: "signup"})

	var pin map[string]any
	if err := json.Unmarshal(in.Plan, &pin); err != nil {
		t.Fatal(err)
	}
	p := pin["plan"].(map[string]any)
	step := p["steps"].([]any)[0].(map[string]any)
	step["id"] = "send_from_an_older_compiler"
	p["step_index"] = map[string]any{"send_from_an_older_compiler": 0}
	en := p["templates"].(map[string]any)["hi"].(map[string]any)["variants"].(map[string]any)["en"].(map[string]any)
	en["subject"] = "Pinned subject for {{ customer.name }}"
	in.Plan, _ = json.Marshal(pin)

	env, mem := memoryEnv(t)
	env.ExecuteWorkflow(WorkflowName, in)
	var res JourneyResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Status != activities.StatusCompleted {
		t.Fatalf("result %+v, %v", res, err)
	}
	msgs := mem.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1: %+v", len(msgs), msgs)
	}
	m := msgs[0]
	if !strings.Contains(m.Key, "/send_from_an_older_compiler/1") || strings.Contains(m.Key, compiledID) {
		t.Errorf("idempotency key %q: want the pinned step id, not today's %q", m.Key, compiledID)
	}
	if m.Subject != "Pinned subject for Ada" {
		t.Errorf("subject %q, want the pinned template's", m.Subject)
	}
}

// TestJourneyBlocksOnAPlanItCannotLoad: a pinned plan that this worker
// cannot load fails the workflow task, naming the problem, to be retried
// by a worker that can (rather than failing the journey for good), and
// does nothing meanwhile.
func TestJourneyBlocksOnAPlanItCannotLoad(t *testing.T) {
	plan := playbook(t, "", "  - send: { channel: email, template: hi }\n")
	in := input(t, plan, "c1", rules.Event{Name: "signup"})
	in.Plan = json.RawMessage(strings.Replace(string(in.Plan), `"next":-1`, `"next":7`, 1))
	env, mem := memoryEnv(t)
	env.ExecuteWorkflow(WorkflowName, in)
	err := env.GetWorkflowError()
	var panicErr *temporal.PanicError
	if !errors.As(err, &panicErr) || !strings.Contains(err.Error(), "cannot load its plan on this worker") || !strings.Contains(err.Error(), "next jumps to 7, outside 0..0") {
		t.Fatalf("err %v, want a workflow task panic about the jump", err)
	}
	if n := len(mem.Messages()); n != 0 {
		t.Fatalf("%d messages sent by a journey whose plan did not load", n)
	}
}

// TestLegacyInputRuns: a journey started before plans were pinned, with
// its source as base64 as before 8656a6c, compiles that source and runs.
func TestLegacyInputRuns(t *testing.T) {
	plan := playbook(t, "", "  - send: { channel: email, template: hi }\n")
	in := input(t, plan, "c1", rules.Event{Name: "signup"})
	in.Plan = nil
	in.Source = base64Of(plan.Source)
	env, mem := memoryEnv(t)
	env.ExecuteWorkflow(WorkflowName, in)
	var res JourneyResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Status != activities.StatusCompleted || len(mem.Messages()) != 1 {
		t.Fatalf("result %+v, %v, %d messages", res, err, len(mem.Messages()))
	}
}

func base64Of(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestNewerPlanFormatBlocksInsteadOfFailing: a journey pinned by a newer
// Rapport (format PlanFormat+1) on an older worker fails its workflow task,
// to be retried by a newer worker, and is not failed for good.
func TestNewerPlanFormatBlocksInsteadOfFailing(t *testing.T) {
	plan := playbook(t, "", "  - send: { channel: email, template: hi }\n")
	in := input(t, plan, "c1", rules.Event{Name: "signup"})
	in.Plan = json.RawMessage(strings.Replace(string(in.Plan), fmt.Sprintf(`"format":%d`, engine.PlanFormat), fmt.Sprintf(`"format":%d`, engine.PlanFormat+1), 1))
	env, mem := memoryEnv(t)
	env.ExecuteWorkflow(WorkflowName, in)
	err := env.GetWorkflowError()
	var panicErr *temporal.PanicError
	if !errors.As(err, &panicErr) || !strings.Contains(err.Error(), "the plan was pinned by a newer Rapport") {
		t.Fatalf("err %v, want a workflow task panic (retried by Temporal), not a failed journey", err)
	}
	if len(mem.Messages()) != 0 || len(mem.Enrollments()) != 0 {
		t.Fatalf("a journey this worker cannot read did something: %+v %+v", mem.Messages(), mem.Enrollments())
	}
}

// memoryEnv is a test environment whose journeys' activities are a fresh
// Memory holding customer c1.
func memoryEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *activities.Memory) {
	env := newTestEnv(t)
	mem := activities.NewMemory()
	mem.Put(customer("c1"))
	Register(env, mem)
	return env, mem
}

// TestLegacyJourneyWithRulesRefusedSinceRuns: a journey started before
// plans were pinned, on a playbook whose rule and placeholder use reduce
// (accepted then, refused since), still loads and runs on this release.
func TestLegacyJourneyWithRulesRefusedSinceRuns(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "engine", "testdata", "started_rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(data)
	in := JourneyInput{Playbook: "old_rules", Version: engine.VersionOf([]byte(src)), Source: src, CustomerID: "c1", Trigger: rules.Event{ID: "t1"}}
	env := newTestEnv(t)
	mem := activities.NewMemory()
	c := customer("c1")
	c.Tags = []string{"a", "b", "c"}
	mem.Put(c)
	Register(env, mem)
	env.ExecuteWorkflow(WorkflowName, in)
	var res JourneyResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Status != activities.StatusCompleted {
		t.Fatalf("result %+v, %v", res, err)
	}
	if msgs := mem.Messages(); len(msgs) != 1 || msgs[0].Text != "You have 3 tags" {
		t.Fatalf("messages %+v, want the one email rendered with reduce", msgs)
	}
}

// TestPlanPinnedBeforeGoalsMeasuredEndsAtTheGoal: a journey whose pinned
// plan has no goal continue (pinned by an earlier release) still ends at
// its goal, as it did when it started.
func TestPlanPinnedBeforeGoalsMeasuredEndsAtTheGoal(t *testing.T) {
	plan := playbook(t, "goal: { event: purchase, within: 30d }", "  - wait: { event: purchase, timeout: 5d }\n    on_event:\n      - send: { channel: email, template: hi }\n")
	in := input(t, plan, "c1", rules.Event{ID: "t1", Name: "signup"})
	old := strings.Replace(string(in.Plan), `,"continue":true`, "", 1)
	if old == string(in.Plan) {
		t.Fatalf("no goal continue in the pinned plan %s", in.Plan)
	}
	in.Plan = []byte(old)
	env, mem := memoryEnv(t)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(EventSignal, rules.Event{ID: "p1", Name: "purchase"})
	}, 48*time.Hour)
	env.ExecuteWorkflow(WorkflowName, in)
	var res JourneyResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Status != activities.StatusConverted || res.Reason != "goal purchase" {
		t.Fatalf("result %+v, %v; want converted (goal purchase)", res, err)
	}
	if m := mem.Messages(); len(m) != 0 {
		t.Fatalf("messages %+v, want none: the goal ends the journey before the wait sees the event", m)
	}
	if e := mem.Enrollments(); len(e) != 1 || e[0].ConversionEvent != "purchase" || e[0].ConvertedAt.IsZero() {
		t.Fatalf("recorded enrollment %+v, want converted on purchase", e)
	}
}
