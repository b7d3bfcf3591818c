package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/report"
)

// ReportQuery selects the enrollments a report covers.
type ReportQuery struct {
	Playbook string        // "": every playbook
	Since    time.Duration // 0: all time; else enrollments started within Since before Now
	Now      time.Time     // zero: the wall clock
}

// reportScope is the CTE every report query starts from: the admitted
// enrollments in scope ($1 a playbook name or empty for all, $2 the earliest start).
// Rejected enrollments never began their steps and are left out.
const reportScope = `WITH e AS (
	SELECT id, playbook, version, customer_id, status, holdout, coalesce(global_control, false) AS global_control, started_at, ended_at, converted_at
	FROM enrollments
	WHERE status <> 'rejected' AND ($1 = '' OR playbook = $1) AND started_at >= $2
)
`

// ReportInput reads the counts of a report (see package report for what
// each means). Every query is over the same enrollments: those admitted
// into the playbook (all, or q.Playbook) that started within q.Since.
//
// The queries run in one read-only REPEATABLE READ transaction, so every
// figure comes from the same snapshot, with JIT compilation off: on a
// year of history (docs/benchmarks.md, "Reports at scale") PostgreSQL
// judged the engagement query costly enough to compile, and compiling
// took longer than running it without (0.7 s of its 1.8 s); a report's
// queries run once, so the compiled code is never reused.
func (s *Store) ReportInput(ctx context.Context, q ReportQuery) (report.Input, error) {
	now := q.Now
	if now.IsZero() {
		now = time.Now()
	}
	from := time.Time{}.UTC() // year 1: all time
	if q.Since > 0 {
		from = now.Add(-q.Since)
	}
	in := report.Input{GeneratedAt: now.UTC(), Since: q.Since, Playbook: q.Playbook}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
			return fmt.Errorf("turn JIT off: %w", err)
		}
		for _, read := range []struct {
			what string
			fn   func(context.Context, pgx.Tx, *report.Input, string, time.Time) error
		}{
			{"outcomes", reportOutcomes}, {"steps", reportSteps},
			{"split variants", reportVariants}, {"engagement", reportEngagement},
			{"programme", reportProgramme},
		} {
			if err := read.fn(ctx, tx, &in, q.Playbook, from); err != nil {
				return fmt.Errorf("%s: %w", read.what, err)
			}
		}
		return nil
	})
	if err != nil {
		return report.Input{}, fmt.Errorf("report: %w", err)
	}
	return in, nil
}

func reportOutcomes(ctx context.Context, tx pgx.Tx, in *report.Input, playbook string, from time.Time) error {
	rows, err := tx.Query(ctx, reportScope+`
		SELECT playbook, version, holdout, global_control, status, count(*)::int,
			count(*) FILTER (WHERE converted_at IS NOT NULL)::int,
			coalesce(array_agg(extract(epoch FROM converted_at - started_at)::float8 ORDER BY converted_at)
				FILTER (WHERE converted_at IS NOT NULL), '{}')
		FROM e GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`, playbook, from)
	if err != nil {
		return err
	}
	in.Outcomes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (report.OutcomeRow, error) {
		var o report.OutcomeRow
		err := r.Scan(&o.Playbook, &o.Version, &o.Holdout, &o.GlobalControl, &o.Status, &o.Count, &o.Converted, &o.ConvertSeconds)
		return o, err
	})
	return err
}

// stepTouches lists (enrollment, step, time) for every record a step
// left: decisions and deferrals in enrollment_steps, messages, and the
// points, coupons and tasks whose key is "<enrollment>/<step>/<visit>".
// Steps that leave no record (plain waits, updates, goto, exit) are not
// in it.
const stepTouches = `, touch AS (
	SELECT enrollment_id, step_id, at FROM enrollment_steps
		WHERE NOT (kind = 'update' AND starts_with(branch, 'suppressed:'))
	UNION ALL SELECT enrollment_id, step_id, created_at FROM messages WHERE step_id <> ''
	UNION ALL SELECT enrollment_id, split_part(substr(key, length(enrollment_id) + 2), '/', 1), at
		FROM points_ledger WHERE enrollment_id <> '' AND starts_with(key, enrollment_id || '/')
	UNION ALL SELECT enrollment_id, split_part(substr(key, length(enrollment_id) + 2), '/', 1), created_at
		FROM coupons WHERE enrollment_id <> '' AND starts_with(key, enrollment_id || '/')
	UNION ALL SELECT enrollment_id, split_part(substr(key, length(enrollment_id) + 2), '/', 1), created_at
		FROM tasks WHERE enrollment_id <> '' AND starts_with(key, enrollment_id || '/')
)
`

