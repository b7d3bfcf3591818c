package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// start records an admitted enrollment of customer in playbook at at.
func start(t *testing.T, s *store.Store, id, playbook, customer string, at time.Time) activities.Enrollment {
	t.Helper()
	e := enrollment(id, playbook, customer)
	res, err := s.RecordStart(context.Background(), activities.EntryRequest{Enrollment: e, Reentry: "always", At: at})
	if err != nil || !res.Admitted {
		t.Fatalf("record start of %s: %+v %v", id, res, err)
	}
	return e
}

// queue inserts an outbox row of enrollment e still waiting for delivery.
func queue(t *testing.T, s *store.Store, e activities.Enrollment, key, reason string) {
	t.Helper()
	_, err := s.Pool().Exec(context.Background(), `
		INSERT INTO messages (key, enrollment_id, customer_id, playbook, step_id, channel, status, reason, created_at)
		VALUES ($1, $2, $3, $4, 'mail', 'email', 'queued', $5, $6)`, key, e.ID, e.CustomerID, e.Playbook, reason, t0)
	if err != nil {
		t.Fatal(err)
	}
}

type row struct {
	status, reason string
	ended          *time.Time
}

func enrollmentRow(t *testing.T, s *store.Store, id string) row {
	t.Helper()
	var r row
	err := s.Pool().QueryRow(context.Background(), `SELECT status, reason, ended_at FROM enrollments WHERE id = $1`, id).
		Scan(&r.status, &r.reason, &r.ended)
	if err != nil {
		t.Fatalf("enrollment %s: %v", id, err)
	}
	return r
}

func messageState(t *testing.T, s *store.Store, key string) string {
	t.Helper()
	var status, reason string
	if err := s.Pool().QueryRow(context.Background(), `SELECT status, reason FROM messages WHERE key = $1`, key).Scan(&status, &reason); err != nil {
		t.Fatalf("message %s: %v", key, err)
	}
	return status + "/" + reason
}

