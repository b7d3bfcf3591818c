package pushdown_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/pushdown"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/scan"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// scanTimes are the scan times the exactness test selects at: a 28
// February of a common year (29 February birthdays are celebrated), a
// leap day late in the UTC day, New Year's Eve with milliseconds (local
// dates on both sides of the year), the night European clocks go forward,
// and an ordinary morning.
var scanTimes = []time.Time{
	time.Date(2026, 2, 28, 9, 0, 0, 0, time.UTC),
	time.Date(2028, 2, 29, 23, 30, 0, 0, time.UTC),
	time.Date(2026, 12, 31, 23, 0, 0, 123_000_000, time.UTC),
	time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC),
	time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
	time.Date(2026, 7, 4, 16, 20, 31, 987_654_321, time.UTC), // nanoseconds, as Temporal's times
}

// zones are the customers' time zones: whole, half and quarter hour
// offsets, both ends of the world (UTC-12, UTC+14), daylight saving on
// both hemispheres, and names rules read as UTC (empty, unknown, Local).
var zones = []string{"UTC", "", "Europe/London", "Europe/Berlin", "America/New_York", "America/St_Johns",
	"Asia/Tokyo", "Asia/Kolkata", "Asia/Kathmandu", "Pacific/Kiritimati", "Etc/GMT+12", "Pacific/Pago_Pago",
	"Australia/Lord_Howe", "America/Santiago", "Bogus/Zone", "Local"}

// TestPushdownSelectsExactly is the exactness test of issue #15: for every
// sample playbook's trigger and a generated corpus of rules, at several
// scan times, the pushed-down scan (SQL predicate, keyset pages, the Go
// check of the candidates unless the compiler says its SQL is exact, when
// the SQL alone decides) selects exactly the customers that evaluating
// every customer in Go selects.
func TestPushdownSelectsExactly(t *testing.T) {
	st := storetest.New(t)
	seedVaried(t, st)

	plans := samplePlans(t)
	for i, src := range edgeRules {
		plans = append(plans, mustPlan(t, fmt.Sprintf("edge_%02d", i), fmt.Sprintf("every: 24h\n  where: %q", src)))
	}
	gen := newRuleGen(rand.New(rand.NewPCG(15, 2026)))
	corpus := 0
	for len(plans) < 2000 && corpus < 320 {
		src := gen.rule(3)
		if _, err := rules.Compile(src, rules.Bool); err != nil {
			continue // a combination expr's type checker refuses
		}
		corpus++
		plans = append(plans, mustPlan(t, fmt.Sprintf("corpus_%03d", corpus), fmt.Sprintf("every: 24h\n  where: %q", src)))
		if corpus%8 == 0 { // some of them as the where of date triggers
			plans = append(plans, mustPlan(t, fmt.Sprintf("corpus_%03d_birthday", corpus), fmt.Sprintf("date: birthday\n  at: \"09:00\"\n  where: %q", src)))
			plans = append(plans, mustPlan(t, fmt.Sprintf("corpus_%03d_signup", corpus), fmt.Sprintf("date: signup_anniversary\n  at: \"00:30\"\n  where: %q", src)))
		}
	}
	for _, at := range []string{"00:00", "09:00", "23:30"} {
		plans = append(plans, mustPlan(t, "birthday_at_"+at[:2], fmt.Sprintf("date: birthday\n  at: %q", at)))
		plans = append(plans, mustPlan(t, "signup_at_"+at[:2], fmt.Sprintf("date: signup_anniversary\n  at: %q", at)))
	}

	// Four scans at a time: the database does the work, and the test is
	// bound by round trips.
	var (
		mu                       sync.Mutex
		exact, filtered, matches int
		everyoneCount            int
	)
	for _, now := range scanTimes {
		now = scan.SelectionTime(now)
		everyone := readAll(t, st, now)
		everyoneCount = len(everyone)
		work := make(chan *engine.Plan)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for plan := range work {
					want := evaluateAll(t, plan, now, everyone)
					pred, candidates, got, err := pushedDown(st, plan, now)
					if err != nil {
						t.Error(err)
						continue
					}
					if !slices.Equal(got, want) {
						t.Errorf("%s at %s: pushed-down scan (exact SQL: %v) selects %v, evaluating everyone %v\nwhere: %s\nSQL: %s\nargs: %v",
							plan.Name, now.Format(time.RFC3339Nano), pred.Exact, got, want, whereOf(plan), pred.SQL, pred.Args)
						continue
					}
					mu.Lock()
					if pred.Exact {
						exact++
					}
					if len(candidates) < len(everyone) {
						filtered++
					}
					matches += len(want)
					mu.Unlock()
				}
			}()
		}
		for _, plan := range plans {
			work <- plan
		}
		close(work)
		wg.Wait()
	}
	total := len(plans) * len(scanTimes)
	t.Logf("%d triggers (%d generated rules) × %d scan times over %d customers: %d exact predicates, %d read fewer than everyone, %d matches",
		len(plans), corpus, len(scanTimes), everyoneCount, exact, filtered, matches)
	// A compiler that gave up (TRUE everywhere) would pass the comparison
	// above: most of the corpus must be translated.
	if corpus < 250 || exact < total/2 || filtered < total*3/4 || matches < total {
		t.Errorf("too little pushed down or matched: %d rules, %d of %d exact, %d filtered, %d matches", corpus, exact, total, filtered, matches)
	}
}

