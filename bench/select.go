package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/pushdown"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/scan"
	"github.com/rapport-crm/rapport/store"
)

// The parts below measure how a scan selects its customers (issue #15),
// apart from starting their journeys: the candidate query the trigger is
// compiled to plus the Go check of each candidate, against a raw indexed
// SELECT of the same predicate written by hand, over -select-customers
// customers copied in once for both parts.

// selectSrc is part b's winback segment (lapsedSrc) under its own name:
// the index on last_purchase_at finds those quiet for 91 days or more,
// the rest of the rule is checked per row.
var selectSrc = strings.Replace(lapsedSrc, "bench_lapsed", "bench_select", 1)

// birthdaysSrc greets at 09:00 local time.
const birthdaysSrc = `playbook: bench_birthdays
stage: care
trigger:
  date: birthday
  at: "09:00"
  where: customer.stage != "lapsed"
steps:
  - wait: 1h
`

// benchZones are the customers' zones, one in eight each.
var benchZones = []string{"UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Shanghai", "Asia/Tokyo", "Asia/Kolkata"}

// selectDB is the database both parts share.
type selectDB struct {
	st       *store.Store
	cleanup  func()
	now      time.Time // the time the rows were written relative to
	matching int       // customers seeded to match the segment
}

var sharedSelect *selectDB

// seedSelect copies the customers in once per run.
func seedSelect(ctx context.Context, c config) (*selectDB, error) {
	if sharedSelect != nil {
		return sharedSelect, nil
	}
	st, cleanup, err := freshStore(ctx, c, "select")
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	matching, err := copyCustomers(ctx, st, c.selectCustomers, c.selectMatchEvery, now)
	if err != nil {
		cleanup()
		return nil, err
	}
	sharedSelect = &selectDB{st: st, cleanup: cleanup, now: now, matching: matching}
	return sharedSelect, nil
}

// copyCustomers copies n customers s0000000… in (one in every lapsed,
// the rest bought within 60 days of now), vacuums and analyzes the table,
// and returns how many lapsed. Parts select, birthdays and report seed
// their customers with it.
func copyCustomers(ctx context.Context, st *store.Store, n, every int, now time.Time) (int, error) {
	start := time.Now()
	rows := &copyRows{n: n, every: every, now: now, r: rand.New(rand.NewPCG(15, 1))}
	_, err := st.Pool().CopyFrom(ctx, pgx.Identifier{"customers"},
		[]string{"id", "email", "name", "locale", "timezone", "stage", "order_count", "last_purchase_at", "first_purchase_at",
			"purchase_gap_days", "lifetime_value", "avg_order_value", "birthday", "signup_at", "tags"}, rows)
	if err != nil {
		return 0, fmt.Errorf("seed customers: %w", err)
	}
	seeded := time.Since(start)
	if _, err := st.Pool().Exec(ctx, `VACUUM ANALYZE customers`); err != nil {
		return 0, fmt.Errorf("vacuum customers: %w", err)
	}
	fmt.Printf("seeded:  %d customers with COPY in %s (indexes maintained), vacuumed and analyzed in %s\n",
		n, seeded.Round(time.Millisecond), (time.Since(start) - seeded).Round(time.Millisecond))
	return rows.matching, nil
}

// customerID is the id copyCustomers gives customer i.
func customerID(i int) string { return fmt.Sprintf("s%07d", i) }

// copyRows generates the customers for COPY without holding them all.
type copyRows struct {
	n, every, i, matching int
	now                   time.Time
	r                     *rand.Rand
	row                   []any
}

func (c *copyRows) Next() bool {
	if c.i >= c.n {
		return false
	}
	i := c.i
	c.i++
	// Everyone bought within the last 60 days, except one in every, who
	// lapsed 200 days ago: the segment.
	last := c.now.Add(-time.Duration(i%60) * 24 * time.Hour)
	if c.every > 0 && i%c.every == 7%c.every {
		last = c.now.Add(-200 * 24 * time.Hour)
		c.matching++
	}
	orders := int64(1 + i%9)
	birthday := time.Date(1950+c.r.IntN(55), 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, c.r.IntN(365))
	stage := "active"
	if i%10 == 3 {
		stage = "lapsed"
	}
	tags := []string{}
	if i%50 == 0 {
		tags = []string{"vip"}
	}
	c.row = []any{customerID(i), customerID(i) + "@example.com", "Bench Customer", []string{"en", "de", "ja"}[i%3],
		benchZones[c.r.IntN(len(benchZones))], stage, orders, last, last.Add(-time.Duration(orders-1) * 30 * 24 * time.Hour),
		float64(20 + i%40), float64(100 + i%900), float64(100+i%900) / float64(orders), birthday,
		c.now.Add(-time.Duration(c.r.IntN(3*365*24)) * time.Hour), tags}
	return true
}

func (c *copyRows) Values() ([]any, error) { return c.row, nil }
func (c *copyRows) Err() error             { return nil }

