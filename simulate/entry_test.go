package simulate

import (
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/simulate/simfile"
	"github.com/rapport-crm/rapport/workflows"
)

const day = 24 * time.Hour

func compile(t *testing.T, src string) *engine.Plan {
	t.Helper()
	p, err := engine.Compile("t.yaml", []byte(src))
	if err != nil {
		t.Fatalf("compile:\n%s\n%v", src, err)
	}
	return p
}

func run(t *testing.T, p *engine.Plan, opts Options) *Result {
	t.Helper()
	if opts.Customer.ID == "" {
		opts.Customer = workflows.SampleCustomer(DefaultStart)
	}
	r, err := Run(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func text(r *Result) string {
	var b strings.Builder
	for _, l := range r.Lines() {
		b.WriteString(l.String() + "\n")
	}
	return b.String() + r.Summary()
}

func wantText(t *testing.T, r *Result, want ...string) {
	t.Helper()
	got := text(r)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("no %q in\n%s", w, got)
		}
	}
}

const purchasePlaybook = `playbook: spend
stage: loyalty
trigger: { event: purchase, when: "event.amount > 0 && customer.lifetime_value >= 2000" }
entry: { reentry: %s }
steps:
  - wait: %s
`

func purchasePlan(t *testing.T, reentry, wait string) *engine.Plan {
	return compile(t, strings.NewReplacer("%s", reentry).Replace(strings.Replace(purchasePlaybook, "wait: %s", "wait: "+wait, 1)))
}

func purchase(at time.Duration, id string, amount float64) Event {
	return Event{At: at, Trigger: true, Event: rules.Event{ID: id, Name: "purchase", Amount: amount}}
}

// The dispatcher's decision: the when rule judges the event and the
// profile with the event applied (Ada's lifetime value is 1850).
func TestEntryWhenSeesTheEventApplied(t *testing.T) {
	p := purchasePlan(t, "always", "1h")
	r := run(t, p, Options{Events: []Event{purchase(0, "o0", 0), purchase(time.Hour, "o1", 100), purchase(2*time.Hour, "o2", 100)}})
	wantText(t, r,
		"+0s entry trigger purchase o0 not admitted: when event.amount > 0 && customer.lifetime_value >= 2000 is false",
		"+1h0m0s entry trigger purchase o1 not admitted",  // 1950
		"+2h0m0s entry enter admitted (trigger purchase)", // 2050
	)
	if len(r.Journeys) != 1 {
		t.Fatalf("%d journeys, want 1", len(r.Journeys))
	}
	c, _ := r.Memory.Customer("c-42")
	if c.OrderCount != 12 || c.LifetimeValue != 2050 {
		t.Errorf("profile after three purchases: %d orders, value %v", c.OrderCount, c.LifetimeValue)
	}
}

// Several trigger events: one while the journey runs starts nothing (it
// is the running journey's); after it ends, the re-entry policy decides.
func TestEntrySeveralTriggers(t *testing.T) {
	events := []Event{purchase(0, "o1", 200), purchase(time.Hour, "o2", 10), purchase(3*day, "o3", 10)}
	r := run(t, purchasePlan(t, "never", "2d"), Options{Events: events})
	wantText(t, r,
		"+0s entry enter admitted (trigger purchase)",
		"+1h0m0s entry trigger purchase o2 not started: the customer's journey of the playbook is still running",
		"+72h0m0s entry enter refused (already_enrolled)",
	)
	r = run(t, purchasePlan(t, "always", "2d"), Options{Events: events})
	if len(r.Journeys) != 2 || r.Journeys[1].Status != activities.StatusCompleted || !r.Journeys[1].Start.Equal(DefaultStart.Add(3*day)) {
		t.Fatalf("journeys %+v, want a second one from o3\n%s", r.Journeys, text(r))
	}
}

