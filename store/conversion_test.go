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

// conversion reads an enrollment's status, conversion time and event.
func conversion(t *testing.T, s *store.Store, id string) (status string, at *time.Time, event *string) {
	t.Helper()
	err := s.Pool().QueryRow(context.Background(),
		`SELECT status, converted_at, conversion_event FROM enrollments WHERE id = $1`, id).Scan(&status, &at, &event)
	if err != nil {
		t.Fatalf("read enrollment %s: %v", id, err)
	}
	return status, at, event
}

// TestRecordConversionFirstWins: a goal that continues records the first
// conversion; a second (or a retry) changes nothing, and the outcome the
// journey ends with later keeps it.
func TestRecordConversionFirstWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	mustCustomer(t, s, rules.Customer{ID: "c1", Email: "c1@example.com"})
	e := enrollment("e1", "survey", "c1")
	if res, err := s.RecordStart(ctx, activities.EntryRequest{Enrollment: e, Reentry: "never", At: t0}); err != nil || !res.Admitted {
		t.Fatalf("record start: %+v, %v", res, err)
	}
	first := activities.Conversion{Enrollment: e, Event: "survey_answered", EventID: "ev1", At: t0.Add(72 * time.Hour)}
	for _, c := range []activities.Conversion{first, first, {Enrollment: e, Event: "survey_answered", EventID: "ev2", At: t0.Add(96 * time.Hour)}} {
		if err := s.RecordConversion(ctx, c); err != nil {
			t.Fatalf("record conversion: %v", err)
		}
	}
	if err := s.RecordOutcome(ctx, activities.Outcome{Enrollment: e, Status: activities.StatusExited, Reason: "detractor", At: t0.Add(73 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	status, at, event := conversion(t, s, "e1")
	if status != "exited" || at == nil || !at.Equal(first.At) || event == nil || *event != "survey_answered" {
		t.Fatalf("enrollment: %s converted at %v on %v; want exited, converted at +72h on survey_answered", status, at, event)
	}
	err := s.RecordConversion(ctx, activities.Conversion{Enrollment: enrollment("nope", "survey", "c1"), Event: "x", At: t0})
	if !errors.Is(err, activities.ErrPermanent) {
		t.Fatalf("conversion of an enrollment never started: %v, want a permanent error", err)
	}
}

// TestConvertedOutcomeConverts: a goal with exit: true (or a journey
// started before goals measured) ends the journey as converted, which
// records the conversion at the end.
func TestConvertedOutcomeConverts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	mustCustomer(t, s, rules.Customer{ID: "c1", Email: "c1@example.com"})
	e := enrollment("e1", "winback", "c1")
	if _, err := s.RecordStart(ctx, activities.EntryRequest{Enrollment: e, Reentry: "never", At: t0}); err != nil {
		t.Fatal(err)
	}
	end := t0.Add(5 * 24 * time.Hour)
	if err := s.RecordOutcome(ctx, activities.Outcome{Enrollment: e, Status: activities.StatusConverted, Reason: "goal purchase", Goal: "purchase", At: end}); err != nil {
		t.Fatal(err)
	}
	status, at, event := conversion(t, s, "e1")
	if status != "converted" || at == nil || !at.Equal(end) || event == nil || *event != "purchase" {
		t.Fatalf("enrollment: %s converted at %v on %v; want converted at the end on purchase", status, at, event)
	}
}

// TestConversionMigrationBackfills: enrollments that ended as converted
// before migration 00007 count as converted when they ended, on the goal
// event their reason names.
func TestConversionMigrationBackfills(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := storetest.NewDB(t)
	if err := store.MigrateDownTo(ctx, dbURL, 6); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, dbURL, storetest.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, sql := range []string{
		`INSERT INTO customers (id) VALUES ('c1'), ('c2')`,
		`INSERT INTO enrollments (id, workflow_id, playbook, version, customer_id, status, reason, started_at, ended_at) VALUES
			('old1', 'wf1', 'winback', 'v1', 'c1', 'converted', 'goal purchase', '2026-03-01T00:00:00Z', '2026-03-04T00:00:00Z'),
			('old2', 'wf2', 'winback', 'v1', 'c2', 'completed', '', '2026-03-01T00:00:00Z', '2026-03-05T00:00:00Z')`,
	} {
		if _, err := s.Pool().Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if err := store.Migrate(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	_, at, event := conversion(t, s, "old1")
	if at == nil || !at.Equal(time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)) || event == nil || *event != "purchase" {
		t.Errorf("old converted enrollment: converted at %v on %v; want 2026-03-04 on purchase", at, event)
	}
	if _, at, _ := conversion(t, s, "old2"); at != nil {
		t.Errorf("old completed enrollment converted at %v; want never", at)
	}
}
