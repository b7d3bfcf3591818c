// Package activitiestest is the contract every implementation of
// activities.All keeps: one table of behaviours, run against the in-memory
// implementation (activities.Memory, behind `rapport simulate`) from the
// activities tests and against the PostgreSQL store from the store tests.
// A behaviour that differs between them fails one of the two runs, so the
// simulator cannot drift from production unnoticed.
package activitiestest

import (
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// World is an implementation under test with the means to set up the
// facts its activities read, the way production sets them up.
type World interface {
	activities.All
	// Put stores a new customer profile, points included.
	Put(t testing.TB, c rules.Customer)
	// SetConsent records a consent decision (topic "*" for every topic).
	SetConsent(t testing.TB, customerID, channel, topic string, granted bool)
	// RecordEvent stores an event as the event API does; false for a
	// duplicate ID.
	RecordEvent(t testing.TB, customerID string, ev rules.Event) bool
	// Suppress puts an address on the suppression list with a reason, as
	// a provider's hard bounce, complaint or run of soft bounces does.
	Suppress(t testing.TB, channel, address, reason string)
	// Recorded is the locale and rendered subject of the message recorded
	// under key.
	Recorded(t testing.TB, key string) (locale, subject string)
}

// Config is the operator's configuration a World is built with.
type Config struct {
	// The global frequency cap per customer and channel; 0 is off.
	GlobalCapMax int
	GlobalCapPer time.Duration
}

// New builds a fresh, empty World with cfg.
type New func(t *testing.T, cfg Config) World

// T0 is the time the cases start at: whole seconds, as PostgreSQL keeps
// microseconds.
var T0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// contractCase is one behaviour: run sets up the world and checks.
type contractCase struct {
	name string
	cfg  Config
	run  func(t *testing.T, w World)
}

// Run runs every behaviour of the contract against the World newWorld
// builds, each in a fresh one.
func Run(t *testing.T, newWorld New) {
	var cases []contractCase
	cases = append(cases, sendCases()...)
	cases = append(cases, localeCases()...)
	cases = append(cases, suppressionCases()...)
	cases = append(cases, entryCases()...)
	cases = append(cases, profileCases()...)
	cases = append(cases, couponCases()...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newWorld(t, c.cfg))
		})
	}
}

var ctx = context.Background()

// ada is the customer most cases use.
func ada() rules.Customer {
	return rules.Customer{ID: "c1", Name: "Ada", Email: "ada@example.com", Phone: "+4915100000001", Locale: "en", Timezone: "UTC", Tier: "gold", Points: 100}
}

func enrollment(id, playbook string) activities.Enrollment {
	return activities.Enrollment{ID: id, WorkflowID: "wf-" + id, Playbook: playbook, Version: "v1", CustomerID: "c1"}
}

// mail is a marketing email of playbook winback, enrollment e1.
func mail(key string, at time.Time) activities.SendRequest {
	return activities.SendRequest{
		Enrollment: enrollment("e1", "winback"), Key: key, StepID: "mail", Channel: "email", Template: "miss_you",
		Locale: "en", Topic: "marketing", Subject: "We miss you, {{ customer.name }}",
		Text: "Hi {{ customer.name }}. Unsubscribe: {{ unsubscribe_url }}", Customer: ada(), Now: at,
	}
}

func send(t *testing.T, w World, r activities.SendRequest) activities.SendResult {
	t.Helper()
	res, err := w.SendMessage(ctx, r)
	if err != nil {
		t.Fatalf("send %s: %v", r.Key, err)
	}
	return res
}

func wantSend(t *testing.T, got activities.SendResult, status activities.SendStatus, reason string) {
	t.Helper()
	if got.Status != status || got.Reason != reason {
		t.Fatalf("send = %+v, want %s (%s)", got, status, reason)
	}
}

