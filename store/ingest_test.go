package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// TestIngestRefundsNeverTakeRevenueBelowZero: a refund larger than what
// was bought (a refund of an order made before Rapport saw the customer)
// leaves revenue at 0, not negative, and is still counted.
func TestIngestRefundsNeverTakeRevenueBelowZero(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, in := range []store.Ingestion{
		{CustomerID: "c1", Event: &rules.Event{ID: "o1", Name: "order_completed", Amount: 50, Time: at}, Effect: activities.Purchase},
		{CustomerID: "c1", Event: &rules.Event{ID: "r1", Name: "order_refunded", Amount: 80, Time: at}, Effect: activities.Refund},
		{CustomerID: "c1", Event: &rules.Event{ID: "r1", Name: "order_refunded", Amount: 80, Time: at}, Effect: activities.Refund}, // retried
	} {
		if _, err := s.Ingest(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	var orders, refunds int
	var ltv, aov, refunded float64
	err := s.Pool().QueryRow(ctx, `SELECT order_count, lifetime_value::float8, avg_order_value::float8, refund_count, refunded_amount::float8
		FROM customers WHERE id = 'c1'`).Scan(&orders, &ltv, &aov, &refunds, &refunded)
	if err != nil {
		t.Fatal(err)
	}
	if orders != 1 || ltv != 0 || aov != 0 || refunds != 1 || refunded != 80 {
		t.Errorf("orders %d ltv %v aov %v refunds %d refunded %v; want 1, 0, 0, 1, 80", orders, ltv, aov, refunds, refunded)
	}
}

// TestIngestReusedMessageIDWritesNothing: the refused call leaves neither
// a customer nor a tie to an anonymous id behind.
func TestIngestReusedMessageIDWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	if _, err := s.Ingest(ctx, store.Ingestion{AnonymousID: "a1", Event: &rules.Event{ID: "m1", Name: "page"}}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Ingest(ctx, store.Ingestion{CustomerID: "c2", AnonymousID: "a2",
		Profile: &store.ProfileChange{Set: rules.Customer{Email: "c2@example.com"}}, Event: &rules.Event{ID: "m1", Name: "page"}})
	if !errors.Is(err, store.ErrMessageIDReused) {
		t.Fatalf("err %v, want ErrMessageIDReused", err)
	}
	var rows int
	if err := s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM anonymous_ids WHERE anonymous_id = 'a2')`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Errorf("%d rows left by a refused call", rows)
	}
}

// TestIngestReadsRunningVersions: with ReadRunning, Ingest returns the
// customer's running versions as RunningVersions lists them, an empty
// list when there are none, and nil without it; a refused call returns
// nothing.
func TestIngestReadsRunningVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	res, err := s.Ingest(ctx, store.Ingestion{CustomerID: "c1", Event: &rules.Event{ID: "p1", Name: "page", Time: at}, ReadRunning: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Running == nil || len(res.Running) != 0 || !res.Inserted {
		t.Fatalf("first call: running %#v inserted %v, want an empty list and inserted", res.Running, res.Inserted)
	}
	_, err = s.Pool().Exec(ctx, `INSERT INTO enrollments (id, workflow_id, playbook, version, customer_id, status, started_at) VALUES
		('n1', 'rapport/onboarding/c1', 'onboarding', 'v2', 'c1', 'active', now()),
		('n2', 'rapport/winback/c1', 'winback', 'v1', 'c1', 'completed', now())`)
	if err != nil {
		t.Fatal(err)
	}
	res, err = s.Ingest(ctx, store.Ingestion{CustomerID: "c1", Event: &rules.Event{ID: "p2", Name: "page", Time: at}, ReadRunning: true})
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.RunningVersions(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Running) != 1 || res.Running[0] != (store.RunningVersion{Playbook: "onboarding", Version: "v2"}) || len(want) != 1 || want[0] != res.Running[0] {
		t.Errorf("running %v, RunningVersions %v; want onboarding v2 in both", res.Running, want)
	}
	if res, err = s.Ingest(ctx, store.Ingestion{CustomerID: "c1", Event: &rules.Event{ID: "p3", Name: "page", Time: at}}); err != nil || res.Running != nil {
		t.Errorf("without ReadRunning: running %v (err %v), want nil", res.Running, err)
	}
	if res, err = s.Ingest(ctx, store.Ingestion{CustomerID: "c2", Event: &rules.Event{ID: "p1", Name: "page", Time: at}, ReadRunning: true}); !errors.Is(err, store.ErrMessageIDReused) || res.Running != nil {
		t.Errorf("refused call: running %v, err %v", res.Running, err)
	}
}

// TestIngestSaysWhetherARepeatedEventWasDispatched: a repeated call's
// result says whether the stored event's dispatch was recorded, so the
// caller dispatches an event whose first call failed after storing it,
// and does nothing for one already dispatched.
func TestIngestSaysWhetherARepeatedEventWasDispatched(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	call := store.Ingestion{CustomerID: "c1", Event: &rules.Event{ID: "t1", Name: "signup", Time: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}}
	steps := []struct {
		mark                 bool // MarkDispatched before the call
		inserted, dispatched bool
	}{
		{false, true, false},  // first call
		{false, false, false}, // repeated before its dispatch was recorded
		{true, false, true},   // repeated after
	}
	for i, step := range steps {
		if step.mark {
			if err := s.MarkDispatched(ctx, "t1"); err != nil {
				t.Fatal(err)
			}
		}
		res, err := s.Ingest(ctx, call)
		if err != nil {
			t.Fatal(err)
		}
		if res.Inserted != step.inserted || res.Dispatched != step.dispatched {
			t.Errorf("call %d: inserted %v dispatched %v, want %v and %v", i+1, res.Inserted, res.Dispatched, step.inserted, step.dispatched)
		}
	}
}
