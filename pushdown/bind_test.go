package pushdown_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/pushdown"
	"github.com/rapport-crm/rapport/rules"
)

func where(t *testing.T, src string) engine.Trigger {
	t.Helper()
	r, err := rules.Compile(src, rules.Bool)
	if err != nil {
		t.Fatal(err)
	}
	return engine.Trigger{Kind: engine.TriggerSegment, Where: r}
}

// TestBindRoundsToMicroseconds: a day count is a range of the stored time,
// and PostgreSQL keeps microseconds, so a scan time with a fraction of one
// cannot be compared exactly: the scan then reads everyone and Go decides.
func TestBindRoundsToMicroseconds(t *testing.T) {
	sel := pushdown.New(where(t, "customer.days_since_last_purchase > 90"), time.Hour)
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	p := sel.Bind(now, pushdown.Zones{})
	if !p.Exact || p.SQL != "c.last_purchase_at <= $1::timestamptz" || !p.Args[0].(time.Time).Equal(now.AddDate(0, 0, -91)) {
		t.Errorf("at %s: %s %v exact %v, want last_purchase_at <= now − 91d, exact", now, p.SQL, p.Args, p.Exact)
	}
	p = sel.Bind(now.Add(500*time.Nanosecond), pushdown.Zones{})
	if p.Exact || p.SQL != "TRUE" || len(p.InGo) != 1 || !strings.Contains(p.InGo[0], "microsecond") {
		t.Errorf("at a fraction of a microsecond: %s exact %v in Go %v, want TRUE, not exact, saying why", p.SQL, p.Exact, p.InGo)
	}
}

// TestBindNeedsZonesOnlyForAnniversaries: only a date trigger or a rule
// with isBirthday or isAnniversary on a customer date asks for the zones.
func TestBindNeedsZonesOnlyForAnniversaries(t *testing.T) {
	for src, want := range map[string][2]bool{
		`customer.tier == "gold"`: {false, false},
		`isBirthday(customer)`:    {true, false},
		`customer.tier == "gold" || isAnniversary(customer.signup_at, customer.timezone)`: {false, true},
	} {
		b, s := pushdown.New(where(t, src), time.Hour).NeedsZones()
		if [2]bool{b, s} != want {
			t.Errorf("%s: needs zones %v %v, want %v", src, b, s, want)
		}
	}
	b, s := pushdown.New(engine.Trigger{Kind: engine.TriggerDate, Date: "birthday"}, time.Hour).NeedsZones()
	if !b || s {
		t.Errorf("birthday trigger: needs zones %v %v, want birthday only", b, s)
	}
}
