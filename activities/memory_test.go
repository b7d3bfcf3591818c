package activities

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

func newMem() *Memory {
	m := NewMemory()
	m.Put(rules.Customer{ID: "c1", Name: "Ada", Email: "ada@example.com", Locale: "en", Points: 100})
	return m
}

func enr(id string) Enrollment {
	return Enrollment{ID: id, Playbook: "winback", Version: "v1", CustomerID: "c1"}
}

func sendReq(key string, at time.Time) SendRequest {
	return SendRequest{
		Enrollment: enr("e1"), Key: key, StepID: "s", Channel: "email", Template: "hello", Locale: "en",
		Topic: "marketing", Subject: "Hi {{ customer.name }}", Text: "Bye: {{ unsubscribe_url }}",
		Customer: rules.Customer{ID: "c1", Name: "Ada", Email: "ada@example.com"}, Now: at,
	}
}

func TestMemorySendRendersAndIsIdempotent(t *testing.T) {
	m, ctx := newMem(), context.Background()
	r1, err := m.SendMessage(ctx, sendReq("e1/s/1", t0))
	if err != nil || r1.Status != SendSent || r1.To != "ada@example.com" {
		t.Fatalf("first send = %+v, %v", r1, err)
	}
	r2, err := m.SendMessage(ctx, sendReq("e1/s/1", t0.Add(time.Hour)))
	if err != nil || r2 != r1 {
		t.Fatalf("retried send = %+v, %v; want the first result %+v", r2, err, r1)
	}
	msgs := m.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages logged, want 1", len(msgs))
	}
	if msgs[0].Subject != "Hi Ada" || msgs[0].Text != "Bye: https://example.invalid/u/e1/s/1" {
		t.Errorf("rendered %q / %q", msgs[0].Subject, msgs[0].Text)
	}
}

// A template that cannot be rendered for the customer is recorded failed
// (render_error), as the store records it, and the journey goes on.
func TestMemorySendBadTemplateIsFailed(t *testing.T) {
	m := newMem()
	req := sendReq("k", t0)
	req.Text = "{{ customer.nope }}"
	res, err := m.SendMessage(context.Background(), req)
	if err != nil || res.Status != SendFailed || res.Reason != ReasonRenderError {
		t.Fatalf("send = %+v, %v; want failed (render_error)", res, err)
	}
	if msgs := m.Messages(); len(msgs) != 1 || msgs[0].Status != SendFailed {
		t.Fatalf("logged %+v", msgs)
	}
}

func TestMemorySendPolicies(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		setup  func(*Memory, *SendRequest)
		status SendStatus
		reason string
	}{
		{"holdout", func(_ *Memory, r *SendRequest) { r.Enrollment.Holdout = true }, SendSuppressed, ReasonHoldout},
		{"holdout transactional", func(_ *Memory, r *SendRequest) { r.Enrollment.Holdout, r.Transactional = true, true }, SendSuppressed, ReasonHoldout},
		{"no consent", func(m *Memory, _ *SendRequest) { m.SetConsent("c1", "email", "marketing", false) }, SendSuppressed, ReasonConsent},
		{"consent other topic", func(m *Memory, _ *SendRequest) { m.SetConsent("c1", "email", "surveys", false) }, SendSent, ""},
		{"no consent transactional", func(m *Memory, r *SendRequest) {
			m.SetConsent("c1", "email", "marketing", false)
			r.Transactional = true
		}, SendSent, ""},
		{"no phone", func(_ *Memory, r *SendRequest) { r.Channel = "sms" }, SendSuppressed, ReasonNoAddress},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMem()
			req := sendReq("k", t0)
			c.setup(m, &req)
			res, err := m.SendMessage(ctx, req)
			if err != nil || res.Status != c.status || res.Reason != c.reason {
				t.Fatalf("got %+v, %v; want %s (%s)", res, err, c.status, c.reason)
			}
			if got := m.Messages()[0].Status; got != c.status {
				t.Errorf("logged status %s, want %s", got, c.status)
			}
		})
	}
}

