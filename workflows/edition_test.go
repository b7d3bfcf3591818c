package workflows_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
	. "github.com/rapport-crm/rapport/workflows"
)

// calls records what a journey asks of the SDK that its edition changes:
// the changes it asks GetVersion about and its local activities, in order.
type calls struct {
	interceptor.WorkerInterceptorBase
	versions, locals []string
}

func (c *calls) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &callsInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, c: c}
}

type callsInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	c *calls
}

func (i *callsInbound) Init(out interceptor.WorkflowOutboundInterceptor) error {
	return i.Next.Init(&callsOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: out}, c: i.c})
}

type callsOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	c *calls
}

func (o *callsOutbound) GetVersion(ctx workflow.Context, change string, min, max workflow.Version) workflow.Version {
	o.c.versions = append(o.c.versions, change)
	return o.Next.GetVersion(ctx, change, min, max)
}

func (o *callsOutbound) ExecuteLocalActivity(ctx workflow.Context, name string, args ...any) workflow.Future {
	o.c.locals = append(o.c.locals, name)
	return o.Next.ExecuteLocalActivity(ctx, name, args...)
}

// runEdition runs a journey of edition (a send, a calendar wait, a send)
// to its end and returns what it asked of the SDK and the messages sent.
func runEdition(t *testing.T, edition int) (*calls, []activities.Message) {
	t.Helper()
	plan := playbook(t, "", `
  - id: hello
    send: { channel: email, template: hi }
  - id: later
    wait: 1d
  - id: again
    send: { channel: sms, template: ping }
`)
	t.Setenv(EditionEnv, strconv.Itoa(edition))
	in := input(t, plan, "c1", rules.Event{ID: "t1", Name: "signup"})
	if in.Edition != edition {
		t.Fatalf("Input with %s=%d gave edition %d", EditionEnv, edition, in.Edition)
	}
	c := &calls{}
	env := newTestEnv(t)
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{c}})
	mem := activities.NewMemory()
	mem.Put(customer("c1"))
	Register(env, mem)
	env.ExecuteWorkflow(WorkflowName, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("edition %d: %v", edition, err)
	}
	return c, mem.Messages()
}

// An edition-1 journey follows the changes of its edition without asking
// GetVersion (no marker, no TemporalChangeVersion upsert in its history)
// and reads the customer with its admission; a journey of edition 0, as
// every journey recorded before editions, asks and reads apart. Both send
// the same messages to the same addresses.
func TestEditionAsksNoVersionsAndLoadsTheCustomerWithTheAdmission(t *testing.T) {
	old, oldSent := runEdition(t, 0)
	cur, curSent := runEdition(t, Edition1)

	for _, want := range []string{"masked-recipient", "calendar-waits"} {
		if !slices.Contains(old.versions, want) {
			t.Errorf("edition 0 asked GetVersion about %q, want %s among them", old.versions, want)
		}
	}
	if len(cur.versions) != 0 {
		t.Errorf("edition 1 asked GetVersion about %q, want nothing", cur.versions)
	}
	// Edition 0 reads the customer after its admission and after the
	// wait; edition 1 only after the wait.
	wantOld := []string{activities.ActRecordStart, activities.ActLoadCustomer, activities.ActSendMessage, activities.ActLoadCustomer, activities.ActSendMessage, activities.ActRecordOutcome}
	wantCur := []string{activities.ActRecordStart, activities.ActSendMessage, activities.ActLoadCustomer, activities.ActSendMessage, activities.ActRecordOutcome}
	if !slices.Equal(old.locals, wantOld) || !slices.Equal(cur.locals, wantCur) {
		t.Errorf("local activities:\nedition 0: %q\nedition 1: %q\nwant %q and %q", old.locals, cur.locals, wantOld, wantCur)
	}

	if len(curSent) != 2 || len(oldSent) != len(curSent) {
		t.Fatalf("sent %d messages in edition 1 and %d in edition 0, want 2 each", len(curSent), len(oldSent))
	}
	for i := range curSent {
		o, c := oldSent[i], curSent[i]
		if o.Channel != c.Channel || o.To != c.To || o.Subject != c.Subject || o.Text != c.Text || o.Status != c.Status || !o.At.Equal(c.At) {
			t.Errorf("message %d:\nedition 0: %+v\nedition 1: %+v", i, o, c)
		}
	}
}

// StartEdition reads RAPPORT_JOURNEY_EDITION: unset is 0 (journeys start
// without an edition, safe while workers of an earlier release serve the
// queue); anything but a whole number up to LatestEdition is refused,
// naming the setting, and Input then starts nothing.
func TestStartEdition(t *testing.T) {
	for _, c := range []struct {
		val  string
		want int
		bad  bool
	}{{"", 0, false}, {"0", 0, false}, {" 1 ", 1, false}, {"2", 0, true}, {"-1", 0, true}, {"one", 0, true}} {
		t.Setenv(EditionEnv, c.val)
		got, err := StartEdition()
		if c.bad {
			if err == nil || !strings.Contains(err.Error(), EditionEnv) {
				t.Errorf("%q: %d, %v; want an error naming %s", c.val, got, err, EditionEnv)
			}
			if _, err := Input(playbook(t, "", "  - wait: 1h\n"), "c1", rules.Event{Name: "signup"}); err == nil {
				t.Errorf("%q: Input started a journey", c.val)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %d, %v; want %d", c.val, got, err, c.want)
		}
	}
}
