package workflows

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// testStart is where test environments start: simulate.DefaultStart,
// which this package cannot import (simulate imports workflows; the
// external tests check that the two agree).
var testStart = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// Exported to the external test package (the journey tests that run
// through the simulator), which shares these helpers.
var (
	TestStart               = testStart
	TestPlaybook            = playbook
	TestInput               = input
	TestCustomer            = customer
	TestNewTestEnv          = newTestEnv
	TestMaxStepsWithoutWait = maxStepsWithoutWait
	TestContinuedAs         = continuedAs
	TestInHoldout           = inHoldout
)

// playbook builds a test playbook from its distinctive parts: head holds
// the top-level keys between trigger and templates (entry, goal, policies,
// exit_when), steps the step list. Templates hi (email) and ping (sms) are
// defined; unused ones are dropped to satisfy the compiler.
func playbook(t *testing.T, head, steps string) *engine.Plan {
	t.Helper()
	src := "playbook: test\nstage: nurture\ntrigger: { event: signup }\n" + head + "\n"
	if strings.Contains(steps, "template: ") {
		src += "templates:\n"
	}
	if strings.Contains(steps, "template: hi") {
		src += "  hi:\n    en: { subject: \"Hi {{ customer.name }}\", text: \"Hello {{ customer.name }} {{ coupon.code }}\" }\n    zh: { subject: \"你好\", text: \"你好 {{ customer.name }}\" }\n"
	}
	if strings.Contains(steps, "template: ping") {
		src += "  ping:\n    en: { text: \"Ping {{ customer.name }}\" }\n"
	}
	src += "steps:\n" + steps
	plan, err := engine.Compile("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("compile test playbook:\n%s\n%v", src, err)
	}
	return plan
}

// input is the workflow input of an enrollment in plan.
func input(t *testing.T, plan *engine.Plan, customerID string, trigger rules.Event) JourneyInput {
	t.Helper()
	in, err := Input(plan, customerID, trigger)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func customer(id string) rules.Customer {
	return rules.Customer{ID: id, Name: "Ada", Email: id + "@example.com", Phone: "+100", Locale: "en", Timezone: "UTC", Tier: "gold", SignupAt: testStart}
}

func newTestEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(testStart)
	return env
}