// benchSelect is part select: a segment scan's selection with 1 in
// -select-match-every customers matching.
func benchSelect(ctx context.Context, c config) error {
	fmt.Printf("\n== select: segment selection over %d customers, 1 in %d matching\n", c.selectCustomers, c.selectMatchEvery)
	db, err := seedSelect(ctx, c)
	if err != nil {
		return err
	}
	plan, err := engine.Compile("bench_select.yaml", []byte(selectSrc))
	if err != nil {
		return err
	}
	now := db.now
	pred := scan.Selection(plan).Bind(now, pushdown.Zones{})
	selectOnce := func() (int, int, error) { return selectScan(ctx, db.st, plan, pred, now) }
	raw := func() (int, error) {
		return rawRows(ctx, db.st, `SELECT `+rawColumns+` FROM customers
			WHERE order_count > 0 AND last_purchase_at <= $1
			AND trunc(extract(epoch FROM $2 - last_purchase_at) / 86400) > 2 * purchase_gap_days`,
			now.Add(-91*24*time.Hour), now)
	}
	return compareSelection(ctx, c, db, plan, now, pred.Exact, selectOnce, raw, db.matching)
}

// benchBirthdays is part birthdays: a date scan's selection of the
// birthdays due in one hourly slot, and of a whole day's 24 slots.
func benchBirthdays(ctx context.Context, c config) error {
	fmt.Printf("\n== birthdays: today's birthdays over %d customers in %d time zones, greeted at 09:00 local time\n", c.selectCustomers, len(benchZones))
	db, err := seedSelect(ctx, c)
	if err != nil {
		return err
	}
	plan, err := engine.Compile("bench_birthdays.yaml", []byte(birthdaysSrc))
	if err != nil {
		return err
	}
	// The slot in which 09:00 passes in UTC (and in London in winter).
	d := db.now
	now := time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, time.UTC)
	zones, err := db.st.TimeZones(ctx, "birthday")
	if err != nil {
		return err
	}
	bind := func(at time.Time) pushdown.Predicate {
		return scan.Selection(plan).Bind(at, pushdown.Zones{Birthday: zones})
	}
	pred := bind(now)
	selectOnce := func() (int, int, error) {
		// The zones are read by every scan: part of its cost.
		if _, err := db.st.TimeZones(ctx, "birthday"); err != nil {
			return 0, 0, err
		}
		return selectScan(ctx, db.st, plan, pred, now)
	}
	// The same predicate by hand: the zones whose 09:00 fell in the slot,
	// and today's month-day in them.
	var due []string
	for _, z := range zones {
		loc := rules.Location(z)
		if at, ok := pushdown.DueAt(plan.Trigger.At, loc, now, scan.DateWindow); ok && at.In(loc).Day() == now.In(loc).Day() {
			due = append(due, z)
		}
	}
	md := int(now.Month())*100 + now.Day()
	raw := func() (int, error) {
		return rawRows(ctx, db.st, `SELECT `+rawColumns+` FROM customers
			WHERE birthday IS NOT NULL AND timezone = ANY($1)
			AND (extract(month FROM birthday) * 100 + extract(day FROM birthday))::integer = $2 AND stage <> 'lapsed'`, due, md)
	}
	var todays int
	if err := db.st.Pool().QueryRow(ctx, `SELECT count(*) FROM customers
		WHERE (extract(month FROM birthday) * 100 + extract(day FROM birthday))::integer = $1`, md).Scan(&todays); err != nil {
		return err
	}
	fmt.Printf("slot:    %s, zones due %v; %d customers have their birthday on %s in any zone\n", now.Format(time.RFC3339), due, todays, now.Format("01-02"))
	if err := compareSelection(ctx, c, db, plan, now, pred.Exact, selectOnce, raw, -1); err != nil {
		return err
	}
	// A day of hourly scans.
	start := time.Now()
	total, read := 0, 0
	for h := range 24 {
		at := now.Add(time.Duration(h-9) * time.Hour)
		got, candidates, err := selectScan(ctx, db.st, plan, bind(at), at)
		if err != nil {
			return err
		}
		total += got
		read += candidates
	}
	fmt.Printf("day:     24 hourly scans read %d candidates and selected %d in %s (the birthdays of every zone, each on its local day)\n",
		read, total, time.Since(start).Round(time.Millisecond))
	return nil
}

// rawColumns are the columns a scan reads, as stored.
const rawColumns = `id, email, phone, name, locale, timezone, tier, stage, points,
	lifetime_value, order_count, avg_order_value, purchase_gap_days, churn_risk,
	last_purchase_at, birthday, signup_at, tags, attrs`

// rawRows streams a query and decodes every row; it returns the count.
func rawRows(ctx context.Context, st *store.Store, sql string, args ...any) (int, error) {
	rows, err := st.Pool().Query(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if _, err := rows.Values(); err != nil {
			return 0, err
		}
		n++
	}
	return n, rows.Err()
}

