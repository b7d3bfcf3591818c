package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/report"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// repNow is the report's clock in these tests.
var repNow = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// seedReport writes a win-back history with known outcomes:
//
//   - e001…e200 treated, e201…e300 held out, all started 2 days before
//     repNow; e001…e060 converted after 1…60 hours (e001…e030 ended
//     there by the goal, e031…e060 went on and completed an hour
//     later), e201…e215 converted after 100 hours each (ended by the
//     goal); e191…e200 run version v2 (5 active, 3 completed, 2 exited),
//     every other one v1 and completed.
//   - rejected and 60-day-old winback enrollments, which are out of scope,
//     and one birthday enrollment.
//   - step ask_why: e001–e003 sent; e004 suppressed (consent); e201
//     suppressed (holdout); e005 failed (no_address); e006 deferred by
//     quiet hours then sent; e007 deferred twice by the frequency cap
//     then sent.
//   - split ab: e001–e010 and e201–e205 (held out) took a, e061–e070 b.
//   - a coupon (offer) for e001, withheld from e201 (holdout); points
//     (reward) for e002; an update (tag) withheld from e202 (holdout).
//   - customer c001 bought after the message (a response), c002 only
//     before it; c003 filed a complaint during the enrollment.
func seedReport(t *testing.T, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	for _, sql := range []string{
		`INSERT INTO customers (id, email) SELECT 'c' || lpad(i::text, 3, '0'), 'c' || i || '@example.com' FROM generate_series(1, 320) i`,
		`INSERT INTO enrollments (id, workflow_id, playbook, version, customer_id, status, holdout, started_at, ended_at, converted_at)
		 SELECT 'e' || lpad(i::text, 3, '0'), 'rapport/winback/c' || lpad(i::text, 3, '0'), 'winback',
			CASE WHEN i BETWEEN 191 AND 200 THEN 'v2' ELSE 'v1' END,
			'c' || lpad(i::text, 3, '0'),
			CASE WHEN i <= 30 OR i BETWEEN 201 AND 215 THEN 'converted'
			     WHEN i BETWEEN 191 AND 195 THEN 'active'
			     WHEN i BETWEEN 199 AND 200 THEN 'exited'
			     ELSE 'completed' END,
			i > 200, $1::timestamptz - interval '2 days',
			CASE WHEN i <= 30 THEN $1::timestamptz - interval '2 days' + i * interval '1 hour'
			     WHEN i <= 60 THEN $1::timestamptz - interval '2 days' + (i + 1) * interval '1 hour'
			     WHEN i BETWEEN 201 AND 215 THEN $1::timestamptz - interval '2 days' + interval '100 hours'
			     WHEN i BETWEEN 191 AND 195 THEN NULL
			     ELSE $1::timestamptz - interval '1 day' END,
			CASE WHEN i <= 60 THEN $1::timestamptz - interval '2 days' + i * interval '1 hour'
			     WHEN i BETWEEN 201 AND 215 THEN $1::timestamptz - interval '2 days' + interval '100 hours' END
		 FROM generate_series(1, 300) i`,
		`INSERT INTO enrollments (id, workflow_id, playbook, version, customer_id, status, holdout, started_at, ended_at) VALUES
			('rej', 'wf', 'winback', 'v1', 'c301', 'rejected', false, $1::timestamptz - interval '1 day', $1::timestamptz - interval '1 day'),
			('b01', 'wf', 'birthday', 'b1', 'c303', 'exited', false, $1::timestamptz - interval '1 day', $1::timestamptz)`,
		`INSERT INTO enrollments (id, workflow_id, playbook, version, customer_id, status, holdout, started_at, ended_at, converted_at) VALUES
			('old', 'wf', 'winback', 'v1', 'c302', 'converted', false, $1::timestamptz - interval '60 days', $1::timestamptz - interval '59 days', $1::timestamptz - interval '59 days')`,
		`INSERT INTO messages (key, enrollment_id, customer_id, playbook, step_id, channel, status, reason, created_at)
		 SELECT v.e || '/ask_why/1', v.e, 'c' || substr(v.e, 2), 'winback', 'ask_why', 'email', v.status, v.reason,
			$1::timestamptz - interval '2 days' + interval '10 minutes'
		 FROM (VALUES ('e001', 'sent', ''), ('e002', 'sent', ''), ('e003', 'sent', ''), ('e004', 'suppressed', 'consent'),
			('e201', 'suppressed', 'holdout'), ('e005', 'failed', 'no_address'), ('e006', 'sent', ''), ('e007', 'sent', ''))
			AS v(e, status, reason)`,
		`INSERT INTO enrollment_steps (key, enrollment_id, step_id, kind, detail, branch, at) VALUES
			('e006/ask_why/1/quiet_hours', 'e006', 'ask_why', 'send', 'quiet hours: deferred until …', '', $1::timestamptz - interval '2 days' + interval '1 minute'),
			('e007/ask_why/1/frequency_cap/1', 'e007', 'ask_why', 'send', 'frequency cap: deferred until …', '', $1::timestamptz - interval '2 days' + interval '1 minute'),
			('e007/ask_why/1/frequency_cap/2', 'e007', 'ask_why', 'send', 'frequency cap: deferred until …', '', $1::timestamptz - interval '2 days' + interval '2 minutes'),
			('e201/offer/1/holdout', 'e201', 'offer', 'coupon', 'coupon suppressed (holdout)', 'suppressed:holdout', $1::timestamptz - interval '2 days' + interval '30 minutes'),
			('e202/tag/1/holdout', 'e202', 'tag', 'update', 'update suppressed (holdout)', 'suppressed:holdout', $1::timestamptz - interval '2 days' + interval '5 minutes')`,
		`INSERT INTO enrollment_steps (key, enrollment_id, step_id, kind, detail, branch, at)
		 SELECT 'e' || lpad(i::text, 3, '0') || '/ab/1', 'e' || lpad(i::text, 3, '0'), 'ab', 'split', '',
			CASE WHEN i BETWEEN 61 AND 70 THEN 'b' ELSE 'a' END, $1::timestamptz - interval '2 days' + interval '20 minutes'
		 FROM generate_series(1, 300) i WHERE i <= 10 OR i BETWEEN 61 AND 70 OR i BETWEEN 201 AND 205`,
		`INSERT INTO coupons (code, key, customer_id, enrollment_id, kind, value, expires_at, created_at)
		 VALUES ('WB-1', 'e001/offer/1', 'c001', 'e001', 'percent', 15, $1, $1::timestamptz - interval '2 days' + interval '30 minutes')`,
		`INSERT INTO points_ledger (key, customer_id, enrollment_id, delta, reason, balance_after, at)
		 VALUES ('e002/reward/1', 'c002', 'e002', 50, 'winback', 50, $1::timestamptz - interval '2 days' + interval '40 minutes')`,
		`SELECT rapport_events_partition($1::timestamptz - interval '2 days')`,
		`INSERT INTO events (id, customer_id, name, time) VALUES
			('ev1', 'c001', 'purchase', $1::timestamptz - interval '2 days' + interval '30 minutes'),
			('ev2', 'c002', 'purchase', $1::timestamptz - interval '2 days' + interval '5 minutes'),
			('ev3', 'c003', 'complaint_filed', $1::timestamptz - interval '2 days' + interval '2 hours')`,
	} {
		var args []any
		if strings.Contains(sql, "$1") {
			args = append(args, repNow)
		}
		if _, err := s.Pool().Exec(ctx, sql, args...); err != nil {
			t.Fatalf("seed: %v\n%s", err, sql)
		}
	}
}

