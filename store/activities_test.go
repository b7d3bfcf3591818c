package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
	"github.com/rapport-crm/rapport/unsubscribe"
)

// Every activity run twice with the same input changes the database once
// and answers the same.
func TestActivitiesIdempotent(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	c := mustCustomer(t, s, rules.Customer{ID: "c1", Email: "ann@example.com", Name: "Ann"})
	e := enrollment("en1", "winback", "c1")

	twice := func(name string, fn func() (any, error)) {
		t.Helper()
		a, err := fn()
		if err != nil {
			t.Fatalf("%s first: %v", name, err)
		}
		b, err := fn()
		if err != nil {
			t.Fatalf("%s second: %v", name, err)
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%s answered %v then %v", name, a, b)
		}
	}
	twice("RecordStart", func() (any, error) {
		return s.RecordStart(ctx, activities.EntryRequest{Enrollment: e, Reentry: "never", At: t0})
	})
	twice("RecordStep", func() (any, error) {
		return nil, s.RecordStep(ctx, activities.StepRecord{Enrollment: e, Key: "en1/mail/1", StepID: "mail", Kind: "send", At: t0})
	})
	twice("SendMessage", func() (any, error) { return sender(s).SendMessage(ctx, sendReq(e, c, "en1/mail/1", t0)) })
	twice("AdjustPoints", func() (any, error) {
		return s.AdjustPoints(ctx, activities.PointsRequest{Enrollment: e, Key: "en1/pts/1", CustomerID: "c1", Delta: 50, Reason: "welcome"})
	})
	twice("IssueCoupon", func() (any, error) {
		return s.IssueCoupon(ctx, activities.CouponRequest{Enrollment: e, Key: "en1/cpn/1", CustomerID: "c1", Kind: "percent", Value: 15, ExpiresAt: t0.Add(14 * 24 * time.Hour), Prefix: "WB"})
	})
	twice("CreateTask", func() (any, error) {
		return s.CreateTask(ctx, activities.TaskRequest{Enrollment: e, Key: "en1/task/1", CustomerID: "c1", Assignee: "rm", Title: "Call Ann", DueAt: t0.Add(48 * time.Hour)})
	})
	twice("UpdateProfile", func() (any, error) {
		return nil, s.UpdateProfile(ctx, activities.ProfileUpdate{Enrollment: e, Key: "en1/upd/1", CustomerID: "c1",
			Set: map[string]any{"attrs.segment": "lapsed", "tier": "silver"}, AddTags: []string{"won_back"}, Stage: "at_risk"})
	})
	twice("RecordOutcome", func() (any, error) {
		return nil, s.RecordOutcome(ctx, activities.Outcome{Enrollment: e, Status: activities.StatusCompleted, At: t0.Add(time.Hour)})
	})

	for table, want := range map[string]int{
		"enrollments": 1, "enrollment_steps": 1, "messages": 1, "points_ledger": 1, "coupons": 1, "tasks": 1,
	} {
		if n := count(t, s, "SELECT count(*) FROM "+table); n != want {
			t.Errorf("%s has %d rows, want %d", table, n, want)
		}
	}
	got, _ := s.Customer(ctx, "c1")
	if got.Points != 50 || got.Tier != "silver" || got.Stage != "at_risk" || got.Attrs["segment"] != "lapsed" || fmt.Sprint(got.Tags) != "[won_back]" {
		t.Errorf("customer after activities: %+v", got)
	}
	if n := count(t, s, `SELECT count(*) FROM enrollments WHERE status = 'completed' AND current_step = 'mail'`); n != 1 {
		t.Errorf("enrollment not completed at step mail")
	}
	if n := count(t, s, `SELECT count(*) FROM messages WHERE status = 'sent' AND attempts = 1`); n != 1 {
		t.Errorf("message not sent exactly once")
	}
	// A later outcome does not overwrite the first.
	if err := s.RecordOutcome(ctx, activities.Outcome{Enrollment: e, Status: activities.StatusFailed, At: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM enrollments WHERE status = 'completed'`); n != 1 {
		t.Errorf("second outcome overwrote the first")
	}
}

func TestUnknownCustomerIsPermanent(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	e := enrollment("en1", "winback", "ghost")
	checks := map[string]error{}
	_, checks["RecordStart"] = s.RecordStart(ctx, activities.EntryRequest{Enrollment: e, At: t0})
	_, checks["SendMessage"] = sender(s).SendMessage(ctx, sendReq(e, rules.Customer{ID: "ghost"}, "k", t0))
	_, checks["AdjustPoints"] = s.AdjustPoints(ctx, activities.PointsRequest{Key: "k", CustomerID: "ghost", Delta: 1})
	_, checks["IssueCoupon"] = s.IssueCoupon(ctx, activities.CouponRequest{Key: "k", CustomerID: "ghost", Kind: "amount", Value: 5, ExpiresAt: t0})
	_, checks["CreateTask"] = s.CreateTask(ctx, activities.TaskRequest{Key: "k", CustomerID: "ghost", Assignee: "a", Title: "t"})
	checks["UpdateProfile"] = s.UpdateProfile(ctx, activities.ProfileUpdate{Key: "k", CustomerID: "ghost", Tier: "gold"})
	checks["SetConsent"] = s.SetConsent(ctx, "ghost", "email", "marketing", false, "test")
	for name, err := range checks {
		if !errors.Is(err, activities.ErrPermanent) {
			t.Errorf("%s for unknown customer: err = %v, want ErrPermanent", name, err)
		}
	}
	_, err := sender(s).SendMessage(ctx, activities.SendRequest{Key: "k2", Channel: "pigeon", Customer: rules.Customer{ID: "ghost"}})
	if !errors.Is(err, activities.ErrPermanent) {
		t.Errorf("unknown channel: err = %v, want ErrPermanent", err)
	}
}

// Concurrent awards to one customer neither lose updates nor drift from
// the ledger.
func TestPointsConcurrentExactBalance(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	mustCustomer(t, s, rules.Customer{ID: "c1"})
	warmPool(t, s, 10)
	const workers, each = 10, 100
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				// Every award is also retried once, as an activity would be.
				req := activities.PointsRequest{Key: fmt.Sprintf("w%d/%d", w, i), CustomerID: "c1", Delta: 3, Reason: "test"}
				for range 2 {
					if _, err := s.AdjustPoints(ctx, req); err != nil {
						t.Errorf("award: %v", err)
						return
					}
				}
			}
		}(w)
	}
	wg.Wait()
	c, _ := s.Customer(ctx, "c1")
	want := int64(workers * each * 3)
	if c.Points != want {
		t.Errorf("balance = %d, want %d", c.Points, want)
	}
	if sum := count(t, s, `SELECT sum(delta) FROM points_ledger WHERE customer_id = 'c1'`); int64(sum) != want {
		t.Errorf("ledger sum = %d, want %d", sum, want)
	}
	if n := count(t, s, `SELECT count(*) FROM points_ledger`); n != workers*each {
		t.Errorf("%d ledger entries, want %d", n, workers*each)
	}
	// balance_after forms an unbroken running sum in ledger order.
	if n := count(t, s, `SELECT count(*) FROM (
		SELECT balance_after, sum(delta) OVER (ORDER BY id) AS running FROM points_ledger) x
		WHERE balance_after <> running`); n != 0 {
		t.Errorf("%d ledger entries whose balance_after is not the running sum", n)
	}
}

// A deduction larger than the balance is refused whole, never clamped,
// with the reason in plain words; the balance and the ledger stay as they
// were. A deduction the balance covers, to exactly zero, goes through.
func TestPointsDeductNeverBelowZero(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	mustCustomer(t, s, rules.Customer{ID: "c1"})
	if _, err := s.AdjustPoints(ctx, activities.PointsRequest{Key: "a", CustomerID: "c1", Delta: 17}); err != nil {
		t.Fatal(err)
	}
	res, err := s.AdjustPoints(ctx, activities.PointsRequest{Key: "b", CustomerID: "c1", Delta: -4983, Reason: "refund"})
	const want = "deduction of 4983 points refused: the balance is 17, and a balance never goes below zero"
	if err == nil || err.Error() != want || res.Balance != 0 {
		t.Fatalf("deduct 4983 of 17: %+v, err %v; want %q", res, err, want)
	}
	if !errors.Is(err, activities.ErrPermanent) || !errors.Is(err, activities.ErrInsufficientPoints) {
		t.Errorf("refusal %v is not permanent and insufficient points", err)
	}
	if c, _ := s.Customer(ctx, "c1"); c.Points != 17 {
		t.Errorf("balance after the refusal = %d, want 17 unchanged", c.Points)
	}
	if n := count(t, s, `SELECT count(*) FROM points_ledger WHERE key = 'b'`); n != 0 {
		t.Errorf("the refused deduction left %d ledger entries", n)
	}
	if res, err := s.AdjustPoints(ctx, activities.PointsRequest{Key: "c", CustomerID: "c1", Delta: -17, Reason: "redeem"}); err != nil || res.Balance != 0 {
		t.Fatalf("deduct 17 of 17: %+v, %v; want balance 0", res, err)
	}
	if _, err := s.AdjustPoints(ctx, activities.PointsRequest{Key: "d", CustomerID: "c1", Delta: -1}); !errors.Is(err, activities.ErrInsufficientPoints) {
		t.Errorf("deduct 1 of 0: err = %v, want refused", err)
	}
	if n := count(t, s, `SELECT sum(delta)::int FROM points_ledger WHERE customer_id = 'c1'`); n != 0 {
		t.Errorf("ledger sums to %d, want the balance 0", n)
	}
}

func TestCouponCodesUnique(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	mustCustomer(t, s, rules.Customer{ID: "c1"})
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		c, err := s.IssueCoupon(ctx, activities.CouponRequest{Key: fmt.Sprint(i), CustomerID: "c1", Kind: "amount", Value: 5, ExpiresAt: t0, Prefix: "wb"})
		if err != nil {
			t.Fatal(err)
		}
		if seen[c.Code] || len(c.Code) != len("WB-")+10 || c.Code[:3] != "WB-" {
			t.Errorf("code %q duplicate or malformed", c.Code)
		}
		seen[c.Code] = true
	}
	_, err := s.IssueCoupon(ctx, activities.CouponRequest{Key: "bad", CustomerID: "c1", Kind: "percent", Value: 150, ExpiresAt: t0})
	if !errors.Is(err, activities.ErrPermanent) {
		t.Errorf("150 percent coupon: err = %v, want permanent", err)
	}
}

func TestReentryPolicies(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	mustCustomer(t, s, rules.Customer{ID: "c1"})
	start := func(id, policy string, cooldown time.Duration, at time.Time) activities.EntryResult {
		t.Helper()
		res, err := s.RecordStart(ctx, activities.EntryRequest{Enrollment: enrollment(id, "pb-"+policy, "c1"), Reentry: policy, Cooldown: cooldown, At: at})
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		return res
	}
	end := func(id, policy string) {
		t.Helper()
		if err := s.RecordOutcome(ctx, activities.Outcome{Enrollment: enrollment(id, "pb-"+policy, "c1"), Status: activities.StatusCompleted, At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	day := 24 * time.Hour

	if r := start("n1", "never", 0, t0); !r.Admitted {
		t.Fatalf("never: first refused: %+v", r)
	}
	if r := start("n2", "never", 0, t0.Add(day)); r.Admitted || r.Reason != store.RefusedActive {
		t.Errorf("never while active: %+v, want refused active", r)
	}
	end("n1", "never")
	if r := start("n3", "never", 0, t0.Add(400*day)); r.Admitted || r.Reason != store.RefusedEnrolled {
		t.Errorf("never after completion: %+v, want refused already_enrolled", r)
	}
	if r := start("n1", "never", 0, t0); !r.Admitted {
		t.Errorf("never: asking again for the admitted enrollment: %+v", r)
	}

	start("a1", "after", 30*day, t0)
	end("a1", "after")
	if r := start("a2", "after", 30*day, t0.Add(29*day)); r.Admitted || r.Reason != store.RefusedCooldown {
		t.Errorf("after inside cooldown: %+v, want refused cooldown", r)
	}
	if r := start("a3", "after", 30*day, t0.Add(31*day)); !r.Admitted {
		t.Errorf("after past cooldown: %+v, want admitted", r)
	}

	start("w1", "always", 0, t0)
	end("w1", "always")
	if r := start("w2", "always", 0, t0.Add(time.Minute)); !r.Admitted {
		t.Errorf("always after completion: %+v, want admitted", r)
	}

	// One trigger event starts one enrollment, even under always: a
	// dispatch retried after the first enrollment ended is refused.
	byEvent := func(id, trigger string) activities.EntryResult {
		t.Helper()
		res, err := s.RecordStart(ctx, activities.EntryRequest{Enrollment: enrollment(id, "pb-receipt", "c1"), Reentry: "always", At: t0, TriggerID: trigger})
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		return res
	}
	if r := byEvent("t1", "order-9"); !r.Admitted {
		t.Fatalf("first enrollment by order-9 refused: %+v", r)
	}
	if err := s.RecordOutcome(ctx, activities.Outcome{Enrollment: enrollment("t1", "pb-receipt", "c1"), Status: activities.StatusCompleted, At: t0}); err != nil {
		t.Fatal(err)
	}
	if r := byEvent("t2", "order-9"); r.Admitted || r.Reason != activities.ReasonDuplicateTrigger {
		t.Errorf("second enrollment by the same event: %+v, want refused duplicate_trigger", r)
	}
	if r := byEvent("t1", "order-9"); !r.Admitted {
		t.Errorf("asking again for the admitted enrollment: %+v", r)
	}
	if r := byEvent("t3", "order-10"); !r.Admitted {
		t.Errorf("a new event under always: %+v, want admitted", r)
	}

	// A rejected enrollment does not count against the customer.
	rej := enrollment("r1", "pb-rej", "c1")
	if err := s.RecordOutcome(ctx, activities.Outcome{Enrollment: rej, Status: activities.StatusRejected, Reason: "audience", At: t0}); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.RecordStart(ctx, activities.EntryRequest{Enrollment: enrollment("r2", "pb-rej", "c1"), Reentry: "never", At: t0}); !r.Admitted {
		t.Errorf("never after a rejected enrollment: %+v, want admitted", r)
	}
}

// Ten triggers racing for one customer admit exactly one enrollment under
// every policy.
func TestReentryConcurrent(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	mustCustomer(t, s, rules.Customer{ID: "c1"})
	warmPool(t, s, 10)
	for _, policy := range []string{"never", "after", "always"} {
		var admitted atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				res, err := s.RecordStart(ctx, activities.EntryRequest{
					Enrollment: enrollment(fmt.Sprintf("%s-%d", policy, i), "pb-"+policy, "c1"),
					Reentry:    policy, Cooldown: time.Hour, At: t0,
				})
				if err != nil {
					t.Errorf("%s: %v", policy, err)
				}
				if res.Admitted {
					admitted.Add(1)
				}
			}(i)
		}
		close(start)
		wg.Wait()
		if n := admitted.Load(); n != 1 {
			t.Errorf("%s: %d of 10 racing enrollments admitted, want 1", policy, n)
		}
	}
}

func TestSendSuppressedByConsentAndHoldout(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	c := mustCustomer(t, s, rules.Customer{ID: "c1", Email: "ann@example.com", Phone: "+4915112345678"})
	e := enrollment("en1", "winback", "c1")

	if err := s.SetConsent(ctx, "c1", "email", "marketing", false, "preference_centre"); err != nil {
		t.Fatal(err)
	}
	res, err := sender(s).SendMessage(ctx, sendReq(e, c, "k1", t0))
	if err != nil || res.Status != activities.SendSuppressed || res.Reason != activities.ReasonConsent {
		t.Errorf("withdrawn marketing: %+v %v, want suppressed/consent", res, err)
	}
	// Another topic on the same channel is unaffected (opt-out is per topic).
	r := sendReq(e, c, "k2", t0)
	r.Topic = "surveys"
	if res, _ := sender(s).SendMessage(ctx, r); res.Status != activities.SendSent {
		t.Errorf("surveys topic: %+v, want sent", res)
	}
	// A transactional message ignores consent.
	r = sendReq(e, c, "k3", t0)
	r.Transactional = true
	if res, _ := sender(s).SendMessage(ctx, r); res.Status != activities.SendSent {
		t.Errorf("transactional: %+v, want sent", res)
	}
	// Channel-wide withdrawal ('*') covers every topic; an explicit grant
	// for one topic takes precedence over it.
	if err := s.SetConsent(ctx, "c1", "sms", unsubscribe.AllTopics, false, "stop_reply"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetConsent(ctx, "c1", "sms", "loyalty", true, "preference_centre"); err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]activities.SendStatus{"surveys": activities.SendSuppressed, "loyalty": activities.SendSent} {
		r := sendReq(e, c, "sms-"+topic, t0)
		r.Channel, r.Topic = "sms", topic
		if res, _ := sender(s).SendMessage(ctx, r); res.Status != want {
			t.Errorf("sms %s after STOP: %+v, want %s", topic, res, want)
		}
	}

	h := e
	h.ID, h.Holdout = "en2", true
	r = sendReq(h, c, "h1", t0)
	r.Topic = "loyalty"
	if res, _ := sender(s).SendMessage(ctx, r); res.Status != activities.SendSuppressed || res.Reason != activities.ReasonHoldout {
		t.Errorf("holdout: %+v, want suppressed/holdout", res)
	}
	r.Key, r.Transactional = "h2", true
	if res, _ := sender(s).SendMessage(ctx, r); res.Status != activities.SendSuppressed || res.Reason != activities.ReasonHoldout {
		t.Errorf("transactional in holdout: %+v, want suppressed/holdout (a holdout receives nothing)", res)
	}

	noAddr := mustCustomer(t, s, rules.Customer{ID: "c2"})
	res, err = sender(s).SendMessage(ctx, sendReq(enrollment("en3", "winback", "c2"), noAddr, "n1", t0))
	if err != nil || res.Status != activities.SendSuppressed || res.Reason != activities.ReasonNoAddress {
		t.Errorf("no address: %+v %v, want suppressed/no_address", res, err)
	}
	// Both holdout messages and the one without an address suppressed.
	want := map[string]int{"suppressed": 5, "sent": 3, "failed": 0}
	for status, n := range want {
		if got := count(t, s, `SELECT count(*) FROM messages WHERE status = $1`, status); got != n {
			t.Errorf("%d %s messages recorded, want %d", got, status, n)
		}
	}
}

func TestUnsubscribeAppliesConsent(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	c := mustCustomer(t, s, rules.Customer{ID: "c1", Email: "ann@example.com"})
	claims := unsubscribe.Claims{Customer: "c1", Channel: "email", Topic: "marketing", Expires: t0.Add(time.Hour)}
	for range 2 {
		if err := s.Unsubscribe(ctx, claims); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM consents WHERE customer_id = 'c1' AND NOT granted AND source = 'unsubscribe_link'`); n != 1 {
		t.Errorf("%d withdrawal rows, want 1", n)
	}
	res, _ := sender(s).SendMessage(ctx, sendReq(enrollment("en1", "winback", "c1"), c, "k", t0))
	if res.Status != activities.SendSuppressed || res.Reason != activities.ReasonConsent {
		t.Errorf("after unsubscribe: %+v, want suppressed/consent", res)
	}
}

// The global cap holds when 20 sends with different keys race.
func TestGlobalCapConcurrent(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	c := mustCustomer(t, s, rules.Customer{ID: "c1", Email: "ann@example.com"})
	warmPool(t, s, 12)
	var sent, suppressed atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			e := enrollment(fmt.Sprintf("en%d", i), fmt.Sprintf("pb%d", i%4), "c1")
			res, err := sender(s).SendMessage(ctx, sendReq(e, c, fmt.Sprintf("k%d", i), t0.Add(time.Duration(i)*time.Second)))
			if err != nil {
				t.Errorf("send: %v", err)
			}
			switch res.Status {
			case activities.SendSent:
				sent.Add(1)
			case activities.SendSuppressed:
				suppressed.Add(1)
			}
		}(i)
	}
	close(start)
	wg.Wait()
	if sent.Load() != 3 || suppressed.Load() != 17 {
		t.Errorf("sent %d suppressed %d, want 3 and 17 (cap 3/7d)", sent.Load(), suppressed.Load())
	}
	// The cap is per channel: an SMS still goes out.
	mustCustomer(t, s, rules.Customer{ID: "c1", Phone: "+4915112345678"})
	r := sendReq(enrollment("sms", "pb", "c1"), c, "sms", t0)
	r.Channel = "sms"
	if res, _ := sender(s).SendMessage(ctx, r); res.Status != activities.SendSent {
		t.Errorf("sms under email cap: %+v, want sent", res)
	}
}

