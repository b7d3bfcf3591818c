package store_test

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/pushdown"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// oldMetricViews are customer_metrics and customer_profiles as migration
// 00003 defined them (a join of customers with customer_metrics, the
// settings read per row), under other names: the definitions the columns
// and views of migration 00010 must reproduce.
const oldMetricViews = `
CREATE VIEW old_customer_metrics AS
SELECT c.id AS customer_id, c.order_count, greatest(c.order_count - 1, 0) AS repeat_purchases,
       c.lifetime_value AS revenue, c.avg_order_value, c.first_purchase_at, c.last_purchase_at,
       d.days_since_last_purchase, c.purchase_gap_days, g.usual_gap_days,
       round(c.lifetime_value * s.ltv_margin::numeric, 2)::numeric(14, 2) AS lifetime_value,
       (c.order_count > 0 AND d.days_since_last_purchase > s.churn_factor * g.usual_gap_days) AS churn_risk
FROM customers c
CROSS JOIN rapport_metric_settings s
CROSS JOIN LATERAL (
    SELECT CASE WHEN c.last_purchase_at IS NULL THEN -1
                ELSE trunc(extract(epoch FROM now() - c.last_purchase_at) / 86400)::bigint END
           AS days_since_last_purchase) d
CROSS JOIN LATERAL (
    SELECT CASE WHEN c.order_count >= 2 AND c.purchase_gap_days >= 1 THEN c.purchase_gap_days
                ELSE s.churn_default_gap_days END AS usual_gap_days) g;
CREATE VIEW old_customer_profiles AS
SELECT c.id, c.email, c.phone, c.name, c.locale, c.timezone, c.tier, c.stage, c.points,
       m.lifetime_value, c.order_count, c.avg_order_value, c.purchase_gap_days, m.churn_risk,
       c.first_purchase_at, c.last_purchase_at, c.birthday, c.signup_at, c.tags, c.attrs,
       c.created_at, c.updated_at
FROM customers c JOIN old_customer_metrics m ON m.customer_id = c.id;`

