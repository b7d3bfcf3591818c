package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// running lists RunningVersions as playbook@version.
func running(t *testing.T, s *store.Store, customerID string) []string {
	t.Helper()
	rv, err := s.RunningVersions(context.Background(), customerID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rv {
		out = append(out, r.Playbook+"@"+r.Version)
	}
	return out
}

// A noted start counts as running until its journey records its
// enrollment (RecordStart, admitted or refused), which deletes only the
// note of its own trigger.
func TestStartNotesRunUntilTheJourneyRecordsItsStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	mustCustomer(t, s, rules.Customer{ID: "c1"})
	mustCustomer(t, s, rules.Customer{ID: "c2"})

	if got := running(t, s, "c1"); len(got) != 0 {
		t.Fatalf("running before any start: %v", got)
	}
	notes := []store.JourneyStart{
		{CustomerID: "c1", Playbook: "welcome", Version: "v1", TriggerID: "signup-1"},
		{CustomerID: "c1", Playbook: "welcome", Version: "v1", TriggerID: "scan/welcome/1/c1"}, // a racing starter
		{CustomerID: "c1", Playbook: "winback", Version: "v7", TriggerID: "scan/winback/1/c1"},
	}
	if err := s.NoteStarts(ctx, notes...); err != nil {
		t.Fatal(err)
	}
	if err := s.NoteStarts(ctx, notes[0]); err != nil { // a retried dispatch notes again
		t.Fatal(err)
	}
	if got, want := running(t, s, "c1"), []string{"welcome@v1", "winback@v7"}; !slices.Equal(got, want) {
		t.Errorf("running with starts noted: %v, want %v", got, want)
	}
	if got := running(t, s, "c2"); len(got) != 0 {
		t.Errorf("c2 runs %v, want nothing (the notes are c1's)", got)
	}

	// welcome's journey, started by signup-1, is admitted: its note goes,
	// the racing starter's stays, and the enrollment runs.
	e := enrollment("en-welcome", "welcome", "c1")
	res, err := s.RecordStart(ctx, activities.EntryRequest{Enrollment: e, Reentry: "never", At: t0, TriggerID: "signup-1"})
	if err != nil || !res.Admitted {
		t.Fatalf("record start: %+v %v", res, err)
	}
	if got := column(t, s, `SELECT playbook || '/' || trigger_id FROM journey_starts ORDER BY 1`); !slices.Equal(got,
		[]string{"welcome/scan/welcome/1/c1", "winback/scan/winback/1/c1"}) {
		t.Errorf("notes after welcome's start: %v", got)
	}
	if got, want := running(t, s, "c1"), []string{"welcome@v1", "winback@v7"}; !slices.Equal(got, want) {
		t.Errorf("running after welcome's start: %v, want %v", got, want)
	}

	// winback's journey is refused (c1 ran winback before and it allows
	// no re-entry): its note goes too, and nothing of winback runs.
	if _, err := s.Pool().Exec(ctx, `INSERT INTO enrollments (id, workflow_id, playbook, version, customer_id, status, started_at, ended_at)
		VALUES ('old', 'wf-old', 'winback', 'v6', 'c1', 'completed', $1, $1)`, t0.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	w := enrollment("en-winback", "winback", "c1")
	res, err = s.RecordStart(ctx, activities.EntryRequest{Enrollment: w, Reentry: "never", At: t0, TriggerID: "scan/winback/1/c1"})
	if err != nil || res.Admitted {
		t.Fatalf("record start of a second winback: %+v %v, want refused", res, err)
	}
	if got, want := running(t, s, "c1"), []string{"welcome@v1"}; !slices.Equal(got, want) {
		t.Errorf("running after winback's refusal: %v, want %v", got, want)
	}
}

// A start that found its journey running drops its note once that
// journey is covered: by its enrollment, or by the note of its own start
// (another trigger's). Before, the running journey may be the one its
// own trigger started on an earlier try, and the note stays.
func TestDropStartNotesWaitsForTheJourneyToBeCovered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	for _, id := range []string{"c1", "c2", "c3"} {
		mustCustomer(t, s, rules.Customer{ID: id})
	}
	a := store.JourneyStart{CustomerID: "c1", Playbook: "welcome", Version: "v1", TriggerID: "t-a"}
	b := store.JourneyStart{CustomerID: "c2", Playbook: "welcome", Version: "v1", TriggerID: "t-b"}
	c := store.JourneyStart{CustomerID: "c3", Playbook: "welcome", Version: "v1", TriggerID: "t-c"}
	own := store.JourneyStart{CustomerID: "c3", Playbook: "welcome", Version: "v1", TriggerID: "t-running"}
	if err := s.NoteStarts(ctx, a, b, c, own); err != nil {
		t.Fatal(err)
	}
	// c2's journey has recorded its enrollment (started by another
	// trigger); c3's is noted under its own trigger, not recorded yet.
	if _, err := s.RecordStart(ctx, activities.EntryRequest{Enrollment: enrollment("en-c2", "welcome", "c2"), Reentry: "never", At: t0, TriggerID: "t-other"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DropStartNotes(ctx, a, b, c); err != nil {
		t.Fatal(err)
	}
	if got := column(t, s, `SELECT customer_id || '/' || trigger_id FROM journey_starts ORDER BY 1`); !slices.Equal(got, []string{"c1/t-a", "c3/t-running"}) {
		t.Errorf("notes left %v, want c1's (its journey may be its own, unrecorded) and c3's running journey's", got)
	}
	if got, want := running(t, s, "c2"), []string{"welcome@v1"}; !slices.Equal(got, want) {
		t.Errorf("c2 runs %v, want %v from its enrollment", got, want)
	}
}

// The start of a customer who no longer exists (erased since a scan read
// them) notes nothing, and the other starts of the page are noted.
func TestNoteStartOfUnknownCustomer(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	mustCustomer(t, s, rules.Customer{ID: "c1"})
	err := s.NoteStarts(context.Background(),
		store.JourneyStart{CustomerID: "ghost", Playbook: "p", Version: "v1", TriggerID: "t"},
		store.JourneyStart{CustomerID: "c1", Playbook: "p", Version: "v1", TriggerID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if got := column(t, s, `SELECT customer_id FROM journey_starts`); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("notes of %v, want c1's only", got)
	}
}

// Maintain deletes the notes no journey deleted once they are older than
// StartNoteRetention, and counts them when dry.
func TestMaintainDeletesOldStartNotes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	mustCustomer(t, s, rules.Customer{ID: "c1"})
	if err := s.NoteStarts(ctx, store.JourneyStart{CustomerID: "c1", Playbook: "p", Version: "v1", TriggerID: "old"},
		store.JourneyStart{CustomerID: "c1", Playbook: "p", Version: "v1", TriggerID: "new"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE journey_starts SET requested_at = now() - interval '31 days' WHERE trigger_id = 'old'`); err != nil {
		t.Fatal(err)
	}
	dry, err := s.Maintain(ctx, time.Now(), true)
	if err != nil || dry.StartNotes != 1 {
		t.Fatalf("dry pass: %d notes, %v; want 1", dry.StartNotes, err)
	}
	if n := count(t, s, `SELECT count(*) FROM journey_starts`); n != 2 {
		t.Fatalf("dry pass left %d notes, want 2", n)
	}
	r, err := s.Maintain(ctx, time.Now(), false)
	if err != nil || r.StartNotes != 1 {
		t.Fatalf("pass: %d notes, %v; want 1", r.StartNotes, err)
	}
	if got := column(t, s, `SELECT trigger_id FROM journey_starts`); !slices.Equal(got, []string{"new"}) {
		t.Errorf("notes left %v, want the recent one", got)
	}
}

// A version only a start noted within StartGrace vouches for is
// Starting; an older note, or an active enrollment of it, is not.
func TestRunningVersionsSayWhatIsStarting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	mustCustomer(t, s, rules.Customer{ID: "c1"})
	if err := s.NoteStarts(ctx,
		store.JourneyStart{CustomerID: "c1", Playbook: "fresh", Version: "v1", TriggerID: "t1"},
		store.JourneyStart{CustomerID: "c1", Playbook: "stale", Version: "v1", TriggerID: "t2"},
		store.JourneyStart{CustomerID: "c1", Playbook: "recorded", Version: "v1", TriggerID: "t3"},
	); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE journey_starts SET requested_at = now() - interval '2 minutes' WHERE playbook = 'stale'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `INSERT INTO enrollments (id, workflow_id, playbook, version, customer_id, status, started_at)
		VALUES ('e1', 'wf-e1', 'recorded', 'v1', 'c1', 'active', now())`); err != nil {
		t.Fatal(err)
	}
	rv, err := s.RunningVersions(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.RunningVersion{{Playbook: "fresh", Version: "v1", Starting: true}, {Playbook: "recorded", Version: "v1"}, {Playbook: "stale", Version: "v1"}}
	if !slices.Equal(rv, want) {
		t.Errorf("running %+v, want %+v", rv, want)
	}
	out, err := s.IngestEvents(ctx, []store.EventCall{{CustomerID: "c1", Event: rules.Event{ID: "p1", Name: "page"}}})
	if err != nil || !slices.Equal(out[0].Running, want) {
		t.Errorf("IngestEvents read running %+v (%v), want %+v", out[0].Running, err, want)
	}
}