func reportSteps(ctx context.Context, tx pgx.Tx, in *report.Input, playbook string, from time.Time) error {
	steps := map[[2]string]*report.StepRow{}
	get := func(pb, step string) *report.StepRow {
		k := [2]string{pb, step}
		if steps[k] == nil {
			steps[k] = &report.StepRow{Playbook: pb, Step: step, Suppressed: map[string]int{}, Deferred: map[string]int{}}
		}
		return steps[k]
	}
	var order [][2]string
	// Reached: distinct enrollments per step, and the step's first record.
	rows, err := tx.Query(ctx, reportScope+stepTouches+`
		SELECT e.playbook, t.step_id, count(DISTINCT e.id)::int, min(t.at)
		FROM touch t JOIN e ON e.id = t.enrollment_id
		GROUP BY 1, 2 ORDER BY 4, 2`, playbook, from)
	if err != nil {
		return err
	}
	var pb, step string
	var n int
	var first time.Time
	_, err = pgx.ForEachRow(rows, []any{&pb, &step, &n, &first}, func() error {
		r := get(pb, step)
		r.Reached, r.First = n, first
		order = append(order, [2]string{pb, step})
		return nil
	})
	if err != nil {
		return err
	}
	if err := reportMessages(ctx, tx, get, playbook, from); err != nil {
		return err
	}
	if err := reportFeedback(ctx, tx, get, playbook, from); err != nil {
		return err
	}
	if err := reportDeferrals(ctx, tx, get, playbook, from); err != nil {
		return err
	}
	if err := reportWithheld(ctx, tx, get, playbook, from); err != nil {
		return err
	}
	for _, k := range order {
		in.Steps = append(in.Steps, *steps[k])
		delete(steps, k)
	}
	// Steps with figures but no reach: update steps, whose treated
	// enrollments keep no record (only a holdout's withheld update does,
	// which would make "reached" count the holdouts alone).
	rest := make([][2]string, 0, len(steps))
	for k := range steps {
		rest = append(rest, k)
	}
	sort.Slice(rest, func(i, j int) bool {
		return rest[i][0] < rest[j][0] || rest[i][0] == rest[j][0] && rest[i][1] < rest[j][1]
	})
	for _, k := range rest {
		in.Steps = append(in.Steps, *steps[k])
	}
	return nil
}

// reportMessages counts each step's messages by status and reason.
func reportMessages(ctx context.Context, tx pgx.Tx, get func(string, string) *report.StepRow, playbook string, from time.Time) error {
	rows, err := tx.Query(ctx, reportScope+`
		SELECT e.playbook, m.step_id, m.status, m.reason, count(*)::int
		FROM messages m JOIN e ON e.id = m.enrollment_id
		WHERE m.step_id <> ''
		GROUP BY 1, 2, 3, 4`, playbook, from)
	if err != nil {
		return err
	}
	var pb, step, status, reason string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&pb, &step, &status, &reason, &n}, func() error {
		r := get(pb, step)
		switch status {
		case msgSent:
			r.Sent += n
		case msgFailed:
			r.Failed += n
		case msgQueued:
			r.Queued += n
		case msgSuppressed:
			r.Suppressed[reason] += n
		}
		return nil
	})
	return err
}

// reportFeedback counts each step's messages by the kinds of their status
// history (message_events): a message counts once per kind, however many
// opens or clicks it had. The (message, kind) pairs are made distinct
// before the join (the index on message_events lists them in order), so
// each group counts rows instead of sorting keys for a distinct count
// (a quarter faster on a year of history).
func reportFeedback(ctx context.Context, tx pgx.Tx, get func(string, string) *report.StepRow, playbook string, from time.Time) error {
	return countStepReasons(ctx, tx, `
		SELECT e.playbook, m.step_id, me.kind, count(*)::int
		FROM (SELECT DISTINCT message_key, kind FROM message_events) me
		JOIN messages m ON m.key = me.message_key JOIN e ON e.id = m.enrollment_id
		WHERE m.step_id <> ''
		GROUP BY 1, 2, 3`, playbook, from, func(pb, step, kind string, n int) {
		r := get(pb, step)
		if r.Engagement == nil {
			r.Engagement = map[string]int{}
		}
		r.Engagement[kind] = n
	})
}