func sendCases() []contractCase {
	return []contractCase{
		{name: "send/sent to the stored address", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			r := mail("k1", T0)
			r.Customer.Email = "stale@example.com" // the journey's copy; the stored address wins
			res := send(t, w, r)
			wantSend(t, res, activities.SendSent, "")
			if res.To != "ada@example.com" || res.ProviderID == "" {
				t.Fatalf("sent %+v, want to ada@example.com with a provider id", res)
			}
		}},
		{name: "send/idempotent by key", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			first := send(t, w, mail("k1", T0))
			again := send(t, w, mail("k1", T0.Add(time.Hour)))
			if again != first {
				t.Fatalf("retried send = %+v, want the first result %+v", again, first)
			}
		}},
		{name: "send/no address is suppressed, transactional too", run: func(t *testing.T, w World) {
			c := ada()
			c.Email = ""
			w.Put(t, c)
			wantSend(t, send(t, w, mail("k1", T0)), activities.SendSuppressed, activities.ReasonNoAddress)
			r := mail("k2", T0)
			r.Transactional = true
			wantSend(t, send(t, w, r), activities.SendSuppressed, activities.ReasonNoAddress)
			sms := mail("k3", T0)
			sms.Channel = "sms"
			wantSend(t, send(t, w, sms), activities.SendSent, "") // the phone is there
		}},
		{name: "send/webhook needs no address", run: func(t *testing.T, w World) {
			w.Put(t, rules.Customer{ID: "c1", Name: "Ada"})
			r := mail("k1", T0)
			r.Channel = "webhook"
			res := send(t, w, r)
			wantSend(t, res, activities.SendSent, "")
			if res.To != "c1" {
				t.Fatalf("webhook to %q, want the customer id", res.To)
			}
		}},
		{name: "send/holdout receives nothing, transactional included", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			r := mail("k1", T0)
			r.Enrollment.Holdout = true
			wantSend(t, send(t, w, r), activities.SendSuppressed, activities.ReasonHoldout)
			r.Key, r.Transactional = "k2", true
			wantSend(t, send(t, w, r), activities.SendSuppressed, activities.ReasonHoldout)
		}},
		{name: "send/consent for the topic", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			w.SetConsent(t, "c1", "email", "marketing", false)
			wantSend(t, send(t, w, mail("k1", T0)), activities.SendSuppressed, activities.ReasonConsent)
			other := mail("k2", T0)
			other.Topic = "loyalty"
			wantSend(t, send(t, w, other), activities.SendSent, "")
			sms := mail("k3", T0)
			sms.Channel = "sms"
			wantSend(t, send(t, w, sms), activities.SendSent, "")
			tx := mail("k4", T0)
			tx.Transactional = true
			wantSend(t, send(t, w, tx), activities.SendSent, "")
		}},
		{name: "send/no topic is marketing", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			w.SetConsent(t, "c1", "email", activities.DefaultTopic, false)
			r := mail("k1", T0)
			r.Topic = ""
			wantSend(t, send(t, w, r), activities.SendSuppressed, activities.ReasonConsent)
		}},
		{name: "send/consent for every topic, the topic's own decision first", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			w.SetConsent(t, "c1", "email", activities.AllTopics, false)
			wantSend(t, send(t, w, mail("k1", T0)), activities.SendSuppressed, activities.ReasonConsent)
			w.SetConsent(t, "c1", "email", "loyalty", true)
			r := mail("k2", T0)
			r.Topic = "loyalty"
			wantSend(t, send(t, w, r), activities.SendSent, "")
		}},
		{name: "send/playbook cap suppresses", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			capped := func(key string, at time.Time) activities.SendRequest {
				r := mail(key, at)
				r.CapMax, r.CapPer = 2, 7*day
				return r
			}
			wantSend(t, send(t, w, capped("k1", T0)), activities.SendSent, "")
			sms := capped("k2", T0.Add(time.Hour))
			sms.Channel = "sms" // the playbook's cap counts every channel
			wantSend(t, send(t, w, sms), activities.SendSent, "")
			wantSend(t, send(t, w, capped("k3", T0.Add(2*time.Hour))), activities.SendSuppressed, activities.ReasonFrequencyCap)
			other := capped("k4", T0.Add(3*time.Hour))
			other.Enrollment = enrollment("e2", "nurture") // another playbook's cap
			wantSend(t, send(t, w, other), activities.SendSent, "")
			wantSend(t, send(t, w, capped("k5", T0.Add(7*day))), activities.SendSent, "") // k1 left the window
		}},
		{name: "send/playbook cap defers to when it frees up", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			r := mail("k1", T0)
			r.CapMax, r.CapPer, r.CapDefer = 1, 7*day, true
			wantSend(t, send(t, w, r), activities.SendSent, "")
			r.Key, r.Now = "k2", T0.Add(day)
			res := send(t, w, r)
			wantSend(t, res, activities.SendDeferred, activities.ReasonFrequencyCap)
			if !res.RetryAt.Equal(T0.Add(7 * day)) {
				t.Fatalf("retry at %s, want %s", res.RetryAt, T0.Add(7*day))
			}
			r.Now = res.RetryAt // the same key, asked again: decided afresh
			wantSend(t, send(t, w, r), activities.SendSent, "")
		}},
		{name: "send/global cap per channel across playbooks", cfg: Config{GlobalCapMax: 2, GlobalCapPer: 7 * day}, run: func(t *testing.T, w World) {
			w.Put(t, ada())
			wantSend(t, send(t, w, mail("k1", T0)), activities.SendSent, "")
			r := mail("k2", T0.Add(time.Hour))
			r.Enrollment = enrollment("e2", "nurture")
			wantSend(t, send(t, w, r), activities.SendSent, "")
			r = mail("k3", T0.Add(2*time.Hour))
			r.Enrollment = enrollment("e3", "birthday")
			wantSend(t, send(t, w, r), activities.SendSuppressed, activities.ReasonFrequencyCap)
			sms := mail("k4", T0.Add(2*time.Hour))
			sms.Channel = "sms"
			wantSend(t, send(t, w, sms), activities.SendSent, "")
			tx := mail("k5", T0.Add(2*time.Hour))
			tx.Transactional = true
			wantSend(t, send(t, w, tx), activities.SendSent, "")
			d := mail("k6", T0.Add(3*time.Hour))
			d.CapDefer, d.CapMax, d.CapPer = true, 10, day // the playbook's own cap allows it; the global one defers
			res := send(t, w, d)
			wantSend(t, res, activities.SendDeferred, activities.ReasonFrequencyCap)
			if !res.RetryAt.Equal(T0.Add(7 * day)) {
				t.Fatalf("retry at %s, want when the first email leaves the window (%s)", res.RetryAt, T0.Add(7*day))
			}
		}},
		{name: "send/caps count only what was sent, not suppressed or transactional", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			w.SetConsent(t, "c1", "email", "news", false)
			capped := func(key string, at time.Time) activities.SendRequest {
				r := mail(key, at)
				r.CapMax, r.CapPer = 1, 7*day
				return r
			}
			r := capped("k1", T0)
			r.Topic = "news"
			wantSend(t, send(t, w, r), activities.SendSuppressed, activities.ReasonConsent)
			tx := capped("k2", T0)
			tx.Transactional = true
			wantSend(t, send(t, w, tx), activities.SendSent, "")
			wantSend(t, send(t, w, capped("k3", T0.Add(time.Hour))), activities.SendSent, "")
			wantSend(t, send(t, w, capped("k4", T0.Add(2*time.Hour))), activities.SendSuppressed, activities.ReasonFrequencyCap)
		}},
		{name: "send/a template that cannot render is failed", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			r := mail("k1", T0)
			r.Text = "{{ customer.nope }}"
			wantSend(t, send(t, w, r), activities.SendFailed, activities.ReasonRenderError)
		}},
		{name: "send/unknown customer or no key is permanent", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			r := mail("k1", T0)
			r.Customer.ID, r.Enrollment.CustomerID = "nobody", "nobody"
			noKey := mail("", T0)
			for _, r := range []activities.SendRequest{r, noKey} {
				if _, err := w.SendMessage(ctx, r); !errors.Is(err, activities.ErrPermanent) {
					t.Errorf("key %q, customer %q: err = %v, want ErrPermanent", r.Key, r.Customer.ID, err)
				}
			}
		}},
	}
}