// TestSamplePredicates pins how much of each sample trigger is pushed
// down: all of it but the signup day of an anniversary.
func TestSamplePredicates(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, plan := range samplePlans(t) {
		p := scan.Selection(plan).Bind(now, pushdown.Zones{Birthday: zones, Signup: zones})
		wantExact := plan.Trigger.Date != "signup_anniversary"
		if p.Exact != wantExact || p.SQL == "TRUE" {
			t.Errorf("%s: exact %v (want %v), SQL %s, in Go %v", plan.Name, p.Exact, wantExact, p.SQL, p.InGo)
		}
	}
}

// edgeRules are always in the corpus: comparisons whose bound falls
// inside a microsecond (PostgreSQL's precision), unset times (the zero
// time to rules) on either side, and day counts around -1 (never).
var edgeRules = []string{
	`customer.signup_at <= now - duration("0.0000005s")`,
	`customer.signup_at > now - duration("0.0000005s")`,
	`customer.last_purchase_at >= now - duration("0.0000005s")`,
	`customer.last_purchase_at < now - duration("0.0000005s")`,
	`customer.last_purchase_at == now`,
	`customer.last_purchase_at != now - duration("1d")`,
	`now - customer.signup_at < duration("0.0000005s")`,
	`now - customer.signup_at >= duration("1d")`,
	`customer.birthday > now - duration("20000d")`,
	`customer.birthday <= now - duration("20000d")`,
	`customer.days_since_last_purchase == -1`,
	`customer.days_since_last_purchase != -1`,
	`customer.days_since_last_purchase >= -1`,
	`customer.days_since_signup <= 0`,
	`hoursSince(customer.signup_at) < 1`,
	`customer.attrs.plan in ["", "gold"]`,
	`customer.attrs.plan not in ["gold"]`,
	`customer.attrs.score == 5`,
	`customer.attrs.value_rank == nil`,
}

// samplePlans are the segment and date playbooks under playbooks/.
func samplePlans(t *testing.T) []*engine.Plan {
	t.Helper()
	files, err := filepath.Glob("../playbooks/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("sample playbooks: %v (%d files)", err, len(files))
	}
	var out []*engine.Plan
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := engine.Compile(filepath.Base(f), src)
		if err != nil {
			continue // not a playbook (rapport.yaml)
		}
		if p.Trigger.Kind == engine.TriggerSegment || p.Trigger.Kind == engine.TriggerDate {
			out = append(out, p)
		}
	}
	if len(out) < 4 {
		t.Fatalf("found %d scanned sample playbooks, want the 4 (anniversary, birthday, key_account, nurture, winback)", len(out))
	}
	return out
}

