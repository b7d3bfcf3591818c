package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// partitionOf names the partition each of the customer's events is in.
func partitionsOf(t *testing.T, s *store.Store, customerID string) map[string]string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(),
		`SELECT id, tableoid::regclass::text FROM events WHERE customer_id = $1`, customerID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var id, part string
	if _, err := pgx.ForEachRow(rows, []any{&id, &part}, func() error { out[id] = part; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// Every event lands in the partition of its UTC month, created by the
// first write of the month, however many writers race to create it; an
// id stays unique across months.
func TestEventsLandInTheirMonth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	times := map[string]time.Time{
		"old":        time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
		"month_end":  time.Date(2026, 3, 31, 23, 30, 0, 0, time.UTC),
		"east":       time.Date(2026, 4, 1, 1, 30, 0, 0, time.FixedZone("+08", 8*3600)), // 31 March 17:30 UTC
		"month_open": time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
		"future":     time.Date(2031, 7, 15, 12, 0, 0, 0, time.UTC),
	}
	want := map[string]string{"old": "events_1999_12", "month_end": "events_2026_03", "east": "events_2026_03",
		"month_open": "events_2026_04", "future": "events_2031_07"}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 8 { // eight writers per event: the same month created concurrently
		for id, at := range times {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ev := &rules.Event{ID: id, Name: "page_viewed", Time: at}
				if _, err := s.Ingest(ctx, store.Ingestion{CustomerID: "c1", Event: ev}); err != nil {
					errs <- fmt.Errorf("writer %d, %s: %w", i, id, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := partitionsOf(t, s, "c1")
	for id, part := range want {
		if got[id] != part {
			t.Errorf("event %s (%s) is in %q, want %s", id, times[id].UTC(), got[id], part)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d events stored, want %d (each once): %v", len(got), len(want), got)
	}
	// A retry of a call without a timestamp gets a new time, maybe in
	// another month: the id still counts once.
	res, err := s.Ingest(ctx, store.Ingestion{CustomerID: "c1", Event: &rules.Event{ID: "old", Name: "page_viewed", Time: time.Now()}})
	if err != nil || res.Inserted {
		t.Errorf("same id in another month: %+v %v, want not inserted", res, err)
	}
}

// A month this process believes exists but that is gone (retention
// dropped it, or the transaction that created it rolled back) is created
// again, and the event is stored, not refused as bad input.
func TestDroppedMonthIsCreatedAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	at := time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC)
	if _, err := s.InsertEvent(ctx, "c1", rules.Event{ID: "a", Name: "page_viewed", Time: at}); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{`ALTER TABLE events DETACH PARTITION events_2025_01`, `DROP TABLE events_2025_01`} {
		if _, err := s.Pool().Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	ok, err := s.InsertEvent(ctx, "c1", rules.Event{ID: "b", Name: "page_viewed", Time: at.Add(time.Hour)})
	if err != nil || !ok {
		t.Fatalf("insert into the dropped month: %v %v, want stored", ok, err)
	}
	if got := partitionsOf(t, s, "c1"); got["b"] != "events_2025_01" {
		t.Errorf("partitions %v, want b in events_2025_01", got)
	}
}

// Migration 00015 moves the events of a database migrated before it into
// monthly partitions by UTC month whatever the session's time zone, keeps
// every dispatch marker in event_ids, and its Down puts them back.
func TestMigrationMovesEventsIntoMonths(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := storetest.EmptyDB(t) + "&timezone=Pacific%2FKiritimati" // UTC+14: local months differ from UTC's
	if err := store.Migrate(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	if err := store.MigrateDownTo(ctx, dbURL, 14); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `
		INSERT INTO customers (id) VALUES ('c1');
		INSERT INTO events (id, customer_id, name, time, received_at, dispatched_at) VALUES
			('jan', 'c1', 'page', '2026-01-31 23:00Z', now(), now()),
			('feb', 'c1', 'page', '2026-02-01 00:00Z', now(), NULL),
			('old', 'c1', 'order_completed', '2019-06-15 12:00Z', now(), now())`)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	var parts, marked, pending string
	err = conn.QueryRow(ctx, `
		SELECT string_agg(e.id || ':' || e.tableoid::regclass::text, ' ' ORDER BY e.id),
			string_agg(i.id, ' ' ORDER BY i.id) FILTER (WHERE i.dispatched_at IS NOT NULL),
			string_agg(i.id, ' ' ORDER BY i.id) FILTER (WHERE i.dispatched_at IS NULL)
		FROM events e JOIN event_ids i ON i.id = e.id`).Scan(&parts, &marked, &pending)
	if err != nil {
		t.Fatal(err)
	}
	if want := "feb:events_2026_02 jan:events_2026_01 old:events_2019_06"; parts != want {
		t.Errorf("partitions after migration: %s, want %s", parts, want)
	}
	if marked != "jan old" || pending != "feb" {
		t.Errorf("dispatched %q, pending %q: want jan old / feb", marked, pending)
	}
	if err := store.MigrateDownTo(ctx, dbURL, 14); err != nil {
		t.Fatal(err)
	}
	var n, undispatched int
	err = conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE dispatched_at IS NULL) FROM events`).Scan(&n, &undispatched)
	if err != nil || n != 3 || undispatched != 1 {
		t.Errorf("after Down: %d events, %d undispatched, %v; want 3 and 1", n, undispatched, err)
	}
}