func TestReportFigures(t *testing.T) {
	s := storetest.New(t)
	seedReport(t, s)
	in, err := s.ReportInput(context.Background(), store.ReportQuery{Since: 30 * 24 * time.Hour, Now: repNow})
	if err != nil {
		t.Fatal(err)
	}
	r := report.Build(in)
	if len(r.Playbooks) != 2 || r.Playbooks[1].Name != "winback" {
		t.Fatalf("playbooks = %+v", r.Playbooks)
	}
	w := r.Playbooks[1]

	// Funnel: 300 in scope (rejected and 60-day-old left out).
	tot := w.Total
	if tot.Enrolled != 300 || tot.Holdout != 100 || tot.Converted != 75 || tot.Active != 5 || tot.Exited != 2 || tot.Completed != 248 || tot.EndedAtGoal != 45 {
		t.Errorf("total funnel = %+v", tot)
	}
	// 75 conversion times: 1…60 h and 15 × 100 h; the 38th smallest is 38 h.
	if m := tot.MedianTimeToConvertSeconds; m == nil || *m != 38*3600 {
		t.Errorf("median time to convert = %v, want %d", m, 38*3600)
	}
	if len(w.Versions) != 2 || w.Versions[1].Version != "v2" || w.Versions[1].Enrolled != 10 || w.Versions[1].Active != 5 ||
		w.Versions[1].Completed != 3 || w.Versions[1].Exited != 2 || w.Versions[1].ConversionRate == nil || *w.Versions[1].ConversionRate != 0 {
		t.Errorf("versions = %+v", w.Versions)
	}

	// Steps, in the order they were first reached.
	wantSteps := []report.Step{
		{Step: "ask_why", Reached: 8, Sent: 5, Failed: 1,
			Suppressed: map[string]int{"consent": 1, "holdout": 1},
			Deferred:   map[string]int{"quiet_hours": 1, "frequency_cap": 2}},
		{Step: "ab", Reached: 25, Suppressed: map[string]int{}, Deferred: map[string]int{}},
		{Step: "offer", Reached: 2, Suppressed: map[string]int{"holdout": 1}, Deferred: map[string]int{}},
		{Step: "reward", Reached: 1, Suppressed: map[string]int{}, Deferred: map[string]int{}},
		{Step: "tag", Reached: 0, Suppressed: map[string]int{"holdout": 1}, Deferred: map[string]int{}}, // an update: no reach, the withheld one counted
	}
	if len(w.Steps) != len(wantSteps) {
		t.Fatalf("steps = %+v, want %+v", w.Steps, wantSteps)
	}
	for i, want := range wantSteps {
		got := w.Steps[i]
		if got.Step != want.Step || got.Reached != want.Reached || got.Sent != want.Sent || got.Failed != want.Failed ||
			!sameCounts(got.Suppressed, want.Suppressed) || !sameCounts(got.Deferred, want.Deferred) {
			t.Errorf("step %d = %+v, want %+v", i, got, want)
		}
	}

	// Variants: held-out enrollments on branch a are not counted.
	if len(w.Variants) != 2 || w.Variants[0] != (report.Variant{Step: "ab", Variant: "a", Enrolled: 10, Converted: 10, ConversionRate: w.Variants[0].ConversionRate}) ||
		*w.Variants[0].ConversionRate != 1 || w.Variants[1].Enrolled != 10 || w.Variants[1].Converted != 0 {
		t.Errorf("variants = %+v", w.Variants)
	}

	// Holdout: the hand-checked example of report.TestCompareByHand
	// (60/200 vs 15/100): lift 0.15, CI [0.0555, 0.2445], p = erfc(2).
	h := w.Holdout
	if !h.EnoughData || h.Treated.Enrolled != 200 || h.Treated.Converted != 60 || h.Control.Enrolled != 100 || h.Control.Converted != 15 {
		t.Fatalf("holdout = %+v", h)
	}
	if *h.Lift < 0.15-1e-12 || *h.Lift > 0.15+1e-12 || *h.CILow < 0.0554939-1e-7 || *h.CILow > 0.0554939+1e-7 ||
		*h.CIHigh < 0.2445061-1e-7 || *h.CIHigh > 0.2445061+1e-7 || *h.PValue < 0.0046777-1e-7 || *h.PValue > 0.0046777+1e-7 {
		t.Errorf("holdout statistics = lift %v CI [%v, %v] p %v", *h.Lift, *h.CILow, *h.CIHigh, *h.PValue)
	}

	// Engagement: 5 enrollments were sent a message; c001 (a purchase)
	// and c003 (a complaint is an answer too) responded after it, c002
	// bought only before it; c003 complained.
	if w.Messaged != 5 || w.Responded != 2 || w.Complained != 1 {
		t.Errorf("engagement = messaged %d responded %d complained %d, want 5 2 1", w.Messaged, w.Responded, w.Complained)
	}
}

func TestReportScope(t *testing.T) {
	s := storetest.New(t)
	seedReport(t, s)
	ctx := context.Background()
	// All time includes the 60-day-old conversion; the rejected one never counts.
	in, err := s.ReportInput(ctx, store.ReportQuery{Playbook: "winback", Now: repNow})
	if err != nil {
		t.Fatal(err)
	}
	r := report.Build(in)
	if len(r.Playbooks) != 1 || r.Playbooks[0].Total.Enrolled != 301 || r.Playbooks[0].Total.Converted != 76 {
		t.Fatalf("all-time winback = %+v", r.Playbooks)
	}
	// A playbook with no enrollments in scope gives an empty report.
	in, err = s.ReportInput(ctx, store.ReportQuery{Playbook: "nurture", Now: repNow})
	if err != nil {
		t.Fatal(err)
	}
	if r := report.Build(in); len(r.Playbooks) != 0 {
		t.Errorf("nurture report = %+v, want empty", r.Playbooks)
	}
}

func sameCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
