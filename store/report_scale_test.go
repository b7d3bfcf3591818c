package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rapport-crm/rapport/report"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// seedVariedReport writes a random history whose times fall on a grid of
// hours, so that events land exactly on an enrollment's start, its first
// message and its end, where a rewritten query that moved a bound would
// count differently: enrollments of three playbooks (one outside the
// global control group) in every status, holdouts and the global control
// group, customers enrolled several times with overlapping spans,
// messages in every status (some recorded before their enrollment
// started) with their status histories, step records of every kind
// (deferrals, splits, suppressed actions), points, coupons and tasks of
// journeys and of none, and events of every name the report looks at.
func seedVariedReport(t *testing.T, s *store.Store, now time.Time) {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(16, 1))
	hour := func(n int) time.Time { return now.Add(time.Duration(n) * time.Hour) }
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	const customers = 60
	var rows struct{ enr, steps, msgs, mevs, events, points, coupons, tasks [][]any }
	for i := range customers {
		if _, err := s.Pool().Exec(ctx, `INSERT INTO customers (id, email) VALUES ($1, $1 || '@example.com')`, fmt.Sprintf("c%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	type span struct{ start, end int }
	n := 0
	for i := range 400 {
		id, cust := fmt.Sprintf("e%03d", i), fmt.Sprintf("c%03d", r.IntN(customers))
		pb := pick("p1", "p2", "p3")
		start := -r.IntN(200 * 24)
		sp := span{start, start + r.IntN(300)}
		status := pick("active", "completed", "completed", "converted", "exited", "failed", "rejected")
		var ended, converted, global any
		if status != "active" {
			ended = hour(sp.end)
		} else {
			sp.end = 1 << 20
		}
		if status == "converted" || r.IntN(5) == 0 {
			converted = hour(sp.start + r.IntN(min(sp.end-sp.start, 400)+1))
		}
		holdout := r.IntN(4) == 0
		if pb != "p3" {
			g := r.IntN(6) == 0
			global, holdout = g, holdout || g
		}
		rows.enr = append(rows.enr, []any{id, "wf-" + id, pb, pick("v1", "v2"), cust, status, holdout, hour(sp.start), ended, global, converted})
		for range r.IntN(4) {
			n++
			step := pick("s1", "s2", "s3", "")
			key := fmt.Sprintf("%s/%s/%d", id, step, n)
			if step == "" {
				key = fmt.Sprintf("%s/manual/%d", id, n)
			}
			st := pick("sent", "sent", "sent", "queued", "failed", "suppressed")
			reason := ""
			if st == "suppressed" {
				reason = pick("consent", "holdout", "frequency_cap", "erased")
			}
			at := sp.start + r.IntN(100) - 2
			rows.msgs = append(rows.msgs, []any{key, id, cust, pb, step, "email", st, reason, hour(at)})
			if st == "sent" {
				for range r.IntN(4) {
					n++
					rows.mevs = append(rows.mevs, []any{fmt.Sprintf("me%05d", n), key,
						pick("delivered", "opened", "clicked", "bounced", "complained", "unsubscribed"), "ses", hour(at + r.IntN(50))})
				}
			}
		}
		for range r.IntN(6) {
			n++
			step := pick("s1", "s2", "ab", "gate", "tag", "gift")
			key := fmt.Sprintf("%s/%s/%d", id, step, n)
			kind, branch := "send", ""
			switch step {
			case "s1", "s2":
				key += pick("/quiet_hours", "/frequency_cap/1", "/frequency_cap/2", "/frequency_cap/x", "")
			case "ab":
				kind, branch = "split", pick("a", "b")
			case "gate":
				kind, branch = pick("if", "wait"), pick("then", "else", "timeout", "order_completed")
			case "tag":
				kind, branch = "update", pick("", "suppressed:holdout", "suppressed:consent")
			case "gift":
				kind, branch = pick("coupon", "points", "task"), pick("", "suppressed:holdout")
			}
			rows.steps = append(rows.steps, []any{key, id, step, kind, branch, hour(sp.start + r.IntN(200) - 1)})
		}
		for range r.IntN(3) {
			n++
			key, enr := fmt.Sprintf("%s/%s/%d", id, pick("gift", "bonus", "call"), n), id
			switch r.IntN(5) {
			case 0:
				enr = "" // not a journey's
			case 1:
				key = fmt.Sprintf("other/%d", n) // a journey's, keyed otherwise
			}
			at := hour(sp.start + r.IntN(150))
			switch r.IntN(3) {
			case 0:
				rows.points = append(rows.points, []any{key, cust, enr, 10, 10, at})
			case 1:
				rows.coupons = append(rows.coupons, []any{fmt.Sprintf("C%d", n), key, cust, enr, "percent", 10, hour(1000), at})
			default:
				rows.tasks = append(rows.tasks, []any{key, cust, enr, "care", "call", hour(1000), at})
			}
		}
	}
	names := []string{"message_delivered", "message_opened", "message_bounced", "message_clicked", "complaint", "complaint_filed",
		"message_complained", "order_completed", "page_viewed", "page_viewed"}
	for i := range 6000 {
		rows.events = append(rows.events, []any{fmt.Sprintf("ev%05d", i), fmt.Sprintf("c%03d", r.IntN(customers)),
			names[r.IntN(len(names))], hour(-r.IntN(210*24) + 5)})
	}
	if err := s.EnsureEventMonths(ctx, hour(-210*24), hour(10)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"enrollments", []string{"id", "workflow_id", "playbook", "version", "customer_id", "status", "holdout", "started_at", "ended_at", "global_control", "converted_at"}, rows.enr},
		{"enrollment_steps", []string{"key", "enrollment_id", "step_id", "kind", "branch", "at"}, rows.steps},
		{"messages", []string{"key", "enrollment_id", "customer_id", "playbook", "step_id", "channel", "status", "reason", "created_at"}, rows.msgs},
		{"message_events", []string{"id", "message_key", "kind", "provider", "at"}, rows.mevs},
		{"points_ledger", []string{"key", "customer_id", "enrollment_id", "delta", "balance_after", "at"}, rows.points},
		{"coupons", []string{"code", "key", "customer_id", "enrollment_id", "kind", "value", "expires_at", "created_at"}, rows.coupons},
		{"tasks", []string{"key", "customer_id", "enrollment_id", "assignee", "title", "due_at", "created_at"}, rows.tasks},
		{"events", []string{"id", "customer_id", "name", "time"}, rows.events},
	} {
		if _, err := s.Pool().CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			t.Fatalf("seed %s: %v", c.table, err)
		}
	}
}