// start asks to enroll c1 in winback under reentry at at.
func start(t *testing.T, w World, id, reentry string, at time.Time, trigger string) activities.EntryResult {
	t.Helper()
	r := activities.EntryRequest{Enrollment: enrollment(id, "winback"), Reentry: reentry, At: at, TriggerID: trigger}
	if reentry == "after" {
		r.Cooldown = 30 * day
	}
	res, err := w.RecordStart(ctx, r)
	if err != nil {
		t.Fatalf("record start %s: %v", id, err)
	}
	return res
}

func end(t *testing.T, w World, id string, s activities.Status, at time.Time) {
	t.Helper()
	if err := w.RecordOutcome(ctx, activities.Outcome{Enrollment: enrollment(id, "winback"), Status: s, At: at}); err != nil {
		t.Fatalf("record outcome %s: %v", id, err)
	}
}

func wantEntry(t *testing.T, got activities.EntryResult, admitted bool, reason string) {
	t.Helper()
	if got.Admitted != admitted || got.Reason != reason {
		t.Fatalf("entry = %+v, want admitted %v (%s)", got, admitted, reason)
	}
}

func entryCases() []contractCase {
	return []contractCase{
		{name: "entry/one active enrollment at a time", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			wantEntry(t, start(t, w, "e1", "always", T0, "t1"), true, "")
			wantEntry(t, start(t, w, "e2", "always", T0.Add(time.Hour), "t2"), false, activities.ReasonActive)
			wantEntry(t, start(t, w, "e1", "always", T0, "t1"), true, "") // asked again: as recorded
			end(t, w, "e1", activities.StatusCompleted, T0.Add(day))
			wantEntry(t, start(t, w, "e3", "always", T0.Add(2*day), "t3"), true, "")
		}},
		{name: "entry/never", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			wantEntry(t, start(t, w, "e1", "never", T0, "t1"), true, "")
			end(t, w, "e1", activities.StatusExited, T0.Add(day))
			wantEntry(t, start(t, w, "e2", "never", T0.Add(400*day), "t2"), false, activities.ReasonAlreadyEnrolled)
			wantEntry(t, start(t, w, "e3", "", T0.Add(400*day), "t3"), false, activities.ReasonAlreadyEnrolled)
		}},
		{name: "entry/after a cooldown", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			wantEntry(t, start(t, w, "e1", "after", T0, "t1"), true, "")
			end(t, w, "e1", activities.StatusCompleted, T0.Add(day))
			wantEntry(t, start(t, w, "e2", "after", T0.Add(10*day), "t2"), false, activities.ReasonCooldown)
			wantEntry(t, start(t, w, "e3", "after", T0.Add(30*day), "t3"), true, "")
		}},
		{name: "entry/one trigger enrolls once", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			wantEntry(t, start(t, w, "e1", "always", T0, "t1"), true, "")
			end(t, w, "e1", activities.StatusRejected, T0)
			// Rejected (audience) does not count as an earlier entry, but the
			// same trigger still starts nothing twice.
			wantEntry(t, start(t, w, "e2", "always", T0, "t1"), false, activities.ReasonDuplicateTrigger)
			wantEntry(t, start(t, w, "e3", "never", T0.Add(day), "t2"), true, "")
		}},
		{name: "entry/a rejected enrollment asked again stays rejected", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			wantEntry(t, start(t, w, "e1", "always", T0, "t1"), true, "")
			end(t, w, "e1", activities.StatusRejected, T0)
			wantEntry(t, start(t, w, "e1", "always", T0, "t1"), false, activities.ReasonRejected)
		}},
		{name: "entry/an admission asked WithCustomer carries the profile LoadCustomer reads", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			r := activities.EntryRequest{Enrollment: enrollment("e1", "winback"), Reentry: "always", At: T0, TriggerID: "t1", WithCustomer: true}
			for range 2 { // asked again: the same
				res, err := w.RecordStart(ctx, r)
				if err != nil || !res.Admitted {
					t.Fatalf("record start: %+v %v", res, err)
				}
				if want := load(t, w, "c1"); res.Customer == nil || !reflect.DeepEqual(*res.Customer, want) {
					t.Fatalf("customer with the admission %+v, want %+v", res.Customer, want)
				}
			}
			refused := activities.EntryRequest{Enrollment: enrollment("e2", "winback"), Reentry: "always", At: T0, TriggerID: "t2", WithCustomer: true}
			if res, err := w.RecordStart(ctx, refused); err != nil || res.Admitted || res.Customer != nil {
				t.Fatalf("refused start: %+v %v, want refused without a customer", res, err)
			}
			if res := start(t, w, "e1", "always", T0, "t1"); res.Customer != nil {
				t.Fatalf("start not asked WithCustomer carries %+v", res.Customer)
			}
		}},
		{name: "entry/bad policies are permanent", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			for _, r := range []activities.EntryRequest{
				{Enrollment: enrollment("e1", "winback"), Reentry: "sometimes", At: T0},
				{Enrollment: enrollment("e2", "winback"), Reentry: "after", At: T0},
				{Enrollment: activities.Enrollment{ID: "e3", CustomerID: "c1"}, At: T0},
			} {
				if _, err := w.RecordStart(ctx, r); !errors.Is(err, activities.ErrPermanent) {
					t.Errorf("%+v: err = %v, want ErrPermanent", r, err)
				}
			}
		}},
		{name: "entry/a conversion is recorded once, for a started enrollment", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			wantEntry(t, start(t, w, "e1", "always", T0, "t1"), true, "")
			c := activities.Conversion{Enrollment: enrollment("e1", "winback"), Event: "purchase", EventID: "p1", At: T0.Add(day)}
			for range 2 { // a retry changes nothing
				if err := w.RecordConversion(ctx, c); err != nil {
					t.Fatalf("record conversion: %v", err)
				}
			}
			end(t, w, "e1", activities.StatusCompleted, T0.Add(2*day))
			if err := w.RecordConversion(ctx, c); err != nil {
				t.Fatalf("record conversion after the end: %v", err)
			}
			c.Enrollment = enrollment("never", "winback")
			if err := w.RecordConversion(ctx, c); !errors.Is(err, activities.ErrPermanent) {
				t.Fatalf("conversion of an enrollment never started: err = %v, want ErrPermanent", err)
			}
		}},
		{name: "entry/an outcome that is not final is permanent", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			wantEntry(t, start(t, w, "e1", "always", T0, "t1"), true, "")
			err := w.RecordOutcome(ctx, activities.Outcome{Enrollment: enrollment("e1", "winback"), Status: activities.StatusActive, At: T0})
			if !errors.Is(err, activities.ErrPermanent) {
				t.Fatalf("err = %v, want ErrPermanent", err)
			}
		}},
	}
}

