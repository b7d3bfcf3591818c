package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// buy records purchases of customer id, each daysAgo days (fractional)
// before now, for amount.
func buy(t *testing.T, s *store.Store, id string, amount float64, daysAgo ...float64) {
	t.Helper()
	now := time.Now()
	for i, d := range daysAgo {
		ev := rules.Event{ID: fmt.Sprintf("%s-p%d", id, i), Name: "purchase", Amount: amount,
			Time: now.Add(-time.Duration(d * float64(24*time.Hour)))}
		if _, err := s.InsertEvent(context.Background(), id, ev); err != nil {
			t.Fatalf("purchase: %v", err)
		}
	}
}

// TestMetricEdgeCases checks each definition of docs/metrics.md on the
// edge cases it names, with the default settings (margin 1, factor 2,
// default gap 90 days).
func TestMetricEdgeCases(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	for _, id := range []string{"none", "one-recent", "one-old", "same-day", "same-day-old", "regular", "regular-active"} {
		mustCustomer(t, s, rules.Customer{ID: id})
	}
	buy(t, s, "one-recent", 40, 100)      // 100 < 2 × 90: not at risk
	buy(t, s, "one-old", 40, 200)         // 200 > 180: at risk
	buy(t, s, "same-day", 30, 10.2, 10.1) // gap 0.1 d: no rhythm, default gap
	buy(t, s, "same-day-old", 30, 190.2, 190.1)
	buy(t, s, "regular", 50, 100.5, 90.5, 80.5) // gap 10 d, quiet 80 d > 20
	buy(t, s, "regular-active", 20, 30.5, 20.5, 10.5)

	for _, tc := range []struct {
		id                            string
		orders, repeat, days          int64
		revenue, aov, gap, usual, ltv float64
		churn                         bool
	}{
		{"none", 0, 0, -1, 0, 0, 0, 90, 0, false},
		{"one-recent", 1, 0, 100, 40, 40, 0, 90, 40, false},
		{"one-old", 1, 0, 200, 40, 40, 0, 90, 40, true},
		{"same-day", 2, 1, 10, 60, 30, 0.1, 90, 60, false},
		{"same-day-old", 2, 1, 190, 60, 30, 0.1, 90, 60, true},
		{"regular", 3, 2, 80, 150, 50, 10, 10, 150, true},
		{"regular-active", 3, 2, 10, 60, 20, 10, 10, 60, false},
	} {
		m, err := s.Metrics(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if m.OrderCount != tc.orders || m.RepeatPurchases != tc.repeat || m.DaysSinceLastPurchase != tc.days ||
			m.Revenue != tc.revenue || m.AvgOrderValue != tc.aov || !approx(m.PurchaseGapDays, tc.gap) ||
			!approx(m.UsualGapDays, tc.usual) || m.LifetimeValue != tc.ltv || m.ChurnRisk != tc.churn {
			t.Errorf("%s: metrics = %+v, want orders %d repeat %d days %d revenue %v aov %v gap %v usual %v ltv %v churn %v",
				tc.id, m, tc.orders, tc.repeat, tc.days, tc.revenue, tc.aov, tc.gap, tc.usual, tc.ltv, tc.churn)
		}
	}
	// Rules see the computed definitions: the journey's LoadCustomer and
	// the scans read the same view as the metrics.
	for _, id := range []string{"one-old", "regular", "regular-active"} {
		c, err := s.LoadCustomer(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := s.Metrics(ctx, id)
		if c.ChurnRisk != m.ChurnRisk || c.LifetimeValue != m.LifetimeValue {
			t.Errorf("%s: LoadCustomer churn %v ltv %v, metrics churn %v ltv %v", id, c.ChurnRisk, c.LifetimeValue, m.ChurnRisk, m.LifetimeValue)
		}
	}
	if _, err := s.Metrics(ctx, "nobody"); err == nil || !strings.Contains(err.Error(), `unknown customer "nobody"`) {
		t.Errorf("metrics of a missing customer: err = %v", err)
	}
}

func approx(a, b float64) bool { return a-b < 1e-6 && b-a < 1e-6 }

// The settings change the definitions per session; bad values fail with
// the setting's name.
func TestMetricSettings(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	mustCustomer(t, s, rules.Customer{ID: "c"})
	buy(t, s, "c", 100, 50) // one purchase 50 days ago: not at risk by default (50 < 180)
	conn, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	defer conn.Exec(ctx, `RESET ALL`)
	if _, err := conn.Exec(ctx, `SET rapport.ltv_margin = '0.25'; SET rapport.churn_factor = '1.5'; SET rapport.churn_default_gap_days = '30'`); err != nil {
		t.Fatal(err)
	}
	var ltv float64
	var churn bool
	if err := conn.QueryRow(ctx, `SELECT lifetime_value::float8, churn_risk FROM customer_metrics WHERE customer_id = 'c'`).Scan(&ltv, &churn); err != nil {
		t.Fatal(err)
	}
	if ltv != 25 || !churn { // 100 × 0.25; 50 > 1.5 × 30
		t.Errorf("with settings: ltv %v churn %v, want 25 true", ltv, churn)
	}
	for setting, want := range map[string]string{
		"SET rapport.churn_factor = 'two'": `setting rapport.churn_factor: 'two' is not a number`,
		"SET rapport.churn_factor = '0'":   `setting rapport.churn_factor: 0 is out of range`,
		"SET rapport.ltv_margin = '-1'":    `setting rapport.ltv_margin: -1 is out of range`,
	} {
		if _, err := conn.Exec(ctx, `RESET ALL; `+setting); err != nil {
			t.Fatal(err)
		}
		err := conn.QueryRow(ctx, `SELECT lifetime_value::float8, churn_risk FROM customer_metrics WHERE customer_id = 'c'`).Scan(&ltv, &churn)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", setting, err, want)
		}
	}
}

// TestCustomerView reads a seeded customer back in full.
func TestCustomerView(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	mustCustomer(t, s, rules.Customer{ID: "ada", Email: "ada@example.com", Name: "Ada", Locale: "zh", Tier: "gold"})
	buy(t, s, "ada", 80, 100.5, 90.5, 80.5) // regular buyer gone quiet: churn risk
	e := activities.Enrollment{ID: "run-1", WorkflowID: "rapport/winback/ada", Playbook: "winback", Version: "v7", CustomerID: "ada"}
	if _, err := s.RecordStart(ctx, activities.EntryRequest{Enrollment: e, Reentry: "never", At: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetConsent(ctx, "ada", "sms", "marketing", false, "unsubscribe_link"); err != nil {
		t.Fatal(err)
	}
	if _, err := sender(s).SendMessage(ctx, sendReq(e, rules.Customer{ID: "ada"}, "run-1/ask_why/1", time.Now().Add(-30*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdjustPoints(ctx, activities.PointsRequest{Enrollment: e, Key: "run-1/reward/1", CustomerID: "ada", Delta: 120, Reason: "winback"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.IssueCoupon(ctx, activities.CouponRequest{Enrollment: e, Key: "run-1/offer/1", CustomerID: "ada", Kind: "percent", Value: 20, ExpiresAt: time.Now().Add(14 * 24 * time.Hour), Prefix: "WB"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTask(ctx, activities.TaskRequest{Enrollment: e, Key: "run-1/call/1", CustomerID: "ada", Assignee: "relationship_manager", Title: "Call Ada", Priority: "high", DueAt: time.Now().Add(48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}

	// Before the refund and the groups: none of either.
	v, err := s.CustomerView(ctx, "ada", 0)
	if err != nil {
		t.Fatal(err)
	}
	if v.Refunds != (store.Refunds{}) || len(v.Groups) != 0 {
		t.Errorf("before any refund or group: refunds %+v, groups %+v", v.Refunds, v.Groups)
	}
	// An Order Refunded of 30 (as the event API stores it) and two
	// accounts, one of them sent twice: its traits merge.
	refund := rules.Event{ID: "ada-r1", Name: "order_refunded", Amount: 30, Time: time.Now().Add(-2 * time.Hour)}
	if _, err := s.Ingest(ctx, store.Ingestion{CustomerID: "ada", Event: &refund, Effect: activities.Refund}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []store.Ingestion{
		{CustomerID: "ada", GroupID: "acme", GroupTraits: map[string]any{"name": "Acme"}},
		{CustomerID: "ada", GroupID: "tea-club", GroupTraits: map[string]any{"plan": "basic"}},
		{CustomerID: "ada", GroupID: "acme", GroupTraits: map[string]any{"plan": "enterprise"}},
	} {
		if _, err := s.Ingest(ctx, g); err != nil {
			t.Fatal(err)
		}
	}

	v, err = s.CustomerView(ctx, "ada", 0)
	if err != nil {
		t.Fatal(err)
	}
	if v.Profile.Name != "Ada" || v.Profile.Points != 120 || !v.Profile.ChurnRisk || v.Profile.LifetimeValue != 210 {
		t.Errorf("profile = %+v, want Ada, 120 points, churn risk, ltv 240 less the refund of 30", v.Profile)
	}
	if v.Refunds.Count != 1 || v.Refunds.Amount != 30 {
		t.Errorf("refunds = %+v, want 1 of 30", v.Refunds)
	}
	if len(v.Groups) != 2 || v.Groups[0].ID != "acme" || v.Groups[0].Traits["name"] != "Acme" || v.Groups[0].Traits["plan"] != "enterprise" ||
		v.Groups[1].ID != "tea-club" || v.Groups[0].UpdatedAt.IsZero() {
		t.Errorf("groups = %+v, want acme (Acme, enterprise) and tea-club", v.Groups)
	}
	if v.Metrics.OrderCount != 3 || v.Metrics.RepeatPurchases != 2 || v.Metrics.DaysSinceLastPurchase != 80 || !v.Metrics.ChurnRisk {
		t.Errorf("metrics = %+v", v.Metrics)
	}
	if len(v.Consents) != 1 || v.Consents[0].Channel != "sms" || v.Consents[0].Granted || v.Consents[0].Source != "unsubscribe_link" {
		t.Errorf("consents = %+v", v.Consents)
	}
	if len(v.Ledger) != 1 || v.Ledger[0].Delta != 120 || v.Ledger[0].BalanceAfter != 120 || v.Ledger[0].EnrollmentID != "run-1" {
		t.Errorf("ledger = %+v", v.Ledger)
	}
	if len(v.Coupons) != 1 || !strings.HasPrefix(v.Coupons[0].Code, "WB") || v.Coupons[0].Value != 20 {
		t.Errorf("coupons = %+v", v.Coupons)
	}
	if len(v.OpenTasks) != 1 || v.OpenTasks[0].Title != "Call Ada" || v.OpenTasks[0].Priority != "high" {
		t.Errorf("open tasks = %+v", v.OpenTasks)
	}
	// Contact log, newest first: the message out, the refund, then the
	// three purchases in.
	if len(v.Contacts) != 5 {
		t.Fatalf("contact log = %+v, want 5 lines", v.Contacts)
	}
	out := v.Contacts[0]
	if out.Direction != "out" || out.Channel != "email" || out.Template != "miss_you" || out.Status != "sent" ||
		out.Recipient != "ada@example.com" || out.Playbook != "winback" || out.Step != "mail" {
		t.Errorf("message line = %+v", out)
	}
	if in := v.Contacts[1]; in.Direction != "in" || in.Event != "order_refunded" || in.Amount != 30 {
		t.Errorf("refund line = %+v", in)
	}
	for _, in := range v.Contacts[2:] {
		if in.Direction != "in" || in.Event != "purchase" || in.Amount != 80 {
			t.Errorf("event line = %+v", in)
		}
	}
	if len(v.Enrollments) != 1 || v.Enrollments[0].WorkflowID != "rapport/winback/ada" || v.Enrollments[0].Status != "active" || v.Enrollments[0].Version != "v7" {
		t.Errorf("enrollments = %+v", v.Enrollments)
	}
	// A limit of 2 keeps the newest two contact lines.
	if v, err := s.CustomerView(ctx, "ada", 2); err != nil || len(v.Contacts) != 2 || v.Contacts[0].Direction != "out" {
		t.Errorf("limited view: %v, %+v", err, v.Contacts)
	}
	if _, err := s.CustomerView(ctx, "nobody", 0); err == nil || !strings.Contains(err.Error(), `unknown customer "nobody"`) {
		t.Errorf("view of a missing customer: err = %v", err)
	}
}