// selectScan selects as a scan activity does (one streamed query per
// call of PagesPerCall pages, the trigger in Go on each candidate unless
// the SQL is exact) and returns the matches and the candidates read.
func selectScan(ctx context.Context, st *store.Store, plan *engine.Plan, pred pushdown.Predicate, now time.Time) (matched, read int, err error) {
	m, err := scan.NewMatcher(plan, now)
	if err != nil {
		return 0, 0, err
	}
	limit := scan.DefaultPageSize * scan.PagesPerCall
	after := ""
	for {
		n := 0
		err := st.EachCandidate(ctx, store.CandidateQuery{Where: pred, Now: now, AfterID: after, Limit: limit}, func(cu rules.Customer) error {
			n++
			after = cu.ID
			if pred.Exact { // as the scan activity: the SQL decided
				matched++
				return nil
			}
			ok, err := m.Match(cu)
			if ok {
				matched++
			}
			return err
		})
		if err != nil {
			return 0, 0, err
		}
		read += n
		if n < limit {
			return matched, read, nil
		}
	}
}

// compareSelection times the selection, the raw SELECT, the scan
// activity's code without Temporal, and reading every customer as scans
// did before the trigger was compiled to SQL. Medians of -select-runs.
func compareSelection(ctx context.Context, c config, db *selectDB, plan *engine.Plan, now time.Time, exact bool,
	selectOnce func() (int, int, error), raw func() (int, error), seeded int) error {
	var sel, rw []time.Duration
	matched, read, rawN := 0, 0, 0
	// One run first, not timed, so that every measured run finds the
	// pages in the buffer cache and warm connections (a fresh PostgreSQL
	// session plans its first queries several times slower).
	if _, _, err := selectOnce(); err != nil {
		return err
	}
	if _, err := raw(); err != nil {
		return err
	}
	for range c.selectRuns {
		start := time.Now()
		m, r, err := selectOnce()
		if err != nil {
			return err
		}
		sel = append(sel, time.Since(start))
		matched, read = m, r
		start = time.Now()
		if rawN, err = raw(); err != nil {
			return err
		}
		rw = append(rw, time.Since(start))
	}
	if rawN != matched {
		return fmt.Errorf("the raw SELECT returned %d rows, the selection %d matches: not the same predicate", rawN, matched)
	}
	if seeded >= 0 && matched != seeded {
		return fmt.Errorf("selected %d, seeded %d to match", matched, seeded)
	}
	// The scan activity's code, starting nobody.
	src := plan.Source
	if _, err := db.st.DeployPlaybook(ctx, plan.Name, plan.Version, src); err != nil {
		return err
	}
	a := &scan.Activities{Store: db.st, Start: func(context.Context, *engine.Plan, string, rules.Event) (bool, error) { return true, nil }}
	start := time.Now()
	req := scan.PageRequest{Playbook: plan.Name, Now: now, Limit: scan.DefaultPageSize, Pages: scan.PagesPerCall}
	var res scan.PageResult
	for {
		r, err := a.ScanPage(ctx, req)
		if err != nil {
			return err
		}
		res.Counts = res.Counts.Add(r.Counts)
		if r.Done {
			break
		}
		req.AfterID = r.NextID
	}
	activityTook := time.Since(start)
	// Everyone read and evaluated, as before #15.
	start = time.Now()
	everyone, readAll, err := selectScan(ctx, db.st, plan, pushdown.Predicate{SQL: "TRUE"}, now)
	if err != nil {
		return err
	}
	fullTook := time.Since(start)
	if everyone != matched {
		return fmt.Errorf("reading everyone selected %d, the pushed-down scan %d", everyone, matched)
	}
	s, r := median(sel), median(rw)
	pairs := make([]time.Duration, len(sel)) // raw/selection of each run, scaled to sort as durations
	for i := range sel {
		pairs[i] = time.Duration(float64(time.Second) * rw[i].Seconds() / sel[i].Seconds())
	}
	fmt.Printf("select:  %d candidates read, %d selected (SQL, exact %v), median of %d: %s, best %s (runs %s)\n",
		read, matched, exact, len(sel), s.Round(time.Microsecond), slices.Min(sel).Round(time.Microsecond), roundAll(sel))
	fmt.Printf("raw:     the same predicate as a hand-written indexed SELECT, %d rows decoded: median %s, best %s (runs %s)\n",
		rawN, r.Round(time.Microsecond), slices.Min(rw).Round(time.Microsecond), roundAll(rw))
	fmt.Printf("ratio:   %.2f of the medians, %.2f of the best runs, %.2f median of each run's (raw time / selection time; target ≥ 0.5)\n",
		r.Seconds()/s.Seconds(), slices.Min(rw).Seconds()/slices.Min(sel).Seconds(), median(pairs).Seconds())
	fmt.Printf("activity: the scan activity's code without Temporal (re-entry pre-filter, nobody started): %d scanned, %d matched in %s\n",
		res.Scanned, res.Matched, activityTook.Round(time.Microsecond))
	fmt.Printf("everyone: every customer read and evaluated in Go, as scans did before: %d read, %d selected in %s\n",
		readAll, everyone, fullTook.Round(time.Millisecond))
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Microsecond)
	}
	return out
}
