package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/delivery"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// sender sends through s's outbox with storetest.Delivery's channels, as
// a worker does: the send path's SQL is the store's, the rest delivery's.
func sender(s *store.Store) delivery.Sender {
	return delivery.Sender{Outbox: s, Config: storetest.Delivery()}
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func mustCustomer(t testing.TB, s *store.Store, c rules.Customer) rules.Customer {
	t.Helper()
	if err := s.UpsertCustomer(context.Background(), c); err != nil {
		t.Fatalf("upsert customer: %v", err)
	}
	got, err := s.Customer(context.Background(), c.ID)
	if err != nil {
		t.Fatalf("load customer: %v", err)
	}
	return got
}

func count(t testing.TB, s *store.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func enrollment(id, playbook, customer string) activities.Enrollment {
	return activities.Enrollment{ID: id, WorkflowID: "wf-" + id, Playbook: playbook, Version: "v1", CustomerID: customer}
}

// sendReq is a marketing email of the winback playbook.
func sendReq(e activities.Enrollment, c rules.Customer, key string, now time.Time) activities.SendRequest {
	return activities.SendRequest{
		Enrollment: e, Key: key, StepID: "mail", Channel: "email", Template: "miss_you", Locale: "en",
		Topic: "marketing", Subject: "We miss you, {{ customer.name }}",
		Text:     "Hi {{ customer.name }}, unsubscribe: {{ unsubscribe_url }}",
		HTML:     "<p>Hi {{ customer.name }}</p><a href=\"{{ unsubscribe_url }}\">unsubscribe</a>",
		Customer: c, Now: now,
	}
}

// warmPool opens n connections up front, so that racing goroutines really
// run their transactions at the same time instead of queueing for dials.
func warmPool(t testing.TB, s *store.Store, n int) {
	t.Helper()
	var conns []*pgxpool.Conn
	for i := 0; i < n; i++ {
		c, err := s.Pool().Acquire(context.Background())
		if err != nil {
			t.Fatalf("warm pool: %v", err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
}

// t0Now is a clock stopped at t0.
func t0Now() time.Time { return t0 }
