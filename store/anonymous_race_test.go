package store_test

import (
	"context"
	"testing"
	"time"

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
	defer tie.Rollback(ctx)
	if _, err := tie.Exec(ctx, `UPDATE anonymous_ids SET customer_id = 'u1', merged_at = now() WHERE anonymous_id = 'a1'`); err != nil {
		t.Fatal(err)
	}
	if _, err := tie.Exec(ctx, `DELETE FROM anonymous_events WHERE anonymous_id = 'a1'`); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := s.Ingest(ctx, store.Ingestion{AnonymousID: "a1", Event: &rules.Event{ID: "pv-1", Name: "product_viewed"}})
		done <- err
	}()
	// Commit the tie only once the event's transaction waits for it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var waiting int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the event's Ingest finished (err %v) without waiting for the identify's transaction", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the event's Ingest never waited for the identify's transaction")
		}
	}
	if err := tie.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	var stranded, owned int
	err = s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM anonymous_events WHERE anonymous_id = 'a1'),
		(SELECT count(*) FROM events WHERE customer_id = 'u1' AND id = 'pv-1')`).Scan(&stranded, &owned)
	if err != nil {
		t.Fatal(err)
	}
	if stranded != 0 || owned != 1 {
		t.Errorf("%d events left with visitor a1, tied to u1; %d in u1's history, want the event there", stranded, owned)
	}
}