func TestMemoryFrequencyCap(t *testing.T) {
	ctx := context.Background()
	capped := func(key string, at time.Time, deferIt bool) SendRequest {
		r := sendReq(key, at)
		r.CapMax, r.CapPer, r.CapDefer = 2, 7*24*time.Hour, deferIt
		return r
	}
	m := newMem()
	for i, at := range []time.Time{t0, t0.Add(24 * time.Hour)} {
		if res, _ := m.SendMessage(ctx, capped(string(rune('a'+i)), at, false)); res.Status != SendSent {
			t.Fatalf("send %d under the cap: %+v", i, res)
		}
	}
	res, _ := m.SendMessage(ctx, capped("c", t0.Add(48*time.Hour), false))
	if res.Status != SendSuppressed || res.Reason != ReasonFrequencyCap {
		t.Fatalf("third send with skip = %+v, want suppressed by the cap", res)
	}
	res, _ = m.SendMessage(ctx, capped("d", t0.Add(48*time.Hour), true))
	if res.Status != SendDeferred || !res.RetryAt.Equal(t0.Add(7*24*time.Hour)) {
		t.Fatalf("third send with defer = %+v, want deferred until the oldest send leaves the window", res)
	}
	// A deferred answer is not remembered: the same key later is decided afresh.
	res, _ = m.SendMessage(ctx, capped("d", t0.Add(7*24*time.Hour+time.Minute), true))
	if res.Status != SendSent {
		t.Fatalf("deferred send retried after the window = %+v, want sent", res)
	}
	if n := len(m.Messages()); n != 4 {
		t.Errorf("%d messages logged, want 4 (two sent, one suppressed, one sent after deferral)", n)
	}
}