func load(t *testing.T, w World, id string) rules.Customer {
	t.Helper()
	c, err := w.LoadCustomer(ctx, id)
	if err != nil {
		t.Fatalf("load %s: %v", id, err)
	}
	return c
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func profileCases() []contractCase {
	return []contractCase{
		{name: "profile/unknown customer is permanent", run: func(t *testing.T, w World) {
			if _, err := w.LoadCustomer(ctx, "nobody"); !errors.Is(err, activities.ErrPermanent) {
				t.Fatalf("err = %v, want ErrPermanent", err)
			}
		}},
		{name: "profile/every settable field, attrs and tags", run: func(t *testing.T, w World) {
			w.Put(t, rules.Customer{ID: "c1", Name: "Ada", Tags: []string{"a", "b"}})
			set := map[string]any{"attrs.industry": "retail"}
			for _, f := range engine.ProfileFields {
				set[f] = "v-" + f
			}
			u := activities.ProfileUpdate{Enrollment: enrollment("e1", "winback"), Key: "u1", CustomerID: "c1", Set: set,
				AddTags: []string{"c", "a"}, RemoveTags: []string{"b"}, Stage: "loyal"}
			if err := w.UpdateProfile(ctx, u); err != nil {
				t.Fatal(err)
			}
			c := load(t, w, "c1")
			got := map[string]string{"name": c.Name, "locale": c.Locale, "timezone": c.Timezone, "tier": c.Tier}
			for _, f := range engine.ProfileFields {
				if got[f] != "v-"+f {
					t.Errorf("%s = %q, want %q (fields: %v)", f, got[f], "v-"+f, got)
				}
			}
			if c.Attrs["industry"] != "retail" || !slices.Equal(c.Tags, []string{"a", "c"}) || c.Stage != "loyal" {
				t.Errorf("attrs %v, tags %v, stage %q", c.Attrs, c.Tags, c.Stage)
			}
		}},
		{name: "profile/other fields cannot be set", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			for _, f := range []string{"email", "phone", "stage", "points", "nope"} {
				u := activities.ProfileUpdate{Key: "u-" + f, CustomerID: "c1", Set: map[string]any{f: "x"}}
				if err := w.UpdateProfile(ctx, u); !errors.Is(err, activities.ErrPermanent) {
					t.Errorf("set %s: err = %v, want ErrPermanent", f, err)
				}
			}
			if c := load(t, w, "c1"); c.Email != "ada@example.com" {
				t.Errorf("email changed to %q", c.Email)
			}
		}},
		{name: "profile/points, and no deduction below zero", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			res, err := w.AdjustPoints(ctx, activities.PointsRequest{Key: "p1", CustomerID: "c1", Delta: 50, Reason: "purchase"})
			if err != nil || res.Balance != 150 {
				t.Fatalf("award = %+v, %v; want balance 150", res, err)
			}
			again, err := w.AdjustPoints(ctx, activities.PointsRequest{Key: "p1", CustomerID: "c1", Delta: 50, Reason: "purchase"})
			if err != nil || again.Balance != 150 {
				t.Fatalf("retried award = %+v, %v; want balance 150 again", again, err)
			}
			_, err = w.AdjustPoints(ctx, activities.PointsRequest{Key: "p2", CustomerID: "c1", Delta: -200, Reason: "redeem"})
			if !errors.Is(err, activities.ErrInsufficientPoints) || !errors.Is(err, activities.ErrPermanent) {
				t.Fatalf("deduction over the balance: err = %v", err)
			}
			if c := load(t, w, "c1"); c.Points != 150 {
				t.Fatalf("balance %d after a refused deduction, want 150", c.Points)
			}
		}},
		{name: "events/a purchase updates the metrics once", run: func(t *testing.T, w World) {
			w.Put(t, rules.Customer{ID: "c1", Name: "Ada"})
			buy := func(id string, amount float64, at time.Time) bool {
				return w.RecordEvent(t, "c1", rules.Event{ID: id, Name: "purchase", Amount: amount, Time: at})
			}
			if !buy("o1", 100, T0) {
				t.Fatal("first purchase reported a duplicate")
			}
			c := load(t, w, "c1")
			if c.OrderCount != 1 || c.LifetimeValue != 100 || c.AvgOrderValue != 100 || !c.LastPurchaseAt.Equal(T0) || c.PurchaseGap != 0 {
				t.Fatalf("after one purchase: %+v", c)
			}
			buy("o2", 50.005, T0.Add(10*day))
			if buy("o2", 50.005, T0.Add(10*day)) {
				t.Fatal("a duplicate event ID was stored again")
			}
			buy("o3", 0.10, T0.Add(4*day)) // late: arrives after o2 but happened before
			w.RecordEvent(t, "c1", rules.Event{ID: "v1", Name: "visit", Amount: 999, Time: T0.Add(20 * day)})
			c = load(t, w, "c1")
			if c.OrderCount != 3 || !near(c.LifetimeValue, 150.11) || !near(c.AvgOrderValue, 50.04) ||
				!c.LastPurchaseAt.Equal(T0.Add(10*day)) || !near(c.PurchaseGap, 5) {
				t.Fatalf("after three purchases and a visit: orders %d, value %v, average %v, last %s, gap %v",
					c.OrderCount, c.LifetimeValue, c.AvgOrderValue, c.LastPurchaseAt, c.PurchaseGap)
			}
		}},
		{name: "events/a refund takes its amount off the value once", run: func(t *testing.T, w World) {
			w.Put(t, rules.Customer{ID: "c1", Name: "Ada"})
			// Segment's spec names, as the event API stores them: the
			// default purchase and refund events of both implementations.
			w.RecordEvent(t, "c1", rules.Event{ID: "o1", Name: "order_completed", Amount: 100, Time: T0})
			w.RecordEvent(t, "c1", rules.Event{ID: "o2", Name: "order_completed", Amount: 10.01, Time: T0.Add(2 * day)})
			refund := func(id string, amount float64) bool {
				return w.RecordEvent(t, "c1", rules.Event{ID: id, Name: "order_refunded", Amount: amount, Time: T0.Add(3 * day)})
			}
			// 110.01 − 94.055 is 15.955 in decimals (rounded up to 15.96),
			// 15.95499… in float64 (rounded down).
			if !refund("r1", 94.055) {
				t.Fatal("first refund reported a duplicate")
			}
			if refund("r1", 94.055) {
				t.Fatal("a duplicate refund ID was stored again")
			}
			c := load(t, w, "c1")
			if c.OrderCount != 2 || !near(c.LifetimeValue, 15.96) || !near(c.AvgOrderValue, 7.98) || !c.LastPurchaseAt.Equal(T0.Add(2*day)) {
				t.Fatalf("after a refund of 94.055: orders %d, value %v, average %v, last %s; want 2, 15.96, 7.98, the second order's",
					c.OrderCount, c.LifetimeValue, c.AvgOrderValue, c.LastPurchaseAt)
			}
			refund("r2", 500) // more than is left: the value stops at zero
			if c = load(t, w, "c1"); c.OrderCount != 2 || c.LifetimeValue != 0 || c.AvgOrderValue != 0 {
				t.Fatalf("after refunding more than the value: orders %d, value %v, average %v; want 2, 0, 0", c.OrderCount, c.LifetimeValue, c.AvgOrderValue)
			}
			// A refund of a customer without orders (an unknown one, made
			// bare) changes no metric but is stored.
			if !w.RecordEvent(t, "c2", rules.Event{ID: "r3", Name: "order_refunded", Amount: 20, Time: T0}) {
				t.Fatal("refund of an unknown customer reported a duplicate")
			}
			if c = load(t, w, "c2"); c.OrderCount != 0 || c.LifetimeValue != 0 || c.AvgOrderValue != 0 {
				t.Fatalf("customer without orders after a refund: %+v", c)
			}
		}},
		{name: "events/an event creates an unknown customer bare", run: func(t *testing.T, w World) {
			w.RecordEvent(t, "c9", rules.Event{ID: "s1", Name: "signup", Time: T0})
			c := load(t, w, "c9")
			if c.ID != "c9" || c.Email != "" || c.OrderCount != 0 {
				t.Fatalf("bare customer %+v", c)
			}
		}},
	}
}