// A segment playbook enrolls only when its where rule admits the
// customer; a date playbook enrolls at the scan at which the date is due.
func TestEntrySegmentAndDate(t *testing.T) {
	seg := compile(t, `playbook: rich
stage: loyalty
trigger: { every: 1d, where: "customer.points >= 5000" }
steps:
  - wait: 1h
`)
	r := run(t, seg, Options{})
	if len(r.Journeys) != 0 || !strings.Contains(r.NotAdmitted, "where customer.points >= 5000 is false") {
		t.Fatalf("segment: %+v\n%s", r.Journeys, text(r))
	}
	bday := compile(t, `playbook: bday
stage: loyalty
trigger: { date: birthday, at: "10:00" }
steps:
  - wait: 1h
`)
	c := workflows.SampleCustomer(DefaultStart) // born 12 January, in Shanghai
	r = run(t, bday, Options{Customer: c})
	if want := time.Date(2026, 1, 12, 2, 0, 0, 0, time.UTC); len(r.Journeys) != 1 || !r.Journeys[0].Start.Equal(want) {
		t.Fatalf("birthday journeys %+v, want one at %s (10:00 in Shanghai)", r.Journeys, want)
	}
	c.Birthday = time.Time{}
	r = run(t, bday, Options{Customer: c})
	if len(r.Journeys) != 0 || !strings.Contains(r.NotAdmitted, "birthday is not due") {
		t.Fatalf("no birthday: %+v %q", r.Journeys, r.NotAdmitted)
	}
}

// Consents from the customer file reach the send policy: "*" withdrawn
// on email suppresses a marketing email; the global cap applies when set.
func TestConsentsAndGlobalCap(t *testing.T) {
	p := compile(t, `playbook: mails
stage: nurture
trigger: { manual: true }
templates:
  hi:
    en: { subject: "Hi", text: "Hi {{ customer.name }} {{ unsubscribe_url }}" }
steps:
  - send: { channel: email, template: hi }
  - send: { channel: email, template: hi }
`)
	c := rules.Customer{ID: "c1", Name: "Bo", Email: "bo@example.com", Locale: "en"}
	r := run(t, p, Options{Customer: c, Consents: []simfile.Consent{{Channel: "email", Topic: "*", Granted: false}}})
	if m := r.Memory.Messages(); len(m) != 2 || m[0].Status != activities.SendSuppressed || m[0].Reason != activities.ReasonConsent {
		t.Fatalf("messages %+v", m)
	}
	mem := activities.NewMemory()
	mem.GlobalCapMax, mem.GlobalCapPer = 1, 7*day
	r = run(t, p, Options{Customer: c, Memory: mem})
	if m := r.Memory.Messages(); len(m) != 2 || m[0].Status != activities.SendSent || m[1].Reason != activities.ReasonFrequencyCap {
		t.Fatalf("messages %+v", m)
	}
}

// A failed journey is reported by Failure, in words.
func TestFailure(t *testing.T) {
	p := compile(t, `playbook: broken
stage: care
trigger: { manual: true }
steps:
  - coupon: { kind: percent, value: "customer.points", expires: 7d }
`)
	r := run(t, p, Options{})
	want := "journey 1 (started 2026-01-05T09:00:00Z) failed: step coupon_1: issue coupon: coupon value 1200 is over 100 % for a percent coupon"
	if got := r.Failure(); got != want {
		t.Fatalf("Failure() = %q, want %q", got, want)
	}
	if r := run(t, compile(t, "playbook: ok\nstage: care\ntrigger: { manual: true }\nsteps:\n  - wait: 1h\n"), Options{}); r.Failure() != "" {
		t.Fatalf("Failure() = %q for a completed journey", r.Failure())
	}
}

// Marked entries of a manual playbook are starts by POST /v1/enroll, one
// while the journey runs starting nothing; the re-entry policy decides the
// rest.
func TestEntryManualStarts(t *testing.T) {
	p := compile(t, `playbook: call
stage: care
trigger: { manual: true }
entry: { reentry: always }
steps:
  - wait: 2d
`)
	start := func(at time.Duration, id string) Event {
		return Event{At: at, Trigger: true, Event: rules.Event{ID: id, Name: "manual"}}
	}
	r := run(t, p, Options{Events: []Event{start(0, "m1"), start(day, "m2"), start(3*day, "m3")}})
	wantText(t, r,
		"+0s entry enter admitted (trigger manual)",
		"+24h0m0s entry trigger manual start m2 not started: the customer's journey of the playbook is still running",
		"+72h0m0s entry enter admitted (trigger manual)",
	)
	if len(r.Journeys) != 2 {
		t.Fatalf("%d journeys, want 2\n%s", len(r.Journeys), text(r))
	}
}