// reportProgramme counts, over the enrollments of playbooks that take part
// in the global control group (global_control not NULL), the treated ones
// (not in the group nor in the playbook's holdout) and those in the group,
// with their conversions.
func reportProgramme(ctx context.Context, tx pgx.Tx, in *report.Input, playbook string, from time.Time) error {
	var t, tc, c, cc int
	err := tx.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE NOT global_control AND NOT holdout)::int,
			count(*) FILTER (WHERE NOT global_control AND NOT holdout AND converted_at IS NOT NULL)::int,
			count(*) FILTER (WHERE global_control)::int,
			count(*) FILTER (WHERE global_control AND converted_at IS NOT NULL)::int
		FROM enrollments
		WHERE status <> 'rejected' AND global_control IS NOT NULL AND ($1 = '' OR playbook = $1) AND started_at >= $2`,
		playbook, from).Scan(&t, &tc, &c, &cc)
	in.Programme = [2]report.Group{report.NewGroup(t, tc), report.NewGroup(c, cc)}
	return err
}

// reportWithheld counts the actions a journey did not take (a holdout's
// update, points, coupon or task), which it records as step records whose
// branch is "suppressed:<reason>" (workflows.SuppressedBranch), with the
// step's suppressed messages.
func reportWithheld(ctx context.Context, tx pgx.Tx, get func(string, string) *report.StepRow, playbook string, from time.Time) error {
	return countStepReasons(ctx, tx, `
		SELECT e.playbook, st.step_id, substr(st.branch, length('suppressed:') + 1), count(*)::int
		FROM enrollment_steps st JOIN e ON e.id = st.enrollment_id
		WHERE starts_with(st.branch, 'suppressed:')
		GROUP BY 1, 2, 3`, playbook, from, func(pb, step, reason string, n int) { get(pb, step).Suppressed[reason] += n })
}

// reportDeferrals counts send deferrals. The journey records them as
// send-step records keyed "<send key>/quiet_hours" and
// "<send key>/frequency_cap/<attempt>" (workflows/steps.go); a deferred
// message is not in the outbox until it is finally tried.
func reportDeferrals(ctx context.Context, tx pgx.Tx, get func(string, string) *report.StepRow, playbook string, from time.Time) error {
	return countStepReasons(ctx, tx, `
		SELECT e.playbook, st.step_id,
			CASE WHEN st.key LIKE '%/quiet_hours' THEN 'quiet_hours' ELSE 'frequency_cap' END, count(*)::int
		FROM enrollment_steps st JOIN e ON e.id = st.enrollment_id
		WHERE st.kind = 'send' AND (st.key LIKE '%/quiet_hours' OR st.key ~ '/frequency_cap/[0-9]+$')
		GROUP BY 1, 2, 3`, playbook, from, func(pb, step, reason string, n int) { get(pb, step).Deferred[reason] += n })
}

// countStepReasons runs a report query (after reportScope) whose rows are
// playbook, step, reason and count, and hands each row to add.
func countStepReasons(ctx context.Context, tx pgx.Tx, query, playbook string, from time.Time, add func(playbook, step, reason string, n int)) error {
	rows, err := tx.Query(ctx, reportScope+query, playbook, from)
	if err != nil {
		return err
	}
	var pb, step, reason string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&pb, &step, &reason, &n}, func() error {
		add(pb, step, reason, n)
		return nil
	})
	return err
}

// reportVariants counts treated enrollments per split branch and their
// conversions. Held-out enrollments walk the splits too, but receive no
// marketing, so they would blur the comparison of variants.
func reportVariants(ctx context.Context, tx pgx.Tx, in *report.Input, playbook string, from time.Time) error {
	rows, err := tx.Query(ctx, reportScope+`
		SELECT e.playbook, st.step_id, st.branch, count(DISTINCT e.id)::int,
			count(DISTINCT e.id) FILTER (WHERE e.converted_at IS NOT NULL)::int
		FROM enrollment_steps st JOIN e ON e.id = st.enrollment_id
		WHERE st.kind = 'split' AND NOT e.holdout
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, playbook, from)
	if err != nil {
		return err
	}
	in.Variants, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (report.VariantRow, error) {
		var v report.VariantRow
		err := r.Scan(&v.Playbook, &v.Step, &v.Variant, &v.Enrolled, &v.Converted)
		return v, err
	})
	return err
}

// reportEngagement counts, per playbook, enrollments that sent a message,
// those in which the customer did anything afterwards, and those during
// which the customer complained (view enrollment_engagement, migration
// 00003 as 00009 and 00015 redefined it; the complaint check uses the
// partial index events_complaints of migration 00016).
func reportEngagement(ctx context.Context, tx pgx.Tx, in *report.Input, playbook string, from time.Time) error {
	rows, err := tx.Query(ctx, `
		SELECT playbook, count(*)::int, count(*) FILTER (WHERE messaged)::int,
			count(*) FILTER (WHERE responded)::int, count(*) FILTER (WHERE complained)::int
		FROM enrollment_engagement
		WHERE ($1 = '' OR playbook = $1) AND started_at >= $2
		GROUP BY 1 ORDER BY 1`, playbook, from)
	if err != nil {
		return err
	}
	in.Engagement, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (report.EngagementRow, error) {
		var g report.EngagementRow
		err := r.Scan(&g.Playbook, &g.Enrolled, &g.Messaged, &g.Responded, &g.Complained)
		return g, err
	})
	return err
}