// TestProfileMetricsMatchOldViews: over customers built by ingesting
// purchases and refunds (out of order, on the same day, in several
// currencies, refunds beyond the revenue, purchases dated in the future),
// customers with no orders and imported ones, the metric columns kept on
// ingest equal the definitions of docs/metrics.md recomputed from the
// events; customer_metrics and customer_profiles (migration 00010, one
// reading of customers) equal the views of migration 00003 row for row,
// under the default settings and under others; and a scan's candidate
// query computes lifetime value and churn risk as they do, at the scan's
// time.
func TestProfileMetricsMatchOldViews(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	day := 24 * time.Hour
	type ev struct {
		effect   string
		amount   float64
		currency string
		at       time.Time
	}
	// The events of each customer, in the order they arrive.
	history := map[string][]ev{
		"none":        nil,
		"one":         {{activities.Purchase, 49.90, "EUR", now.Add(-200 * day)}},
		"same_day":    {{activities.Purchase, 10, "USD", now.Add(-100 * day)}, {activities.Purchase, 15.5, "USD", now.Add(-100*day + time.Hour)}},
		"regular":     {{activities.Purchase, 20, "EUR", now.Add(-45 * day)}, {activities.Purchase, 30, "EUR", now.Add(-35 * day)}, {activities.Purchase, 25, "EUR", now.Add(-25 * day)}},
		"quiet_edge":  {{activities.Purchase, 20, "EUR", now.Add(-40 * day)}, {activities.Purchase, 30, "EUR", now.Add(-30 * day)}, {activities.Purchase, 25, "EUR", now.Add(-20 * day)}},
		"quiet_180":   {{activities.Purchase, 10, "EUR", now.Add(-180 * day)}},
		"late":        {{activities.Purchase, 99.99, "GBP", now.Add(-10 * day)}, {activities.Purchase, 0.01, "GBP", now.Add(-300 * day)}, {activities.Purchase, 5, "JPY", now.Add(-150 * day)}},
		"currencies":  {{activities.Purchase, 100, "EUR", now.Add(-60 * day)}, {activities.Purchase, 100, "USD", now.Add(-30 * day)}, {activities.Purchase, 12000, "JPY", now.Add(-5 * day)}},
		"refunded":    {{activities.Purchase, 110.01, "EUR", now.Add(-90 * day)}, {activities.Purchase, 50, "EUR", now.Add(-80 * day)}, {activities.Refund, 94.055, "EUR", now.Add(-70 * day)}},
		"over":        {{activities.Purchase, 50, "USD", now.Add(-10 * day)}, {activities.Refund, 80, "USD", now.Add(-9 * day)}, {activities.Purchase, 20, "USD", now.Add(-2 * day)}},
		"refund_only": {{activities.Refund, 30, "EUR", now.Add(-3 * day)}},
		"future":      {{activities.Purchase, 70, "EUR", now.Add(36 * time.Hour)}},
		"views_only":  {{"", 0, "", now.Add(-day)}},
	}
	r := rand.New(rand.NewPCG(2, 10))
	for i := range 40 {
		var evs []ev
		for range r.IntN(7) {
			e := ev{activities.Purchase, float64(r.IntN(50000)) / 100, []string{"EUR", "USD", "GBP"}[r.IntN(3)], now.Add(-time.Duration(r.Int64N(int64(400 * day)))).Truncate(time.Microsecond)}
			if r.IntN(5) == 0 {
				e.effect, e.amount = activities.Refund, float64(r.IntN(20000))/100
			}
			evs = append(evs, e)
		}
		history[fmt.Sprintf("rnd%02d", i)] = evs
	}
	n := 0
	for id, evs := range history {
		if _, err := s.Ingest(ctx, store.Ingestion{CustomerID: id, Profile: &store.ProfileChange{Set: rules.Customer{Email: id + "@example.com"}}}); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			n++
			name := map[string]string{activities.Purchase: "order_completed", activities.Refund: "order_refunded", "": "page_viewed"}[e.effect]
			ev := &rules.Event{ID: fmt.Sprintf("e%d", n), Name: name, Time: e.at, Amount: e.amount, Currency: e.currency}
			if _, err := s.Ingest(ctx, store.Ingestion{CustomerID: id, Event: ev, Effect: e.effect}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Imported: metrics set by an import, not by events.
	for _, c := range []rules.Customer{
		{ID: "imported", LifetimeValue: 500, OrderCount: 4, AvgOrderValue: 125},
		{ID: "imported_dated", LifetimeValue: 80, OrderCount: 2, AvgOrderValue: 40, PurchaseGap: 12.5, LastPurchaseAt: now.Add(-30 * day)},
	} {
		if err := s.UpsertCustomer(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	// The columns kept on ingest are the definitions over the events.
	for id, evs := range history {
		var want struct {
			orders, refunds   int64
			revenue, refunded float64
			first, last       time.Time
		}
		revenue := new(big.Rat) // decimal, as PostgreSQL's numeric
		for _, e := range evs {
			switch e.effect {
			case activities.Purchase:
				want.orders++
				revenue = cents(revenue.Add(revenue, decimal(e.amount)))
				if want.first.IsZero() || e.at.Before(want.first) {
					want.first = e.at
				}
				if e.at.After(want.last) {
					want.last = e.at
				}
			case activities.Refund:
				want.refunds++
				want.refunded += e.amount
				revenue = cents(revenue.Sub(revenue, decimal(e.amount)))
				if revenue.Sign() < 0 {
					revenue.SetInt64(0)
				}
			}
		}
		want.revenue, _ = revenue.Float64()
		var orders, refunds int64
		var stored, avg, gap, refunded float64
		var first, last *time.Time
		err := s.Pool().QueryRow(ctx, `SELECT order_count, lifetime_value::float8, avg_order_value::float8, purchase_gap_days,
			first_purchase_at, last_purchase_at, refund_count, refunded_amount::float8 FROM customers WHERE id = $1`, id).
			Scan(&orders, &stored, &avg, &gap, &first, &last, &refunds, &refunded)
		if err != nil {
			t.Fatal(err)
		}
		wantAvg, wantGap := 0.0, 0.0
		if want.orders > 0 {
			wantAvg, _ = cents(new(big.Rat).Quo(revenue, big.NewRat(want.orders, 1))).Float64()
		}
		if want.orders >= 2 {
			wantGap = want.last.Sub(want.first).Hours() / 24 / float64(want.orders-1)
		}
		if orders != want.orders || stored != want.revenue || avg != wantAvg ||
			math.Abs(gap-wantGap) > 1e-9 || refunds != want.refunds || math.Abs(refunded-math.Round(want.refunded*100)/100) > 0.005 ||
			!sameTime(first, want.first) || !sameTime(last, want.last) {
			t.Errorf("%s: orders %d revenue %v avg %v gap %v first %v last %v refunds %d/%v; want %d %v %v %v %v %v %d/%v",
				id, orders, stored, avg, gap, first, last, refunds, refunded,
				want.orders, want.revenue, wantAvg, wantGap, want.first, want.last, want.refunds, want.refunded)
		}
	}

	conn, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, oldMetricViews); err != nil {
		t.Fatal(err)
	}
	same := func(label string) {
		t.Helper()
		for _, pair := range [][2]string{{"customer_metrics", "old_customer_metrics"}, {"customer_profiles", "old_customer_profiles"}} {
			var diff int
			err := conn.QueryRow(ctx, `SELECT count(*) FROM ((TABLE `+pair[0]+` EXCEPT ALL TABLE `+pair[1]+`)
				UNION ALL (TABLE `+pair[1]+` EXCEPT ALL TABLE `+pair[0]+`)) d`).Scan(&diff)
			if err != nil {
				t.Fatal(err)
			}
			var rows int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+pair[0]).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if diff != 0 || rows != len(history)+2 {
				t.Errorf("%s: %s differs from migration 00003's in %d rows (%d rows, want %d)", label, pair[0], diff, rows, len(history)+2)
			}
		}
		// The scan's query, at the time of a transaction that reads the
		// old view: lifetime value and churn risk as of that time.
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // read only
		var at time.Time
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		old := map[string][2]any{}
		rows, err := tx.Query(ctx, `SELECT id, lifetime_value::float8, churn_risk FROM old_customer_profiles`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			var ltv float64
			var churn bool
			if err := rows.Scan(&id, &ltv, &churn); err != nil {
				t.Fatal(err)
			}
			old[id] = [2]any{ltv, churn}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		page, err := candidatesOn(ctx, tx, store.CandidateQuery{Where: pushdown.Predicate{SQL: "TRUE"}, Now: at, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		churned := 0
		for _, c := range page {
			if o := old[c.ID]; o[0] != c.LifetimeValue || o[1] != c.ChurnRisk {
				t.Errorf("%s: scan reads %s lifetime value %v churn %v, the old view %v %v", label, c.ID, c.LifetimeValue, c.ChurnRisk, o[0], o[1])
			}
			if c.ChurnRisk {
				churned++
			}
		}
		if len(page) != len(old) || churned == 0 || churned == len(page) {
			t.Errorf("%s: the scan read %d customers (%d at risk), the old view %d", label, len(page), churned, len(old))
		}
	}
	same("default settings")
	if _, err := conn.Exec(ctx, `SET rapport.ltv_margin = '0.35'; SET rapport.churn_factor = '1.5'; SET rapport.churn_default_gap_days = '30'`); err != nil {
		t.Fatal(err)
	}
	same("margin 0.35, churn factor 1.5, default gap 30")
}

// candidatesOn runs the scan's candidate query on q's connection: store
// runs it on its pool, and the comparison needs the session's settings.
func candidatesOn(ctx context.Context, tx pgx.Tx, q store.CandidateQuery) ([]rules.Customer, error) {
	args := append(append([]any{}, q.Where.Args...), q.Now, q.AfterID, q.Limit)
	rows, err := tx.Query(ctx, store.CandidateSQL(q.Where), args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (rules.Customer, error) {
		var c rules.Customer
		var last, birthday, signup *time.Time
		err := r.Scan(&c.ID, &c.Email, &c.Phone, &c.Name, &c.Locale, &c.Timezone, &c.Tier, &c.Stage,
			&c.Points, &c.LifetimeValue, &c.OrderCount, &c.AvgOrderValue, &c.PurchaseGap, &c.ChurnRisk,
			&last, &birthday, &signup, &c.Tags, &c.Attrs)
		return c, err
	})
}

// decimal is the amount as the store sends it: the shortest decimal that
// reads back as the float.
func decimal(f float64) *big.Rat {
	r, _ := new(big.Rat).SetString(strconv.FormatFloat(f, 'f', -1, 64))
	return r
}

// cents rounds to cents, halves away from zero, as numeric(14, 2) does.
func cents(r *big.Rat) *big.Rat {
	x := new(big.Rat).Mul(r, big.NewRat(100, 1))
	n := new(big.Int).Quo(x.Num(), x.Denom())
	rem := new(big.Rat).Sub(x, new(big.Rat).SetInt(n))
	if rem.Abs(rem).Cmp(big.NewRat(1, 2)) >= 0 {
		if x.Sign() < 0 {
			n.Sub(n, big.NewInt(1))
		} else {
			n.Add(n, big.NewInt(1))
		}
	}
	return new(big.Rat).SetFrac(n, big.NewInt(100))
}

func sameTime(got *time.Time, want time.Time) bool {
	if got == nil {
		return want.IsZero()
	}
	return got.Sub(want).Abs() < time.Microsecond
}