func couponCases() []contractCase {
	req := func(key string) activities.CouponRequest {
		return activities.CouponRequest{Enrollment: enrollment("e1", "winback"), Key: key, CustomerID: "c1",
			Kind: "percent", Value: 15, ExpiresAt: T0.Add(30 * day), Prefix: "back"}
	}
	return []contractCase{
		{name: "coupon/issued once per key, in the store's code shape", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			a, err := w.IssueCoupon(ctx, req("k1"))
			if err != nil {
				t.Fatal(err)
			}
			again, err := w.IssueCoupon(ctx, req("k1"))
			if err != nil || again != a {
				t.Fatalf("retried issue = %+v, %v; want %+v", again, err, a)
			}
			b, err := w.IssueCoupon(ctx, req("k2"))
			if err != nil || b.Code == a.Code {
				t.Fatalf("second coupon %+v, %v: want another code than %s", b, err, a.Code)
			}
			code, ok := strings.CutPrefix(a.Code, "BACK-")
			if !ok || len(code) != activities.CouponCodeLength || strings.Trim(code, activities.CouponCodeAlphabet) != "" {
				t.Errorf("code %q: want BACK- and %d characters of %s", a.Code, activities.CouponCodeLength, activities.CouponCodeAlphabet)
			}
			if a.Kind != "percent" || a.Value != 15 || !a.ExpiresAt.Equal(T0.Add(30*day)) {
				t.Errorf("coupon %+v", a)
			}
		}},
		{name: "coupon/bad requests and unknown customers are permanent", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			over := req("k1")
			over.Value = 250
			noExpiry := req("k2")
			noExpiry.ExpiresAt = time.Time{}
			noKey := req("")
			nobody := req("k3")
			nobody.CustomerID = "nobody"
			for _, r := range []activities.CouponRequest{over, noExpiry, noKey, nobody} {
				if _, err := w.IssueCoupon(ctx, r); !errors.Is(err, activities.ErrPermanent) {
					t.Errorf("%+v: err = %v, want ErrPermanent", r, err)
				}
			}
		}},
		{name: "task/created once per key", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			r := activities.TaskRequest{Enrollment: enrollment("e1", "winback"), Key: "k1", CustomerID: "c1",
				Assignee: "relationship_manager", Title: "Call Ada", Priority: "high", DueAt: T0.Add(day)}
			a, err := w.CreateTask(ctx, r)
			if err != nil || a.TaskID == "" {
				t.Fatalf("task %+v, %v", a, err)
			}
			again, err := w.CreateTask(ctx, r)
			if err != nil || again != a {
				t.Fatalf("retried task %+v, %v; want %+v", again, err, a)
			}
			r.Key = "k2"
			if b, err := w.CreateTask(ctx, r); err != nil || b == a {
				t.Fatalf("second task %+v, %v: want another id than %s", b, err, a.TaskID)
			}
		}},
	}
}