func mustPlan(t *testing.T, name, trigger string) *engine.Plan {
	t.Helper()
	src := fmt.Sprintf("playbook: %s\nstage: care\ntrigger:\n  %s\nsteps:\n  - wait: 1h\n", name, trigger)
	p, err := engine.Compile(name+".yaml", []byte(src))
	if err != nil {
		t.Fatalf("compile %s: %v\n%s", name, err, src)
	}
	return p
}

func whereOf(p *engine.Plan) string {
	s := string(p.Trigger.Kind)
	if p.Trigger.Date != "" {
		s += " " + p.Trigger.Date + " at " + p.Trigger.At.String()
	}
	if p.Trigger.Where != nil {
		s += " where " + p.Trigger.Where.Source
	}
	return s
}

// readAll reads every customer as a scan at now sees them.
func readAll(t *testing.T, st *store.Store, now time.Time) []rules.Customer {
	t.Helper()
	var out []rules.Customer
	after := ""
	for {
		page, err := st.Candidates(context.Background(), store.CandidateQuery{Where: pushdown.Predicate{SQL: "TRUE"}, Now: now, AfterID: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < 1000 {
			return out
		}
		after = page[len(page)-1].ID
	}
}

// evaluateAll is the reference: the trigger evaluated in Go on everyone.
func evaluateAll(t *testing.T, plan *engine.Plan, now time.Time, everyone []rules.Customer) []string {
	t.Helper()
	m, err := scan.NewMatcher(plan, now)
	if err != nil {
		t.Error(err)
		return nil
	}
	var ids []string
	for _, c := range everyone {
		if ok, _ := m.Match(c); ok {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// pushedDown selects as a scan does: at the selection time, the bound
// predicate, keyset pages of candidates (small, to cross page
// boundaries), the Go check of each.
func pushedDown(st *store.Store, plan *engine.Plan, now time.Time) (pred pushdown.Predicate, candidates, selected []string, err error) {
	ctx := context.Background()
	now = scan.SelectionTime(now)
	sel := scan.Selection(plan)
	var z pushdown.Zones
	birthday, signup := sel.NeedsZones()
	if birthday {
		if z.Birthday, err = st.TimeZones(ctx, "birthday"); err != nil {
			return pred, nil, nil, err
		}
	}
	if signup {
		if z.Signup, err = st.TimeZones(ctx, "signup_at"); err != nil {
			return pred, nil, nil, err
		}
	}
	pred = sel.Bind(now, z)
	m, err := scan.NewMatcher(plan, now)
	if err != nil {
		return pred, nil, nil, err
	}
	after := ""
	for {
		page, err := st.Candidates(ctx, store.CandidateQuery{Where: pred, Now: now, AfterID: after, Limit: 149})
		if err != nil {
			return pred, nil, nil, fmt.Errorf("%s at %s: %w\nSQL: %s\nargs: %v", plan.Name, now, err, pred.SQL, pred.Args)
		}
		for _, c := range page {
			candidates = append(candidates, c.ID)
			// As the scan activity: an exact predicate decides alone.
			if ok, _ := m.Match(c); ok || pred.Exact {
				selected = append(selected, c.ID)
			}
		}
		if len(page) < 149 {
			return pred, candidates, selected, nil
		}
		after = page[len(page)-1].ID
	}
}

// seedVaried writes customers with the edge cases the predicates must get
// right: unset dates and attributes, empty tags, purchase and signup times
// a microsecond either side of whole days before each scan time, purchases
// in the future, birthdays on the local date of each scan in each zone and
// the days around it, 29 February, and attributes of every JSON kind.
func seedVaried(t *testing.T, st *store.Store) {
	t.Helper()
	r := rand.New(rand.NewPCG(15, 15))
	pick := func(xs ...any) any { return xs[r.IntN(len(xs))] }
	var rows [][]any
	add := func(last, signup, birthday any) {
		i := len(rows)
		orders := int64(pick(0, 0, 1, 1, 2, 3, 5, 12).(int))
		gap := pick(0.0, 0.5, 1.0, 1.0000001, 10.0, 45.5, 90.0).(float64)
		if orders < 2 {
			gap = 0
		}
		if last == nil && r.IntN(3) == 0 {
			orders = int64(r.IntN(3)) // imported: orders without a purchase time
		}
		ltv := pick(0.0, 0.10, 99.99, 100.0, 999.99, 1000.0, 1000.01, 2500.50, 5000.0, 12345.67).(float64)
		avg := pick(0.0, 0.10, 19.99, 50.0, 120.35).(float64)
		rows = append(rows, []any{
			fmt.Sprintf("c%04d", i),
			pick("", "ann@example.com", "bob@example.org", "an@x.com").(string),
			pick("", "Ann", "Bob", "Dana", "Ünal", "ANN").(string),
			zones[r.IntN(len(zones))],
			pick("", "gold", "silver", "platinum", "Gold", "bronze").(string),
			pick("", "new", "active", "loyal", "lapsed", "at_risk").(string),
			int64(pick(0, 0, 10, 150, 1000).(int)),
			ltv, orders, avg, gap, pick(false, true).(bool), last, signup, birthday,
			pick([]string{}, []string{}, []string{"vip"}, []string{"vip", "key_account"}, []string{"", "x"}, []string{"key_account"}).([]string),
			[]byte(pick(`{}`, `{}`, `{"value_rank": 3}`, `{"value_rank": 12, "spend_growth": 0.7}`, `{"value_rank": "3"}`,
				`{"value_rank": null}`, `{"vip": true, "plan": "gold"}`, `{"vip": false, "plan": ""}`, `{"vip": "yes", "plan": 5}`,
				`{"score": 5}`, `{"score": 5.5, "plan": "silver"}`, `{"score": -0.0, "spend_growth": 0.5}`, `{"score": 1e20}`,
				`{"nested": {"x": "y"}, "plan": ["gold"]}`, `{"plan": "m", "score": "5"}`, `{"spend_growth": "0.9"}`).(string)),
		})
	}
	for _, now := range scanTimes {
		now = now.Truncate(time.Microsecond)
		for _, k := range []int{-1, 0, 1, 29, 30, 56, 89, 90, 91, 179, 180, 181, 359, 360, 365} {
			for _, off := range []time.Duration{-time.Microsecond, 0, time.Microsecond, time.Hour} {
				at := now.Add(-time.Duration(k)*24*time.Hour + off).Truncate(time.Microsecond)
				if r.IntN(2) == 0 {
					add(at, nil, nil)
				} else {
					add(nil, at, nil)
				}
			}
		}
		// Birthdays and signups on the local dates around now in every zone.
		for _, z := range zones {
			local := now.In(rules.Location(z))
			for _, d := range []int{-1, 0, 1} {
				day := local.AddDate(0, 0, d)
				bday := time.Date(1950+r.IntN(60), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
				signup := time.Date(2018+r.IntN(8), day.Month(), day.Day(), r.IntN(24), r.IntN(60), 0, 0, time.UTC)
				add(nil, signup, bday)
				if r.IntN(3) == 0 {
					add(now.Add(-time.Duration(r.IntN(400*24))*time.Hour), nil, bday)
				}
			}
		}
	}
	for _, y := range []int{1980, 1984, 2000, 1999} {
		for _, md := range [][2]int{{2, 28}, {2, 29}, {3, 1}, {12, 31}, {1, 1}} {
			if md[1] == 29 && y%4 != 0 {
				continue
			}
			add(nil, time.Date(y+30, time.Month(md[0]), md[1], 23, 59, 0, 0, time.UTC), time.Date(y, time.Month(md[0]), md[1], 0, 0, 0, 0, time.UTC))
		}
	}
	for range 80 {
		add(nil, nil, nil)
	}
	for range 120 { // anything
		add(scanTimes[r.IntN(len(scanTimes))].Add(-time.Duration(r.Int64N(int64(500*24*time.Hour)))).Truncate(time.Microsecond),
			scanTimes[r.IntN(len(scanTimes))].Add(-time.Duration(r.Int64N(int64(900*24*time.Hour)))).Truncate(time.Microsecond),
			time.Date(1940+r.IntN(70), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC))
	}
	_, err := st.Pool().CopyFrom(context.Background(), pgx.Identifier{"customers"},
		[]string{"id", "email", "name", "timezone", "tier", "stage", "points", "lifetime_value", "order_count", "avg_order_value",
			"purchase_gap_days", "churn_risk", "last_purchase_at", "signup_at", "birthday", "tags", "attrs"},
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			row := rows[i]
			if row[12] != nil { // a purchase time implies a first purchase
				orders := row[8].(int64)
				if orders == 0 {
					row[8] = int64(1)
				}
			}
			return row, nil
		}))
	if err != nil {
		t.Fatalf("seed customers: %v", err)
	}
	if _, err := st.Pool().Exec(context.Background(), `ANALYZE customers`); err != nil {
		t.Fatal(err)
	}
}

// ruleGen writes random rules from the fields and operators the compiler
// knows, and some it does not.
type ruleGen struct{ r *rand.Rand }

func newRuleGen(r *rand.Rand) *ruleGen { return &ruleGen{r: r} }

func (g *ruleGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g *ruleGen) op() string { return g.pick("==", "!=", "<", "<=", ">", ">=") }

func (g *ruleGen) atom() string {
	switch g.r.IntN(30) {
	case 0:
		return fmt.Sprintf("customer.days_since_last_purchase %s %s", g.op(), g.pick("-2", "-1", "0", "1", "29", "30", "56", "90", "91", "90.5", "180", "365"))
	case 1:
		return fmt.Sprintf("customer.days_since_signup %s %s", g.op(), g.pick("-1", "0", "1", "30", "359", "360", "364.9"))
	case 2:
		return fmt.Sprintf("%s(customer.%s) %s %s", g.pick("daysSince", "hoursSince"), g.pick("signup_at", "last_purchase_at"), g.op(), g.pick("-1", "0", "23", "24", "90", "2160", "8640"))
	case 3:
		return fmt.Sprintf("customer.%s %s %s", g.pick("order_count", "points"), g.op(), g.pick("0", "1", "2", "2.5", "3", "10", "150"))
	case 4:
		return fmt.Sprintf("customer.%s %s %s", g.pick("lifetime_value", "avg_order_value"), g.op(), g.pick("0", "0.1", "99.99", "100", "1000", "1000.005", "5000", "50"))
	case 5:
		return fmt.Sprintf("customer.purchase_gap_days %s %s", g.op(), g.pick("0", "0.5", "1", "10", "45.5"))
	case 6:
		return g.pick("customer.churn_risk", "!customer.churn_risk", "customer.churn_risk == false", "customer.churn_risk != true")
	case 7:
		return fmt.Sprintf("customer.%s %s %q", g.pick("tier", "stage", "name"), g.op(), g.pick("gold", "", "lapsed", "m", "Ann", "Ünal"))
	case 8:
		return fmt.Sprintf("customer.%s %s [%s]", g.pick("tier", "stage"), g.pick("in", "not in"), g.pick(`"gold", "platinum"`, `""`, `"new", "active", "loyal"`, `"gold", 1`))
	case 9:
		return fmt.Sprintf("customer.%s %s %q", g.pick("email", "name"), g.pick("contains", "startsWith", "endsWith"), g.pick("an", "@example.com", "", "A", "Ü"))
	case 10:
		return fmt.Sprintf("%q %s customer.tags", g.pick("vip", "key_account", "", "x"), g.pick("in", "not in"))
	case 11:
		return fmt.Sprintf("len(customer.tags) %s %s", g.op(), g.pick("0", "1", "2"))
	case 12:
		return fmt.Sprintf("customer.attrs.%s %s %s", g.attr(), g.pick("==", "!="), g.pick("nil", "true", "false", `"gold"`, `""`, "5", "5.5", `"5"`, "3", "0"))
	case 13:
		return fmt.Sprintf("customer.attrs.%s %s %s", g.attr(), g.op(), g.pick("5", "0.5", "10", "-1", `"m"`, `"gold"`))
	case 14:
		return fmt.Sprintf("(customer.attrs.%s ?? %s) %s %s", g.attr(), g.pick("999", "0", `"x"`, "nil", "true"), g.op(), g.pick("10", "0.5", `"x"`))
	case 15:
		return g.pick("customer.attrs.vip", "!customer.attrs.vip", "(customer.attrs.vip ?? false)", "customer.attrs.vip == true")
	case 16:
		return fmt.Sprintf("customer.attrs.%s %s [%s]", g.attr(), g.pick("in", "not in"), g.pick(`"gold", ""`, `"gold", "silver"`, `5, 6`, `5, "gold"`, `nil, "gold"`, `3`))
	case 17:
		return fmt.Sprintf("now - customer.%s %s duration(%q)", g.pick("last_purchase_at", "signup_at"), g.op(), g.pick("8w", "90d", "1d12h", "0s", "-24h", "0.0000005s", "-0.0000005s"))
	case 18:
		return fmt.Sprintf("customer.%s %s now %s duration(%q)", g.pick("last_purchase_at", "signup_at", "birthday"), g.op(), g.pick("-", "+"), g.pick("90d", "9000d", "1h", "0s", "0.0000005s"))
	case 19:
		return g.pick("isBirthday(customer)", "isAnniversary(customer.signup_at, customer.timezone)", "!isBirthday(customer)", "isAnniversary(customer.birthday, customer.timezone)")
	case 20:
		return fmt.Sprintf("customer.days_since_last_purchase %s %s(%s, %s * customer.purchase_gap_days)", g.op(), g.pick("max", "min"), g.pick("90", "30", "1"), g.pick("2", "1.5"))
	case 21:
		return fmt.Sprintf("customer.order_count * 2 %s customer.points", g.op())
	case 22:
		return fmt.Sprintf("customer.lifetime_value / 2 %s %s", g.op(), g.pick("50", "500"))
	case 23:
		return fmt.Sprintf("min(customer.order_count, 3) %s 3", g.op())
	case 24:
		return g.pick("localHour(customer.timezone) >= 9", `customer.name matches "^A"`, `upper(customer.tier) == "GOLD"`, `customer.attrs.nested.x == "y"`, `len(customer.email) > 5`)
	case 25:
		return fmt.Sprintf("customer.%s %s %s", g.pick("last_purchase_at", "signup_at", "birthday"), g.pick("==", "!=", "<", ">"), "now")
	case 26:
		return fmt.Sprintf("customer.days_since_last_purchase in [%s]", g.pick("-1, 0", "90, 91, 92", "30"))
	case 27:
		return fmt.Sprintf("customer.lifetime_value %s customer.avg_order_value * %s", g.op(), g.pick("1", "10", "0.5"))
	case 28:
		return g.pick("true", "false", "customer.order_count > 0 ? customer.days_since_last_purchase > 90 : customer.days_since_signup > 30")
	}
	return fmt.Sprintf("customer.%s %s customer.%s", g.pick("order_count", "points", "purchase_gap_days"), g.op(), g.pick("order_count", "points", "days_since_last_purchase"))
}

func (g *ruleGen) attr() string {
	return g.pick("value_rank", "vip", "plan", "score", "spend_growth", "nested", "missing")
}

// rule combines atoms with and, or, not and the conditional, to depth.
func (g *ruleGen) rule(depth int) string {
	if depth == 0 || g.r.IntN(3) == 0 {
		return g.atom()
	}
	switch g.r.IntN(6) {
	case 0, 1:
		return fmt.Sprintf("(%s) %s (%s)", g.rule(depth-1), g.pick("&&", "and"), g.rule(depth-1))
	case 2, 3:
		return fmt.Sprintf("(%s) %s (%s)", g.rule(depth-1), g.pick("||", "or"), g.rule(depth-1))
	case 4:
		return fmt.Sprintf("%s(%s)", g.pick("!", "not "), g.rule(depth-1))
	}
	return fmt.Sprintf("(%s) ? (%s) : (%s)", g.rule(depth-1), g.rule(depth-1), g.rule(depth-1))
}