func TestMemoryReentry(t *testing.T) {
	ctx := context.Background()
	start := func(m *Memory, id, policy string, at time.Time) EntryResult {
		t.Helper()
		res, err := m.RecordStart(ctx, EntryRequest{Enrollment: enr(id), Reentry: policy, Cooldown: 30 * 24 * time.Hour, At: at})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	end := func(m *Memory, id string, s Status) {
		t.Helper()
		if err := m.RecordOutcome(ctx, Outcome{Enrollment: enr(id), Status: s, At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	day := 24 * time.Hour

	m := newMem()
	if !start(m, "e1", "never", t0).Admitted {
		t.Fatal("first enrollment refused")
	}
	if res := start(m, "e2", "always", t0); res.Admitted || res.Reason != ReasonActive {
		t.Fatalf("second while first active = %+v", res)
	}
	end(m, "e1", StatusCompleted)
	if res := start(m, "e3", "never", t0.Add(400*day)); res.Admitted || res.Reason != ReasonAlreadyEnrolled {
		t.Fatalf("never after completion = %+v", res)
	}
	if res := start(m, "e4", "after", t0.Add(10*day)); res.Admitted || res.Reason != "cooldown" {
		t.Fatalf("after inside cooldown = %+v", res)
	}
	if res := start(m, "e5", "after", t0.Add(30*day)); !res.Admitted {
		t.Fatalf("after past cooldown = %+v", res)
	}
	end(m, "e5", StatusConverted)
	if res := start(m, "e6", "always", t0.Add(31*day)); !res.Admitted {
		t.Fatalf("always = %+v", res)
	}
	// Idempotent: asking again for a refused or admitted ID answers the same.
	if res := start(m, "e4", "always", t0.Add(100*day)); res.Admitted {
		t.Fatalf("re-asking for e4 changed the answer: %+v", res)
	}
	if res := start(m, "e6", "never", t0.Add(100*day)); !res.Admitted {
		t.Fatalf("re-asking for e6 changed the answer: %+v", res)
	}
	if n := len(m.Enrollments()); n != 3 {
		t.Errorf("%d enrollments recorded, want 3 admitted", n)
	}

	// One trigger event starts one enrollment, even under always.
	m = newMem()
	byEvent := func(id, trigger string) EntryResult {
		t.Helper()
		res, err := m.RecordStart(ctx, EntryRequest{Enrollment: enr(id), Reentry: "always", At: t0, TriggerID: trigger})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	byEvent("t1", "order-9")
	end(m, "t1", StatusCompleted)
	if res := byEvent("t2", "order-9"); res.Admitted || res.Reason != ReasonDuplicateTrigger {
		t.Errorf("second enrollment by the same event = %+v, want duplicate_trigger", res)
	}
	if res := byEvent("t3", "order-10"); !res.Admitted {
		t.Errorf("a new event under always = %+v", res)
	}
}

func TestMemoryAudienceRejectionDoesNotCountForReentry(t *testing.T) {
	m, ctx := newMem(), context.Background()
	if res, _ := m.RecordStart(ctx, EntryRequest{Enrollment: enr("e1"), Reentry: "never", At: t0}); !res.Admitted {
		t.Fatal("first refused")
	}
	_ = m.RecordOutcome(ctx, Outcome{Enrollment: enr("e1"), Status: StatusRejected, Reason: "audience", At: t0})
	if res, _ := m.RecordStart(ctx, EntryRequest{Enrollment: enr("e2"), Reentry: "never", At: t0.Add(time.Hour)}); !res.Admitted {
		t.Fatalf("a customer rejected by the audience rule could not enter later: %+v", res)
	}
}

func TestMemoryPointsCouponsTasksIdempotent(t *testing.T) {
	m, ctx := newMem(), context.Background()
	for range 2 {
		res, err := m.AdjustPoints(ctx, PointsRequest{Enrollment: enr("e1"), Key: "e1/p/1", CustomerID: "c1", Delta: 50, Reason: "purchase"})
		if err != nil || res.Balance != 150 {
			t.Fatalf("award = %+v, %v; want balance 150 both times", res, err)
		}
	}
	if res, _ := m.AdjustPoints(ctx, PointsRequest{Key: "e1/p/2", CustomerID: "c1", Delta: -30}); res.Balance != 120 {
		t.Fatalf("deduct → balance %d, want 120", res.Balance)
	}
	if l := m.Ledger("c1"); len(l) != 2 || l[1].Balance != 120 {
		t.Fatalf("ledger = %+v", l)
	}
	if c, _ := m.Customer("c1"); c.Points != 120 {
		t.Errorf("customer.points = %d, want 120", c.Points)
	}
	req := CouponRequest{Key: "e1/c/1", CustomerID: "c1", Kind: "percent", Value: 15, ExpiresAt: t0, Prefix: "WB"}
	c1, _ := m.IssueCoupon(ctx, req)
	c2, _ := m.IssueCoupon(ctx, req)
	other, _ := m.IssueCoupon(ctx, CouponRequest{Key: "e2/c/1", CustomerID: "c1", Kind: "amount", Value: 5, ExpiresAt: t0, Prefix: "WB"})
	if c1 != c2 || !strings.HasPrefix(c1.Code, "WB-") || len(c1.Code) != 3+CouponCodeLength || other.Code == c1.Code {
		t.Fatalf("coupons %q %q %q: want one stable WB- code per key", c1.Code, c2.Code, other.Code)
	}
	if n := len(m.Coupons()); n != 2 {
		t.Errorf("%d coupons, want 2", n)
	}
	tr := TaskRequest{Key: "e1/t/1", CustomerID: "c1", Assignee: "rm", Title: "Call"}
	r1, _ := m.CreateTask(ctx, tr)
	r2, _ := m.CreateTask(ctx, tr)
	if r1 != r2 || len(m.Tasks()) != 1 {
		t.Fatalf("tasks %v %v (%d created), want one", r1, r2, len(m.Tasks()))
	}
}

func TestMemoryUpdateProfile(t *testing.T) {
	m, ctx := newMem(), context.Background()
	u := ProfileUpdate{Key: "e1/u/1", CustomerID: "c1", Set: map[string]any{"attrs.vip": true, "tier": "gold"}, AddTags: []string{"a", "b"}, Stage: "loyal"}
	if err := m.UpdateProfile(ctx, u); err != nil {
		t.Fatal(err)
	}
	c, _ := m.Customer("c1")
	if c.Attrs["vip"] != true || c.Tier != "gold" || c.Stage != "loyal" || len(c.Tags) != 2 {
		t.Fatalf("profile after update: %+v", c)
	}
	// Applied once per key: a retry after a later change does not undo it.
	_ = m.UpdateProfile(ctx, ProfileUpdate{Key: "e1/u/2", CustomerID: "c1", RemoveTags: []string{"a"}})
	_ = m.UpdateProfile(ctx, u)
	if c, _ := m.Customer("c1"); len(c.Tags) != 1 || c.Tags[0] != "b" {
		t.Fatalf("tags after retried update = %v, want [b]", c.Tags)
	}
	err := m.UpdateProfile(ctx, ProfileUpdate{Key: "e1/u/3", CustomerID: "c1", Set: map[string]any{"email": "x"}})
	if !errors.Is(err, ErrPermanent) {
		t.Fatalf("setting email: err = %v, want ErrPermanent", err)
	}
	if _, err := m.LoadCustomer(ctx, "nobody"); !errors.Is(err, ErrPermanent) {
		t.Fatalf("unknown customer: err = %v, want ErrPermanent", err)
	}
}

func TestTemporalAdapterMarksPermanentErrors(t *testing.T) {
	a := NewTemporal(NewMemory())
	_, err := a.LoadCustomer(context.Background(), "nobody")
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v", err)
	}
	type nonRetryable interface{ NonRetryable() bool }
	var nr nonRetryable
	if !errors.As(err, &nr) || !nr.NonRetryable() {
		t.Fatalf("err %T is not a non-retryable application error", err)
	}
}

func TestMemoryConcurrentRetriesApplyOnce(t *testing.T) {
	m, ctx := newMem(), context.Background()
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			_, _ = m.SendMessage(ctx, sendReq("same-key", t0))
			_, _ = m.AdjustPoints(ctx, PointsRequest{Key: "p", CustomerID: "c1", Delta: 5})
			_, _ = m.SendMessage(ctx, sendReq(string(rune('a'+i)), t0))
		}()
	}
	for range 8 {
		<-done
	}
	if n := len(m.Messages()); n != 9 {
		t.Errorf("%d messages, want 9 (one per key)", n)
	}
	if c, _ := m.Customer("c1"); c.Points != 105 {
		t.Errorf("points %d, want 105 (one award)", c.Points)
	}
}
