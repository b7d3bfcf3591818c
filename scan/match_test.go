package scan

import (
	"testing"
	"time"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

func mustPlan(t *testing.T, src string) *engine.Plan {
	t.Helper()
	p, err := engine.Compile("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

const birthdaySrc = `playbook: bday
stage: care
trigger: { date: birthday, at: "09:00", where: "customer.tier != 'banned'" }
entry: { reentry: always }
templates:
  hi:
    en: { subject: "Happy birthday", text: "Hi" }
steps:
  - send: { channel: email, template: hi }
`

const segmentSrc = `playbook: lapsed
stage: reactivate
trigger: { every: 24h, where: "customer.days_since_last_purchase > 90" }
templates:
  hi:
    en: { subject: "We miss you", text: "Hi" }
steps:
  - send: { channel: email, template: hi }
`

// TestDateDueSlots checks that each customer's local 09:00 falls in exactly
// one hourly slot of the day, in zones with whole, half and quarter hour
// offsets, and only on their birthday.
func TestDateDueSlots(t *testing.T) {
	plan := mustPlan(t, birthdaySrc)
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	for _, tz := range []string{"UTC", "Asia/Shanghai", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Pacific/Kiritimati", "Pacific/Pago_Pago"} {
		c := rules.Customer{ID: "c", Timezone: tz, Birthday: time.Date(1990, 3, 14, 0, 0, 0, 0, time.UTC)}
		var due []time.Time
		// Hourly scans over three UTC days around the birthday.
		for h := -24; h < 48; h++ {
			now := day.Add(time.Duration(h) * time.Hour)
			if DateDue(plan.Trigger, c, now) {
				due = append(due, now)
			}
		}
		if len(due) != 1 {
			t.Errorf("%s: due in %d slots %v, want exactly 1", tz, len(due), due)
			continue
		}
		local := due[0].In(rules.Location(tz))
		at := time.Date(local.Year(), local.Month(), local.Day(), 9, 0, 0, 0, local.Location())
		if local.Before(at) || local.Sub(at) >= time.Hour || local.Month() != 3 || local.Day() != 14 {
			t.Errorf("%s: due at %v local, want the hour after 09:00 on 14 March", tz, local)
		}
	}
}

func TestDateDueNeedsDate(t *testing.T) {
	plan := mustPlan(t, birthdaySrc)
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	if DateDue(plan.Trigger, rules.Customer{ID: "c"}, now) {
		t.Error("a customer without a birthday is due")
	}
	other := rules.Customer{ID: "c", Birthday: time.Date(1990, 3, 15, 0, 0, 0, 0, time.UTC)}
	if DateDue(plan.Trigger, other, now) {
		t.Error("a customer whose birthday is tomorrow is due today")
	}
}

func TestMatcherAppliesWhere(t *testing.T) {
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	bday := mustPlan(t, birthdaySrc)
	m, err := NewMatcher(bday, now)
	if err != nil {
		t.Fatal(err)
	}
	c := rules.Customer{ID: "c", Birthday: time.Date(1990, 3, 14, 0, 0, 0, 0, time.UTC)}
	if ok, err := m.Match(c); err != nil || !ok {
		t.Fatalf("birthday customer: match=%v err=%v, want true", ok, err)
	}
	c.Tier = "banned"
	if ok, _ := m.Match(c); ok {
		t.Error("where rule ignored: banned customer matched")
	}

	seg := mustPlan(t, segmentSrc)
	m, err = NewMatcher(seg, now)
	if err != nil {
		t.Fatal(err)
	}
	lapsed := rules.Customer{ID: "a", LastPurchaseAt: now.AddDate(0, 0, -120)}
	recent := rules.Customer{ID: "b", LastPurchaseAt: now.AddDate(0, 0, -10)}
	if ok, _ := m.Match(lapsed); !ok {
		t.Error("lapsed customer not matched")
	}
	if ok, _ := m.Match(recent); ok {
		t.Error("recent customer matched")
	}
}

func TestAdmissible(t *testing.T) {
	now := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	after := func(t time.Time) *time.Time { return &t }
	day := 24 * time.Hour
	cases := []struct {
		name  string
		entry engine.Entry
		h     store.EntryHistory
		want  bool
	}{
		{"new customer", engine.Entry{Reentry: engine.ReentryNever}, store.EntryHistory{}, true},
		{"never, enrolled before", engine.Entry{Reentry: engine.ReentryNever}, store.EntryHistory{Any: true, Last: ago(400 * day)}, false},
		{"always, finished", engine.Entry{Reentry: engine.ReentryAlways}, store.EntryHistory{Any: true, Last: ago(day)}, true},
		{"always, running", engine.Entry{Reentry: engine.ReentryAlways}, store.EntryHistory{Any: true, Active: true, Last: ago(day)}, false},
		{"always, enrolled by this scan", engine.Entry{Reentry: engine.ReentryAlways}, store.EntryHistory{Any: true, Last: after(now.Add(time.Second))}, false},
		{"after, inside cooldown", engine.Entry{Reentry: engine.ReentryAfter, Cooldown: 30 * day}, store.EntryHistory{Any: true, Last: ago(10 * day)}, false},
		{"after, past cooldown", engine.Entry{Reentry: engine.ReentryAfter, Cooldown: 30 * day}, store.EntryHistory{Any: true, Last: ago(31 * day)}, true},
	}
	for _, c := range cases {
		if got := Admissible(c.entry, c.h, now); got != c.want {
			t.Errorf("%s: Admissible = %v, want %v", c.name, got, c.want)
		}
	}
}
