package workflows

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
)

// outage fails every call with a retryable error while down, as
// PostgreSQL or a provider does during an outage, and counts the calls.
type outage struct {
	*activities.Memory
	down  atomic.Bool
	calls atomic.Int64
}

var errOutage = errors.New("connection refused")

func (o *outage) fail() error {
	o.calls.Add(1)
	if o.down.Load() {
		return errOutage
	}
	return nil
}

func (o *outage) LoadCustomer(ctx context.Context, id string) (rules.Customer, error) {
	if err := o.fail(); err != nil {
		return rules.Customer{}, err
	}
	return o.Memory.LoadCustomer(ctx, id)
}

func (o *outage) SendMessage(ctx context.Context, r activities.SendRequest) (activities.SendResult, error) {
	if err := o.fail(); err != nil {
		return activities.SendResult{}, err
	}
	return o.Memory.SendMessage(ctx, r)
}

func (o *outage) RecordStep(ctx context.Context, s activities.StepRecord) error {
	if err := o.fail(); err != nil {
		return err
	}
	return o.Memory.RecordStep(ctx, s)
}

func (o *outage) RecordOutcome(ctx context.Context, out activities.Outcome) error {
	if err := o.fail(); err != nil {
		return err
	}
	return o.Memory.RecordOutcome(ctx, out)
}

// outageEnv is a test environment that starts now. The SDK's test
// environment bounds a retried local activity's attempt by its schedule
// time (workflow clock) plus the schedule-to-close timeout, compared with
// the wall clock: a workflow clock months behind would expire every retry
// at once.
func outageEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, time.Time) {
	env := newTestEnv(t)
	start := time.Now().UTC().Truncate(time.Second)
	env.SetStartTime(start)
	return env, start
}

// TestSixHourOutageWaits: PostgreSQL and the provider fail for six hours,
// starting just before the journey's second send. The journey waits the
// outage out on durable backoff timers, sends the second message once,
// right after the outage, and completes; nothing fails, nothing repeats.
func TestSixHourOutageWaits(t *testing.T) {
	plan := playbook(t, "", `
  - send: { channel: email, template: hi }
  - wait: 1d
  - send: { channel: sms, template: ping }
`)
	env, start := outageEnv(t)
	o := &outage{Memory: activities.NewMemory()}
	o.Put(customer("c1"))
	Register(env, o)
	outageStart := start.Add(24*time.Hour - time.Minute)
	outageEnd := outageStart.Add(6 * time.Hour)
	env.RegisterDelayedCallback(func() { o.down.Store(true) }, outageStart.Sub(start))
	env.RegisterDelayedCallback(func() { o.down.Store(false) }, outageEnd.Sub(start))
	env.ExecuteWorkflow(WorkflowName, input(t, plan, "c1", rules.Event{ID: "t1", Name: "signup"}))

	var res JourneyResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Status != activities.StatusCompleted {
		t.Fatalf("result %+v, err %v: a six-hour outage must not fail the journey", res, err)
	}
	msgs := o.Messages()
	if len(msgs) != 2 || msgs[0].Channel != "email" || msgs[1].Channel != "sms" {
		t.Fatalf("messages %+v, want the email and then the sms, once each", msgs)
	}
	sms := msgs[1]
	if sms.At.Before(outageEnd) || sms.At.After(outageEnd.Add(MaxOutageBackoff)) {
		t.Fatalf("sms sent at %v, want within %v after the outage ended at %v", sms.At, MaxOutageBackoff, outageEnd)
	}
	// Retries back off to one per MaxOutageBackoff: 6h costs tens of
	// calls, not thousands.
	if n := o.calls.Load(); n < 20 || n > 80 {
		t.Fatalf("%d activity calls over a six-hour outage, want about 30 (backoff to %v)", n, MaxOutageBackoff)
	}
}

// TestOutageLongerThanTheBudgetFails: a total outage that outlasts
// OutageBudget fails the step, then OutageBudget more to record the
// outcome, then the workflow (the reconciler closes its row), rather than
// waiting forever.
func TestOutageLongerThanTheBudgetFails(t *testing.T) {
	plan := playbook(t, "", "  - send: { channel: email, template: hi }\n")
	env, start := outageEnv(t)
	o := &outage{Memory: activities.NewMemory()}
	o.Put(customer("c1"))
	o.down.Store(true)
	Register(env, o)
	env.ExecuteWorkflow(WorkflowName, input(t, plan, "c1", rules.Event{ID: "t1", Name: "signup"}))
	err := env.GetWorkflowError()
	if err == nil {
		t.Fatal("a journey whose activities fail for longer than the budget completed")
	}
	// The step gives up after the budget; recording the failed outcome
	// then has a budget of its own, and with the database still down the
	// workflow fails without an outcome (the reconciler closes the row).
	if got := env.Now().Sub(start); got < 2*(OutageBudget-MaxOutageBackoff) || got > 2*OutageBudget {
		t.Fatalf("failed after %v, want after twice the outage budget %v (the step's, then recording the outcome)", got, OutageBudget)
	}
	if !strings.Contains(err.Error(), "record outcome failed") {
		t.Fatalf("err %v, want the outcome's recording to have failed too", err)
	}
	if len(o.Messages()) != 0 {
		t.Fatalf("messages %+v during a total outage", o.Messages())
	}
}
