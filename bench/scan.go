package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/scan"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/workflows"
)

// lapsedSrc is the winback segment rule; matching customers wait an hour.
const lapsedSrc = `playbook: bench_lapsed
stage: reactivate
trigger:
  every: 24h
  where: customer.order_count > 0 && customer.days_since_last_purchase > max(90, 2 * customer.purchase_gap_days)
steps:
  - wait: 1h
`

// benchScan is part b.
func benchScan(ctx context.Context, c config) error {
	fmt.Printf("\n== b: segment scan over %d customers (page size %d)\n", c.customers, scan.DefaultPageSize)
	st, cleanup, err := freshStore(ctx, c, "b")
	if err != nil {
		return err
	}
	defer cleanup()
	matching, err := seedCustomers(ctx, st, c.customers, c.matchEvery)
	if err != nil {
		return err
	}
	raw, err := rawSelect(ctx, st)
	if err != nil {
		return err
	}
	keyset, err := keysetSelect(ctx, st)
	if err != nil {
		return err
	}

	codec := benchCodec(c, st)
	tc, err := dial(ctx, c, codec)
	if err != nil {
		return err
	}
	defer tc.Close()
	direct, err := directScan(ctx, st, c.customers)
	if err != nil {
		return err
	}
	stack, err := devenv.StartStack(ctx, devenv.StackOptions{Client: tc, Store: st, APIKey: benchAPIKey, Delivery: benchDelivery(), Codec: codec})
	if err != nil {
		return err
	}
	defer stack.Stop()
	plan, err := engine.Compile("bench_lapsed.yaml", []byte(lapsedSrc))
	if err != nil {
		return err
	}
	if _, err := stack.Deploy(ctx, plan); err != nil {
		return err
	}
	start := time.Now()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("bench-scan-%d", start.UnixNano()), TaskQueue: workflows.TaskQueue},
		scan.WorkflowName, scan.Input{Playbook: plan.Name, Partitions: c.partitions})
	if err != nil {
		return err
	}
	var res scan.Result
	if err := run.Get(ctx, &res); err != nil {
		return err
	}
	took := time.Since(start)
	// Let the started journeys record their start before the worker stops,
	// so none is left for a later part's worker.
	if err := waitCount(ctx, st, `SELECT count(*) FROM enrollments`, res.Started, 5*time.Minute); err != nil {
		return err
	}
	// Per customer of the base: the scan reads only the candidates its
	// compiled where rule selects (res.Scanned), but it covers them all.
	rate := float64(c.customers) / took.Seconds()
	fmt.Printf("direct:  the scan activity's code in a loop, no Temporal, starting nobody: %s → %.0f customers/s\n", direct.Round(time.Millisecond), float64(c.customers)/direct.Seconds())
	fmt.Printf("raw:     SELECT of all %d rows (streamed, decoded) in %s → %.0f rows/s\n", c.customers, raw.Round(time.Millisecond), float64(c.customers)/raw.Seconds())
	fmt.Printf("keyset:  SELECT in keyset pages of %d (decoded) in %s → %.0f rows/s\n", scan.DefaultPageSize, keyset.Round(time.Millisecond), float64(c.customers)/keyset.Seconds())
	fmt.Printf("rapport: scan workflow over %d customers read %d candidates (%d partitions, %d pages, %d matched of %d seeded to match, %d enrollments started) in %s → %.0f customers/s\n",
		c.customers, res.Scanned, max(res.Partitions, 1), res.Pages, res.Matched, matching, res.Started, took.Round(time.Millisecond), rate)
	fmt.Printf("ratio:   %.2f vs the raw SELECT, %.2f vs the keyset pages (target ≥ 0.5)\n", rate/(float64(c.customers)/raw.Seconds()), rate/(float64(c.customers)/keyset.Seconds()))
	return nil
}

// seedCustomers copies n customers in: one in every lapsed (a match; 0:
// none), the rest bought within the last 60 days. It returns how many
// should match.
func seedCustomers(ctx context.Context, st *store.Store, n, every int) (int, error) {
	now := time.Now().UTC()
	matching := 0
	rows := make([][]any, n)
	for i := range rows {
		last := now.AddDate(0, 0, -(i % 60))
		if every > 0 && i%every == 7%every {
			last = now.AddDate(0, 0, -200)
			matching++
		}
		rows[i] = []any{fmt.Sprintf("%s-b%07d", runTag, i), fmt.Sprintf("b%07d@example.com", i), "Bench Customer", []string{"en", "zh"}[i%2],
			[]string{"Asia/Shanghai", "Europe/London", "America/New_York"}[i%3], int64(1 + i%9), last, float64(20 + i%40), float64(100 + i%900)}
	}
	start := time.Now()
	_, err := st.Pool().CopyFrom(ctx, pgx.Identifier{"customers"},
		[]string{"id", "email", "name", "locale", "timezone", "order_count", "last_purchase_at", "purchase_gap_days", "lifetime_value"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return 0, fmt.Errorf("seed customers: %w", err)
	}
	if _, err := st.Pool().Exec(ctx, `ANALYZE customers`); err != nil {
		return 0, err
	}
	fmt.Printf("seeded:  %d customers in %s\n", n, time.Since(start).Round(time.Millisecond))
	return matching, nil
}

// rawSelect reads every customer in one streamed query, decoding each row.
func rawSelect(ctx context.Context, st *store.Store) (time.Duration, error) {
	start := time.Now()
	rows, err := st.Pool().Query(ctx, `SELECT id, email, phone, name, locale, timezone, tier, stage, points,
		lifetime_value, order_count, avg_order_value, purchase_gap_days, churn_risk,
		last_purchase_at, birthday, signup_at, tags, attrs FROM customers`)
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
	return time.Since(start), rows.Err()
}

// keysetSelect reads every customer with the scan's own page query.
func keysetSelect(ctx context.Context, st *store.Store) (time.Duration, error) {
	start := time.Now()
	after := ""
	for {
		page, err := st.CustomersAfter(ctx, after, scan.DefaultPageSize, store.Partition{})
		if err != nil {
			return 0, err
		}
		if len(page) == 0 {
			return time.Since(start), nil
		}
		after = page[len(page)-1].ID
	}
}

// directScan runs the scan's activity code over every customer without
// Temporal, with the same rule and a starter that starts nothing: the
// cost of reading, evaluating and the re-entry pre-filter alone.
func directScan(ctx context.Context, st *store.Store, n int) (time.Duration, error) {
	src := strings.Replace(lapsedSrc, "bench_lapsed", "bench_direct", 1)
	p, err := engine.Compile("bench_direct.yaml", []byte(src))
	if err != nil {
		return 0, err
	}
	if _, err := st.DeployPlaybook(ctx, p.Name, p.Version, p.Source); err != nil {
		return 0, err
	}
	a := &scan.Activities{Store: st, Start: func(context.Context, *engine.Plan, string, rules.Event) (bool, error) { return true, nil }}
	start := time.Now()
	req := scan.PageRequest{Playbook: p.Name, Now: start, Limit: scan.DefaultPageSize, Pages: scan.PagesPerCall}
	for {
		res, err := a.ScanPage(ctx, req)
		if err != nil {
			return 0, err
		}
		if res.Done {
			return time.Since(start), nil
		}
		req.AfterID = res.NextID
	}
}