// oldFeedbackSQL is reportFeedback's query before migration 00016's
// release: the distinct count of messages per kind, over the scope of
// reportScope ($1 the playbook, empty for all; $2 the earliest start).
const oldFeedbackSQL = `WITH e AS (
	SELECT id, playbook, version, customer_id, status, holdout, coalesce(global_control, false) AS global_control, started_at, ended_at, converted_at
	FROM enrollments
	WHERE status <> 'rejected' AND ($1 = '' OR playbook = $1) AND started_at >= $2
)
SELECT e.playbook, m.step_id, me.kind, count(DISTINCT m.key)::int
FROM message_events me JOIN messages m ON m.key = me.message_key JOIN e ON e.id = m.enrollment_id
WHERE m.step_id <> ''
GROUP BY 1, 2, 3`

// TestReportSameAsBefore16: over a varied history, ReportInput gives the
// same report.Input as before issue #15's changes to it (migration
// 00016's indexes, the transaction without JIT, the feedback query made
// distinct before the join) for every playbook and scope: the reference
// is the same database migrated down to 00015, with the step engagement
// counted by the old feedback query. Migrating up again gives the new
// figures again.
func TestReportSameAsBefore16(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.NewDB(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := store.New(pool, storetest.Config())
	now := time.Date(2026, 5, 20, 12, 0, 0, 0, time.UTC)
	seedVariedReport(t, s, now)
	day := 24 * time.Hour
	var queries []store.ReportQuery
	for _, pb := range []string{"", "p1", "p2", "p3", "nurture"} {
		for _, since := range []time.Duration{0, 7 * day, 30 * day, 90 * day} {
			queries = append(queries, store.ReportQuery{Playbook: pb, Since: since, Now: now})
		}
	}
	read := func() []report.Input {
		t.Helper()
		out := make([]report.Input, len(queries))
		for i, q := range queries {
			if out[i], err = s.ReportInput(ctx, q); err != nil {
				t.Fatalf("%+v: %v", q, err)
			}
		}
		return out
	}
	got := read()
	requireVariedReport(t, got[0])

	if err := store.MigrateDownTo(ctx, url, 15); err != nil {
		t.Fatalf("migrate down to 15: %v", err)
	}
	want := read()
	for i, q := range queries {
		old := map[[2]string]map[string]int{}
		from := time.Time{} // all time, as ReportInput reads it
		if q.Since > 0 {
			from = q.Now.Add(-q.Since)
		}
		rows, err := pool.Query(ctx, oldFeedbackSQL, q.Playbook, from)
		if err != nil {
			t.Fatal(err)
		}
		var pb, step, kind string
		var n int
		if _, err := pgx.ForEachRow(rows, []any{&pb, &step, &kind, &n}, func() error {
			k := [2]string{pb, step}
			if old[k] == nil {
				old[k] = map[string]int{}
			}
			old[k][kind] = n
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for j := range want[i].Steps {
			st := &want[i].Steps[j]
			st.Engagement = old[[2]string{st.Playbook, st.Step}]
		}
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("%+v:\n got %+v\nwant %+v", q, got[i], want[i])
		}
	}

	if err := store.Migrate(ctx, url); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
	if again := read(); !reflect.DeepEqual(again, got) {
		t.Errorf("after migrating up again the reports differ:\n got %+v\nwant %+v", again, got)
	}
}

// requireVariedReport fails the test unless the all-time report of every
// playbook has every figure the comparison is meant to cover.
func requireVariedReport(t *testing.T, in report.Input) {
	t.Helper()
	var msg, resp, compl, deferred, withheld, engaged int
	for _, g := range in.Engagement {
		msg, resp, compl = msg+g.Messaged, resp+g.Responded, compl+g.Complained
	}
	for _, st := range in.Steps {
		deferred += len(st.Deferred)
		withheld += st.Suppressed["holdout"]
		engaged += len(st.Engagement)
	}
	if len(in.Outcomes) < 20 || len(in.Variants) == 0 || msg == 0 || resp == 0 || resp == msg || compl == 0 || deferred == 0 || withheld == 0 || engaged == 0 ||
		in.Programme[0].Enrolled == 0 || in.Programme[1].Enrolled == 0 {
		t.Fatalf("the seeded history leaves figures out: %d outcome rows, %d variants, messaged %d responded %d complained %d, %d deferral kinds, %d withheld, %d engagement kinds, programme %+v",
			len(in.Outcomes), len(in.Variants), msg, resp, compl, deferred, withheld, engaged, in.Programme)
	}
}
