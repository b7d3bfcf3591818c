package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// TestAnonymousEventRacingItsIdentifyReachesTheCustomer: a visitor's
// event arrives while an identify is tying the visitor to a customer
// (Segment's classic library sends its first call alone, at once, and the
// rest in a later batch; CI once lost a Product Viewed so). The identify's
// transaction is played here as tieAnonymous runs it — the visitor's row
// locked and tied, the visitor's events moved — and held open until the
// event's Ingest waits for it. The event must end up in the customer's
// history, not among the events of a visitor already tied, where nothing
// would ever move it.
func TestAnonymousEventRacingItsIdentifyReachesTheCustomer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, tie := tieInFlight(t)
	if _, err := tie.Exec(ctx, `DELETE FROM anonymous_events WHERE anonymous_id = 'a1'`); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := s.Ingest(ctx, store.Ingestion{AnonymousID: "a1", Event: &rules.Event{ID: "pv-1", Name: "product_viewed"}})
		done <- err
	}()
	waitForLockWait(t, s, done) // commit the tie only once the event waits for it
	if err := tie.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	var stranded, owned int
	err := s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM anonymous_events WHERE anonymous_id = 'a1'),
		(SELECT count(*) FROM events WHERE customer_id = 'u1' AND id = 'pv-1')`).Scan(&stranded, &owned)
	if err != nil {
		t.Fatal(err)
	}
	if stranded != 0 || owned != 1 {
		t.Errorf("%d events left with visitor a1, tied to u1; %d in u1's history, want the event there", stranded, owned)
	}
}

// TestAnonymousPurchaseAfterATieDoesNotDeadlock: an anonymous purchase
// that waited for a tie of its visitor must not go on to lock the
// customer's row while holding the visitor's: an identify holds the
// customer's row and then asks for the visitor's (applyProfile, then
// tieAnonymous), and the two would deadlock. The identify is played here
// by hand as it locks: the customer's row (an UPDATE of it, which
// the tie's key share lets through), then the visitor's.
func TestAnonymousPurchaseAfterATieDoesNotDeadlock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, tie := tieInFlight(t)
	done := make(chan error, 1)
	go func() {
		_, err := s.Ingest(ctx, store.Ingestion{AnonymousID: "a1", Effect: activities.Purchase,
			Event: &rules.Event{ID: "o-1", Name: "order_completed", Amount: 30}})
		done <- err
	}()
	waitForLockWait(t, s, done)

	identify, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer identify.Rollback(ctx)
	if _, err := identify.Exec(ctx, `SELECT 1 FROM customers WHERE id = 'u1' FOR NO KEY UPDATE`); err != nil {
		t.Fatal(err)
	}
	if err := tie.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitForLockWait(t, s, done) // the purchase, on the visitor's row or the customer's
	if _, err := identify.Exec(ctx, `UPDATE anonymous_ids SET traits = traits WHERE anonymous_id = 'a1'`); err != nil {
		t.Fatalf("the identify's turn on the visitor's row: %v", err)
	}
	if err := identify.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the purchase: %v", err)
	}
	var orders int
	if err := s.Pool().QueryRow(ctx, `SELECT order_count FROM customers WHERE id = 'u1'`).Scan(&orders); err != nil {
		t.Fatal(err)
	}
	if orders != 1 {
		t.Errorf("u1 has %d orders, want the visitor's purchase counted", orders)
	}
}

// tieInFlight stores visitor a1 (a page) and customer u1, and opens a
// transaction that ties a1 to u1 as tieAnonymous does first (the
// visitor's row locked and tied), left open for the test; it is rolled
// back at the end unless the test commits it.
func tieInFlight(t *testing.T) (*store.Store, pgx.Tx) {
	t.Helper()
	ctx := context.Background()
	s := storetest.New(t)
	if _, err := s.Ingest(ctx, store.Ingestion{AnonymousID: "a1", Event: &rules.Event{ID: "page-1", Name: "page"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest(ctx, store.Ingestion{CustomerID: "u1", Profile: &store.ProfileChange{Set: rules.Customer{Email: "u1@example.com"}}}); err != nil {
		t.Fatal(err)
	}
	tie, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tie.Rollback(context.Background()) })
	if _, err := tie.Exec(ctx, `UPDATE anonymous_ids SET customer_id = 'u1', merged_at = now() WHERE anonymous_id = 'a1'`); err != nil {
		t.Fatal(err)
	}
	return s, tie
}

// waitForLockWait returns once a session of the test's database waits for
// a lock; it fails the test if done reports first.
func waitForLockWait(t *testing.T, s *store.Store, done chan error) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var waiting int
		if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("the call finished (err %v) without waiting for a lock", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no session waited for a lock within 10s")
		}
	}
}