func suppressionCases() []contractCase {
	tx := func(key string) activities.SendRequest {
		r := mail(key, T0)
		r.Transactional = true
		return r
	}
	return []contractCase{
		{name: "suppression/hard bounce stops marketing and transactional mail", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			w.Suppress(t, "email", " ADA@example.com", activities.ReasonHardBounce) // normalized
			wantSend(t, send(t, w, mail("k1", T0)), activities.SendSuppressed, activities.ReasonHardBounce)
			wantSend(t, send(t, w, tx("k2")), activities.SendSuppressed, activities.ReasonHardBounce)
			sms := mail("k3", T0)
			sms.Channel = "sms"
			wantSend(t, send(t, w, sms), activities.SendSent, "") // another channel, another address
		}},
		{name: "suppression/complaint stops marketing only", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			w.Suppress(t, "email", "ada@example.com", activities.ReasonComplaint)
			wantSend(t, send(t, w, mail("k1", T0)), activities.SendSuppressed, activities.ReasonComplaint)
			wantSend(t, send(t, w, tx("k2")), activities.SendSent, "")
		}},
		{name: "suppression/soft bounces stop everything, phone numbers normalized", run: func(t *testing.T, w World) {
			w.Put(t, ada())
			w.Suppress(t, "sms", "+49 151 0000 0001", activities.ReasonSoftBounces)
			sms := mail("k1", T0)
			sms.Channel = "sms"
			wantSend(t, send(t, w, sms), activities.SendSuppressed, activities.ReasonSoftBounces)
			wantSend(t, send(t, w, mail("k2", T0)), activities.SendSent, "")
		}},
		{name: "suppression/holdout and missing address come first", run: func(t *testing.T, w World) {
			c := ada()
			c.Email = ""
			w.Put(t, c)
			w.Suppress(t, "email", "ada@example.com", activities.ReasonHardBounce)
			wantSend(t, send(t, w, mail("k1", T0)), activities.SendSuppressed, activities.ReasonNoAddress)
		}},
	}
}
