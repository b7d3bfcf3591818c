package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

func sampleView() store.CustomerView {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ended := at.Add(2 * time.Hour)
	return store.CustomerView{
		Profile: rules.Customer{ID: "ada", Name: "Ada", Email: "ada@example.com", Locale: "zh", Tier: "gold",
			Points: 120, Tags: []string{"vip", "at_risk"}, Attrs: map[string]any{"industry": "tea", "kids": 2}},
		Metrics: store.CustomerMetrics{OrderCount: 3, RepeatPurchases: 2, Revenue: 240, AvgOrderValue: 80, LifetimeValue: 240,
			LastPurchaseAt: at.AddDate(0, 0, -80), DaysSinceLastPurchase: 80, PurchaseGapDays: 10, UsualGapDays: 10, ChurnRisk: true},
		Refunds:  store.Refunds{Count: 1, Amount: 30},
		Groups:   []store.Group{{ID: "acme", Traits: map[string]any{"name": "Acme", "plan": "enterprise"}, UpdatedAt: at}},
		Consents: []store.Consent{{Channel: "sms", Topic: "marketing", Source: "unsubscribe_link", UpdatedAt: at}},
		Ledger:   []store.LedgerEntry{{At: at, Delta: 120, Reason: "winback", BalanceAfter: 120, EnrollmentID: "run-1"}},
		Contacts: []store.Contact{
			{At: at.Add(time.Hour), Direction: "out", Channel: "email", Template: "winback_offer", Locale: "zh", Status: "sent",
				Recipient: "ada@example.com", Playbook: "winback", Step: "offer"},
			{At: at, Direction: "in", Event: "purchase", Amount: 80, Currency: "EUR", OrderID: "o-9"},
		},
		Enrollments: []store.EnrollmentSummary{
			{ID: "0b9d4d5e-8a67-4a5b-9a57-3c1b4f3b2d11", WorkflowID: "rapport/winback/ada", Playbook: "winback", Version: "v7",
				Status: "converted", Holdout: true, StartedAt: at, EndedAt: &ended},
		},
	}
}

func TestWriteCustomer(t *testing.T) {
	var buf bytes.Buffer
	if err := writeCustomer(&buf, sampleView(), temporalLinks{namespace: "default"}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"Customer ada — Ada",
		"  tags:      vip, at_risk",
		`  attrs:     industry="tea" kids=2`,
		"  orders:          3 (2 repeat)",
		"  last purchase:   2025-12-12 (80 days ago)",
		"  churn risk:      yes",
		"  refunds:         1 (30.00 refunded, already off the revenue)",
		"Groups (accounts)\n  GROUP  TRAITS                         UPDATED\n  acme   name=\"Acme\" plan=\"enterprise\"  2026-03-02 09:00",
		"  sms      marketing  no       unsubscribe_link  2026-03-02 09:00",
		"Points: balance 120",
		"Coupons\n  (none)",
		"  2026-03-02 10:00  out  email winback_offer (zh) → ada@example.com  sent     winback/offer",
		"  2026-03-02 09:00  in   purchase 80.00 EUR order o-9                -        -",
		"converted [holdout]",
		"http://localhost:8233/namespaces/default/workflows/rapport%2Fwinback%2Fada/0b9d4d5e-8a67-4a5b-9a57-3c1b4f3b2d11/history",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteCustomerJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := writeCustomerJSON(&buf, store.CustomerExport{CustomerView: sampleView()}, temporalLinks{base: "https://t.example.com", namespace: "crm"}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Profile     map[string]any   `json:"profile"`
		Metrics     map[string]any   `json:"metrics"`
		Refunds     map[string]any   `json:"refunds"`
		Groups      []map[string]any `json:"groups"`
		Contacts    []map[string]any `json:"contact_log"`
		Enrollments []map[string]any `json:"enrollments"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if got.Profile["id"] != "ada" || got.Metrics["churn_risk"] != true || len(got.Contacts) != 2 ||
		got.Refunds["count"] != 1.0 || got.Refunds["amount"] != 30.0 || len(got.Groups) != 1 || got.Groups[0]["id"] != "acme" {
		t.Errorf("json = %s", buf.String())
	}
	want := "https://t.example.com/namespaces/crm/workflows/rapport%2Fwinback%2Fada/0b9d4d5e-8a67-4a5b-9a57-3c1b4f3b2d11/history"
	if len(got.Enrollments) != 1 || got.Enrollments[0]["temporal_url"] != want || got.Enrollments[0]["playbook"] != "winback" {
		t.Errorf("enrollments = %v, want temporal_url %s", got.Enrollments, want)
	}
}
