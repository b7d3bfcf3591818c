package store_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// TestMarkDispatchedProbesThePrimaryKey: once most events are dispatched
// and analyzed, the marker's UPDATE must still find its rows through the
// primary key, not by filtering the partial index of undispatched events
// (whose size the statistics underrate, so each marker would scan every
// event stored since the last vacuum). The first dispatch time is kept.
func TestMarkDispatchedProbesThePrimaryKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	for _, sql := range []string{
		`INSERT INTO customers (id) VALUES ('c1')`,
		`INSERT INTO event_ids (id, customer_id, time, received_at, dispatched_at)
			SELECT 'e' || g, 'c1', now(), now(), now() FROM generate_series(1, 20000) g`,
		`ANALYZE event_ids`,
		`INSERT INTO event_ids (id, customer_id, time) SELECT 'n' || g, 'c1', now() FROM generate_series(1, 2000) g`,
	} {
		if _, err := s.Pool().Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	for _, ids := range [][]string{{"n1"}, {"n1", "n2", "n3"}} {
		var plan []map[string]any
		if err := s.Pool().QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+store.MarkDispatchedSQL, ids).Scan(&plan); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(plan)
		if !strings.Contains(string(b), `"Index Name":"event_ids_pkey"`) {
			t.Errorf("marker of %v: the plan does not probe event_ids_pkey: %s", ids, b)
		}
	}
	if err := s.MarkDispatched(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	var first, again time.Time
	if err := s.Pool().QueryRow(ctx, `SELECT dispatched_at FROM event_ids WHERE id = 'n1'`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if err := s.MarkEventsDispatched(ctx, "n1", "n2"); err != nil {
		t.Fatal(err)
	}
	var marked int
	if err := s.Pool().QueryRow(ctx, `SELECT dispatched_at, (SELECT count(dispatched_at) FROM event_ids WHERE id IN ('n1', 'n2', 'n3'))
		FROM event_ids WHERE id = 'n1'`).Scan(&again, &marked); err != nil {
		t.Fatal(err)
	}
	if !again.Equal(first) || marked != 2 {
		t.Errorf("n1 marked at %v, then %v after a second marker (want kept); %d of n1-n3 marked, want 2", first, again, marked)
	}
}