// Over a cap with defer: nothing is recorded, RetryAt is when the oldest
// counted message leaves the window, and the retry with the same key
// sends then.
func TestCapDeferThenSend(t *testing.T) {
	t.Parallel()
	cfg := storetest.Config()
	cfg.CapMax, cfg.CapPer = 10, 24*time.Hour // global cap out of the way
	s := storetest.NewWithConfig(t, cfg)
	ctx := context.Background()
	c := mustCustomer(t, s, rules.Customer{ID: "c1", Email: "ann@example.com"})
	e := enrollment("en1", "nurture", "c1")
	withCap := func(key string, now time.Time) activities.SendRequest {
		r := sendReq(e, c, key, now)
		r.CapMax, r.CapPer, r.CapDefer = 2, 7*24*time.Hour, true
		return r
	}
	for i, at := range []time.Time{t0, t0.Add(24 * time.Hour)} {
		if res, err := sender(s).SendMessage(ctx, withCap(fmt.Sprint(i), at)); err != nil || res.Status != activities.SendSent {
			t.Fatalf("send %d: %+v %v", i, res, err)
		}
	}
	res, err := sender(s).SendMessage(ctx, withCap("third", t0.Add(2*24*time.Hour)))
	wantRetry := t0.Add(7 * 24 * time.Hour)
	if err != nil || res.Status != activities.SendDeferred || !res.RetryAt.Equal(wantRetry) {
		t.Fatalf("over cap: %+v %v, want deferred until %v", res, err, wantRetry)
	}
	if n := count(t, s, `SELECT count(*) FROM messages WHERE key = 'third'`); n != 0 {
		t.Errorf("deferred message recorded %d rows, want none", n)
	}
	res, err = sender(s).SendMessage(ctx, withCap("third", res.RetryAt))
	if err != nil || res.Status != activities.SendSent {
		t.Errorf("retry at RetryAt: %+v %v, want sent", res, err)
	}
	// Without defer the same situation is recorded as suppressed.
	r := withCap("fourth", t0.Add(7*24*time.Hour+time.Minute))
	r.CapDefer = false
	if res, _ := sender(s).SendMessage(ctx, r); res.Status != activities.SendSuppressed || res.Reason != activities.ReasonFrequencyCap {
		t.Errorf("over cap with skip: %+v, want suppressed/frequency_cap", res)
	}
}