// TestActiveEnrollmentsPagesOldestFirst: only active enrollments that
// started before the cutoff are listed, oldest first (ties by id), page
// after page from the cursor, without repeats or gaps.
func TestActiveEnrollmentsPagesOldestFirst(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	for _, id := range []string{"c1", "c2", "c3"} {
		mustCustomer(t, s, rules.Customer{ID: id})
	}
	start(t, s, "e-late", "pb", "c1", t0.Add(3*time.Hour))
	start(t, s, "e-b", "pb", "c2", t0.Add(time.Hour))
	start(t, s, "e-a", "other", "c3", t0.Add(time.Hour)) // same start as e-b: id breaks the tie
	start(t, s, "e-first", "other", "c1", t0)
	start(t, s, "e-new", "pb", "c3", t0.Add(5*time.Hour)) // inside the grace: not judged
	done := start(t, s, "e-done", "third", "c2", t0.Add(-time.Hour))
	if err := s.RecordOutcome(ctx, activities.Outcome{Enrollment: done, Status: activities.StatusCompleted, At: t0}); err != nil {
		t.Fatal(err)
	}

	var got []string
	var cur store.Cursor
	pages := 0
	for {
		page, err := s.ActiveEnrollments(ctx, store.ActiveQuery{StartedBefore: t0.Add(5 * time.Hour), After: cur, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		pages++
		for _, a := range page {
			got = append(got, a.ID)
			if a.WorkflowID != "wf-"+a.ID || a.Version != "v1" || a.CustomerID == "" || a.Playbook == "" {
				t.Errorf("row %+v lacks the enrollment's fields", a)
			}
		}
		last := page[len(page)-1]
		cur = store.Cursor{StartedAt: last.StartedAt, ID: last.ID}
	}
	if want := "[e-first e-a e-b e-late]"; fmt.Sprint(got) != want || pages != 2 {
		t.Errorf("listed %v in %d pages, want %s in 2", got, pages, want)
	}
}

// TestCloseActive: an active enrollment is closed with the status and
// reason given and its queued messages failed like RecordOutcome fails
// them; an enrollment the journey already closed is left as it is, and a
// RecordOutcome arriving after the close changes nothing.
func TestCloseActive(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	mustCustomer(t, s, rules.Customer{ID: "c1"})
	mustCustomer(t, s, rules.Customer{ID: "c2"})
	gone := start(t, s, "gone", "pb", "c1", t0)
	queue(t, s, gone, "gone/mail/1", "")
	queue(t, s, gone, "gone/mail/2", "smtp 451 try later")
	done := start(t, s, "done", "pb", "c2", t0)
	if err := s.RecordOutcome(ctx, activities.Outcome{Enrollment: done, Status: activities.StatusConverted, Reason: "goal purchase", At: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	queue(t, s, done, "done/mail/9", "") // queued after the outcome: not the closer's to touch

	closedAt := t0.Add(2 * time.Hour)
	closed, err := s.CloseActive(ctx, activities.Outcome{Enrollment: gone, Status: activities.StatusFailed, Reason: "workflow terminated", At: closedAt})
	if err != nil || !closed {
		t.Fatalf("close active enrollment: closed=%v err=%v", closed, err)
	}
	if r := enrollmentRow(t, s, "gone"); r.status != "failed" || r.reason != "workflow terminated" || r.ended == nil || !r.ended.Equal(closedAt) {
		t.Errorf("closed enrollment %+v, want failed (workflow terminated) ended %s", r, closedAt)
	}
	if got := messageState(t, s, "gone/mail/1"); got != "failed/undelivered" {
		t.Errorf("queued message without a failure: %s, want failed/undelivered", got)
	}
	if got := messageState(t, s, "gone/mail/2"); got != "failed/smtp 451 try later" {
		t.Errorf("queued message with a failure: %s, want failed with its last failure", got)
	}

	closed, err = s.CloseActive(ctx, activities.Outcome{Enrollment: done, Status: activities.StatusFailed, Reason: "workflow completed"})
	if err != nil || closed {
		t.Fatalf("close of a converted enrollment: closed=%v err=%v, want false", closed, err)
	}
	if r := enrollmentRow(t, s, "done"); r.status != "converted" || r.reason != "goal purchase" || !r.ended.Equal(t0.Add(time.Hour)) {
		t.Errorf("converted enrollment became %+v", r)
	}
	if got := messageState(t, s, "done/mail/9"); got != "queued/" {
		t.Errorf("message of an enrollment the closer left alone: %s, want still queued", got)
	}

	// The journey's own RecordOutcome, late: the close stands.
	if err := s.RecordOutcome(ctx, activities.Outcome{Enrollment: gone, Status: activities.StatusCompleted, At: t0.Add(3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if r := enrollmentRow(t, s, "gone"); r.status != "failed" || r.reason != "workflow terminated" {
		t.Errorf("a late RecordOutcome overwrote the close: %+v", r)
	}
	// Closing again is a no-op.
	if closed, err := s.CloseActive(ctx, activities.Outcome{Enrollment: gone, Status: activities.StatusExited, Reason: "again"}); err != nil || closed {
		t.Errorf("second close: closed=%v err=%v, want false", closed, err)
	}
	if _, err := s.CloseActive(ctx, activities.Outcome{Enrollment: gone, Status: activities.StatusActive}); err == nil {
		t.Error("closing as active succeeded")
	}
	if closed, err := s.CloseActive(ctx, activities.Outcome{Enrollment: enrollment("never", "pb", "c1"), Status: activities.StatusFailed}); err != nil || closed {
		t.Errorf("close of an unknown enrollment: closed=%v err=%v, want false", closed, err)
	}
	if n := count(t, s, `SELECT count(*) FROM enrollments WHERE id = 'never'`); n != 0 {
		t.Error("closing an unknown enrollment inserted it")
	}
}

// TestCloseActiveRacesRecordOutcome runs the journey's RecordOutcome and
// the reconciler's close of the same enrollment at the same time, for many
// enrollments: exactly one of them decides each outcome, and CloseActive
// says true exactly when it was the one.
func TestCloseActiveRacesRecordOutcome(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	const n = 40
	ens := make([]activities.Enrollment, n)
	for i := range ens {
		id := fmt.Sprintf("c%02d", i)
		mustCustomer(t, s, rules.Customer{ID: id})
		ens[i] = start(t, s, "race-"+id, "pb", id, t0)
	}
	warmPool(t, s, 10)
	won := make([]bool, n)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i, e := range ens {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- s.RecordOutcome(ctx, activities.Outcome{Enrollment: e, Status: activities.StatusConverted, Reason: "goal purchase", At: t0.Add(time.Hour)})
		}()
		go func() {
			defer wg.Done()
			var err error
			won[i], err = s.CloseActive(ctx, activities.Outcome{Enrollment: e, Status: activities.StatusFailed, Reason: "workflow terminated", At: t0.Add(2 * time.Hour)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	closer := 0
	for i, e := range ens {
		r := enrollmentRow(t, s, e.ID)
		want := row{status: "converted", reason: "goal purchase"}
		if won[i] {
			want = row{status: "failed", reason: "workflow terminated"}
			closer++
		}
		if r.status != want.status || r.reason != want.reason {
			t.Errorf("%s: %s (%s), want %s (%s) (closer won: %v)", e.ID, r.status, r.reason, want.status, want.reason, won[i])
		}
	}
	t.Logf("the closer won %d of %d races", closer, n)
}
