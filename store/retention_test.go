package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// seedRetention stores events of several months, an anonymous visitor's
// events and messages of several ages and states.
func seedRetention(t *testing.T, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	for id, at := range map[string]string{
		"jan_2025": "2025-01-15T10:00:00Z", "jul_last": "2026-07-31T23:59:59Z", "aug_first": "2026-08-01T00:00:00Z",
		"nov": "2026-11-20T08:00:00Z",
	} {
		tm, _ := time.Parse(time.RFC3339, at)
		if _, err := s.InsertEvent(ctx, "c1", rules.Event{ID: id, Name: "page_viewed", Time: tm}); err != nil {
			t.Fatal(err)
		}
	}
	for id, at := range map[string]string{"anon_jul": "2026-07-02T00:00:00Z", "anon_oct": "2026-10-02T00:00:00Z"} {
		tm, _ := time.Parse(time.RFC3339, at)
		if _, err := s.Ingest(ctx, store.Ingestion{AnonymousID: "visitor", Event: &rules.Event{ID: id, Name: "page", Time: tm}}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Pool().Exec(ctx, `
		INSERT INTO enrollments (id, workflow_id, playbook, version, customer_id, status, started_at, trigger_id) VALUES
			('done', 'rapport/winback/c1', 'winback', 'v1', 'c1', 'completed', '2026-08-01Z', 't1'),
			('running', 'rapport/loyalty/c1', 'loyalty', 'v1', 'c1', 'active', '2026-08-01Z', 't2');
		INSERT INTO messages (key, enrollment_id, customer_id, playbook, step_id, channel, template, recipient, status, created_at) VALUES
			('old_sent', 'done', 'c1', 'winback', 'mail', 'email', 't', 'a@example.com', 'sent', '2026-08-20Z'),
			('old_queued', 'done', 'c1', 'winback', 'mail2', 'email', 't', 'a@example.com', 'queued', '2026-08-20Z'),
			('old_running', 'running', 'c1', 'loyalty', 'mail', 'email', 't', 'a@example.com', 'sent', '2026-08-20Z'),
			('recent', 'done', 'c1', 'winback', 'mail3', 'email', 't', 'a@example.com', 'sent', '2026-09-15Z');
		INSERT INTO message_events (id, message_key, kind, provider, at) VALUES ('me1', 'old_sent', 'delivered', 'ses', '2026-08-20Z')`)
	if err != nil {
		t.Fatal(err)
	}
}

// column lists the first column of a query.
func column(t *testing.T, s *store.Store, sql string) []string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// Maintain with 3 months of events and 2 of messages on 26 November 2026
// keeps events from 1 August and messages from 1 September: whole months
// of events are dropped, their ids and the anonymous events of that time
// deleted, and old messages deleted with their status history — except
// queued ones and those of a journey still running. A dry pass reports
// the same and changes nothing; a second pass finds nothing to do.
func TestMaintainAgesOutEventsAndMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := storetest.Config()
	cfg.EventRetentionMonths, cfg.MessageRetentionMonths = 3, 2
	s := storetest.NewWithConfig(t, cfg)
	seedRetention(t, s)
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	const parts = `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass ORDER BY 1`
	before := column(t, s, parts)

	dry, err := s.Maintain(ctx, now, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := column(t, s, parts); !slices.Equal(got, before) {
		t.Errorf("dry pass changed partitions: %v, was %v", got, before)
	}
	real, err := s.Maintain(ctx, now, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []store.MaintainReport{dry, real} {
		if !slices.Equal(r.Dropped, []string{"events_2025_01", "events_2026_07"}) || !slices.Equal(r.Created, []string{"events_2026_12"}) {
			t.Errorf("dropped %v, created %v: want events_2025_01 and events_2026_07 dropped, events_2026_12 created", r.Dropped, r.Created)
		}
		if r.EventIDs != 2 || r.AnonymousEvents != 1 || r.Messages != 1 {
			t.Errorf("report %+v: want 2 event ids, 1 anonymous event, 1 message", r)
		}
		if !r.EventsBefore.Equal(time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)) || !r.MessagesBefore.Equal(time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("cut-offs %s / %s, want 1 August / 1 September", r.EventsBefore, r.MessagesBefore)
		}
	}
	if got := column(t, s, parts); !slices.Equal(got, []string{"events_2026_08", "events_2026_10", "events_2026_11", "events_2026_12"}) {
		t.Errorf("partitions after the pass: %v", got)
	}
	checks := map[string][]string{
		`SELECT id FROM events ORDER BY id`:                     {"aug_first", "nov"},
		`SELECT id FROM event_ids ORDER BY id`:                  {"aug_first", "nov"},
		`SELECT id FROM anonymous_events ORDER BY id`:           {"anon_oct"},
		`SELECT key FROM messages ORDER BY key`:                 {"old_queued", "old_running", "recent"},
		`SELECT message_key FROM message_events ORDER BY 1`:     nil,
		`SELECT id FROM enrollments ORDER BY id`:                {"done", "running"},
		`SELECT order_count::text FROM customers WHERE id='c1'`: {"0"},
	}
	for sql, want := range checks {
		if got := column(t, s, sql); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", sql, got, want)
		}
	}
	again, err := s.Maintain(ctx, now, false)
	if err != nil || len(again.Dropped)+len(again.Created) != 0 || again.EventIDs+again.AnonymousEvents+again.Messages != 0 {
		t.Errorf("second pass: %+v %v, want nothing to do", again, err)
	}
	// The process forgot the dropped months: a late event of July is
	// stored (in a new partition the next pass drops).
	if ok, err := s.InsertEvent(ctx, "c1", rules.Event{ID: "late", Name: "page_viewed", Time: time.Date(2026, 7, 3, 0, 0, 0, 0, time.UTC)}); err != nil || !ok {
		t.Errorf("late event after retention: %v %v", ok, err)
	}
}

// A message retention shorter than the frequency cap's window is refused
// where it is read, naming both settings.
func TestRetentionShorterThanTheCapIsRefused(t *testing.T) {
	t.Setenv("RAPPORT_FREQUENCY_CAP", "3/60d")
	t.Setenv("RAPPORT_MESSAGE_RETENTION_MONTHS", "1")
	_, err := store.ConfigFromEnv()
	if err == nil || !strings.Contains(err.Error(), "RAPPORT_MESSAGE_RETENTION_MONTHS=1") || !strings.Contains(err.Error(), "RAPPORT_FREQUENCY_CAP") {
		t.Fatalf("err = %v, want a refusal naming both settings", err)
	}
	t.Setenv("RAPPORT_MESSAGE_RETENTION_MONTHS", "3")
	t.Setenv("RAPPORT_EVENT_RETENTION_MONTHS", "-1")
	if _, err := store.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "RAPPORT_EVENT_RETENTION_MONTHS") {
		t.Fatalf("err = %v, want RAPPORT_EVENT_RETENTION_MONTHS refused", err)
	}
	t.Setenv("RAPPORT_EVENT_RETENTION_MONTHS", "13")
	cfg, err := store.ConfigFromEnv()
	if err != nil || cfg.EventRetentionMonths != 13 || cfg.MessageRetentionMonths != 3 {
		t.Fatalf("cfg %+v, %v", cfg, err)
	}
}
