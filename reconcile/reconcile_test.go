package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/payloadcrypt"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
	"github.com/rapport-crm/rapport/workflows"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeWorkflows answers fates by enrollment ID; unknown ones are open.
type fakeWorkflows struct {
	mu        sync.Mutex
	fates     map[string]Fate
	errs      map[string]error
	before    map[string]func() // run before answering, e.g. a racing RecordOutcome
	retention time.Duration
	// noJourneys: the namespace holds no Journey workflow (HasJourneys).
	noJourneys bool
	asked      []string
}

func (f *fakeWorkflows) Fate(_ context.Context, workflowID, enrollmentID string) (Fate, error) {
	f.mu.Lock()
	f.asked = append(f.asked, enrollmentID)
	hook := f.before[enrollmentID]
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	if workflowID != "wf-"+enrollmentID {
		return Fate{}, fmt.Errorf("asked about workflow %s for enrollment %s", workflowID, enrollmentID)
	}
	if err := f.errs[enrollmentID]; err != nil {
		return Fate{}, err
	}
	if fate, ok := f.fates[enrollmentID]; ok {
		return fate, nil
	}
	return Fate{Open: true}, nil
}

func (f *fakeWorkflows) Retention(context.Context) (time.Duration, error) { return f.retention, nil }

func (f *fakeWorkflows) HasJourneys(context.Context) (bool, error) { return !f.noJourneys, nil }

func TestFateOutcome(t *testing.T) {
	long := strings.Repeat("x", 400)
	for _, c := range []struct {
		fate   Fate
		status activities.Status
		reason string
	}{
		{Fate{Ended: EndedTerminated, Detail: "bad deploy"}, activities.StatusFailed, "workflow terminated: bad deploy"},
		{Fate{Ended: EndedTerminated}, activities.StatusFailed, "workflow terminated"},
		{Fate{Ended: EndedTimedOut}, activities.StatusFailed, "workflow timed out"},
		{Fate{Ended: EndedFailed, Detail: "playbook x does not compile"}, activities.StatusFailed, "workflow failed: playbook x does not compile"},
		{Fate{Ended: EndedFailed, Detail: long}, activities.StatusFailed, "workflow failed: " + long[:maxDetail] + "…"},
		{Fate{Ended: EndedCanceled}, activities.StatusExited, "workflow canceled"},
		{Fate{Ended: EndedNotFound}, activities.StatusFailed, "workflow not found"},
		{Fate{Ended: EndedCompleted, Result: &workflows.JourneyResult{Status: activities.StatusConverted, Reason: "goal purchase"}},
			activities.StatusConverted, "goal purchase"},
		{Fate{Ended: EndedCompleted}, activities.StatusCompleted, "workflow completed"},
	} {
		status, reason := c.fate.Outcome()
		if status != c.status || reason != c.reason {
			t.Errorf("%+v: %s (%s), want %s (%s)", c.fate, status, reason, c.status, c.reason)
		}
	}
}

type dbRow struct{ status, reason string }

func rowOf(t *testing.T, s *store.Store, id string) dbRow {
	t.Helper()
	var r dbRow
	if err := s.Pool().QueryRow(context.Background(), `SELECT status, reason FROM enrollments WHERE id = $1`, id).Scan(&r.status, &r.reason); err != nil {
		t.Fatalf("enrollment %s: %v", id, err)
	}
	return r
}

// TestPassClosesEndedWorkflows runs passes over a real database with the
// workflows' fates made up: every ended workflow's enrollment is closed
// with its outcome and its queued message failed; running ones, young
// ones and those the journey closed first are left as they are; a
// workflow not found within the retention is skipped, not closed.
func TestPassClosesEndedWorkflows(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	now := t0.Add(30 * 24 * time.Hour)
	retention := 7 * 24 * time.Hour
	starts := map[string]time.Time{
		"running":    t0,
		"terminated": t0.Add(time.Minute),
		"timedout":   t0.Add(2 * time.Minute),
		"canceled":   t0.Add(3 * time.Minute),
		"completed":  t0.Add(4 * time.Minute),
		"gone":       t0.Add(5 * time.Minute),      // removed by retention long ago
		"gone-young": now.Add(-2 * 24 * time.Hour), // not found, yet within the retention
		"invalid":    t0.Add(6 * time.Minute),      // Temporal rejects its run ID
		"raced":      t0.Add(7 * time.Minute),      // the journey's outcome lands first
		"young":      now.Add(-time.Minute),        // inside the grace: not judged
		"done":       t0.Add(8 * time.Minute),      // closed by its journey before the pass
	}
	ids := make([]string, 0, len(starts))
	for id, at := range starts {
		ids = append(ids, id)
		if err := s.UpsertCustomer(ctx, rules.Customer{ID: "cust-" + id}); err != nil {
			t.Fatal(err)
		}
		e := activities.Enrollment{ID: id, WorkflowID: "wf-" + id, Playbook: "pb", Version: "v1", CustomerID: "cust-" + id}
		if res, err := s.RecordStart(ctx, activities.EntryRequest{Enrollment: e, Reentry: "never", At: at}); err != nil || !res.Admitted {
			t.Fatalf("start %s: %+v %v", id, res, err)
		}
	}
	sort.Strings(ids)
	if err := s.RecordOutcome(ctx, activities.Outcome{Enrollment: activities.Enrollment{ID: "done", WorkflowID: "wf-done", Playbook: "pb", Version: "v1", CustomerID: "cust-done"},
		Status: activities.StatusCompleted, At: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `
		INSERT INTO messages (key, enrollment_id, customer_id, playbook, step_id, channel, status, created_at)
		VALUES ('terminated/mail/1', 'terminated', 'cust-terminated', 'pb', 'mail', 'email', 'queued', $1)`, t0); err != nil {
		t.Fatal(err)
	}
	closedAt := t0.Add(48 * time.Hour)
	fw := &fakeWorkflows{retention: retention,
		fates: map[string]Fate{
			"terminated": {Ended: EndedTerminated, Detail: "operator", ClosedAt: closedAt},
			"timedout":   {Ended: EndedTimedOut, ClosedAt: closedAt},
			"canceled":   {Ended: EndedCanceled, ClosedAt: closedAt},
			"completed":  {Ended: EndedCompleted, ClosedAt: closedAt, Result: &workflows.JourneyResult{Status: activities.StatusConverted, Reason: "goal purchase"}},
			"gone":       {Ended: EndedNotFound},
			"gone-young": {Ended: EndedNotFound},
			"raced":      {Ended: EndedTerminated},
			"done":       {Ended: EndedCompleted},
		},
		errs: map[string]error{"invalid": fmt.Errorf("describe: %w", serviceerror.NewInvalidArgument("RunId is not valid UUID"))},
		before: map[string]func(){"raced": func() {
			e := activities.Enrollment{ID: "raced", WorkflowID: "wf-raced", Playbook: "pb", Version: "v1", CustomerID: "cust-raced"}
			if err := s.RecordOutcome(ctx, activities.Outcome{Enrollment: e, Status: activities.StatusExited, Reason: "exit_when", At: t0.Add(time.Hour)}); err != nil {
				t.Error(err)
			}
		}},
	}
	var mu sync.Mutex
	var seen []Closed
	a := &Activities{Store: s, Workflows: fw, Logger: quietLog, Now: func() time.Time { return now },
		OnClosed: func(c Closed) { mu.Lock(); seen = append(seen, c); mu.Unlock() }}
	cutoff := now.Add(-DefaultGrace)

	// A dry run changes nothing.
	dry, err := a.Pass(ctx, PassRequest{StartedBefore: cutoff, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := rowOf(t, s, "terminated"); r.status != "active" {
		t.Fatalf("dry run closed an enrollment: %+v", r)
	}
	if dry.Closed != 6 || len(seen) != 6 || !seen[0].DryRun {
		t.Errorf("dry run %+v reported %d, want 6 would-be closes (raced one included)", dry, len(seen))
	}
	// The dry run's racing RecordOutcome already closed "raced"; reopen it
	// so the real pass meets the race again.
	if _, err := s.Pool().Exec(ctx, `UPDATE enrollments SET status = 'active', reason = '', ended_at = NULL WHERE id = 'raced'`); err != nil {
		t.Fatal(err)
	}
	seen = nil

	a.Concurrency = 3
	var counts Counts
	req := PageRequest{StartedBefore: cutoff, Limit: 2}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pass does not end")
		}
		res, err := a.ReconcilePage(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		counts = counts.Add(res.Counts)
		if res.Done {
			break
		}
		req.After = res.Next
	}
	want := Counts{Checked: 9, Open: 1, Closed: 5, Raced: 1, Skipped: 2, SkippedBy: map[string]int{SkipInvalidID: 1, SkipNotFoundRecent: 1},
		Ended: map[string]int{EndedTerminated: 1, EndedTimedOut: 1, EndedCanceled: 1, EndedCompleted: 1, EndedNotFound: 1}}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("counts %+v, want %+v", counts, want)
	}
	wantRows := map[string]dbRow{
		"running":    {"active", ""},
		"terminated": {"failed", "workflow terminated: operator"},
		"timedout":   {"failed", "workflow timed out"},
		"canceled":   {"exited", "workflow canceled"},
		"completed":  {"converted", "goal purchase"},
		"gone":       {"failed", "workflow not found"},
		"gone-young": {"active", ""},
		"invalid":    {"active", ""},
		"raced":      {"exited", "exit_when"},
		"young":      {"active", ""},
		"done":       {"completed", ""},
	}
	for _, id := range ids {
		if got := rowOf(t, s, id); got != wantRows[id] {
			t.Errorf("%s: %+v, want %+v", id, got, wantRows[id])
		}
	}
	var ended time.Time
	if err := s.Pool().QueryRow(ctx, `SELECT ended_at FROM enrollments WHERE id = 'terminated'`).Scan(&ended); err != nil || !ended.Equal(closedAt) {
		t.Errorf("terminated enrollment ended at %v (%v), want the workflow's close time %v", ended, err, closedAt)
	}
	var msg string
	if err := s.Pool().QueryRow(ctx, `SELECT status || '/' || reason FROM messages WHERE key = 'terminated/mail/1'`).Scan(&msg); err != nil || msg != "failed/undelivered" {
		t.Errorf("queued message of the terminated enrollment: %q (%v), want failed/undelivered", msg, err)
	}
	if len(seen) != 5 {
		t.Errorf("OnClosed saw %d closes, want 5: %+v", len(seen), seen)
	}
	for _, id := range fw.asked {
		if id == "young" || id == "done" {
			t.Errorf("asked Temporal about %s, which the pass must not judge", id)
		}
	}
}

// memStore is an in-memory Store for the workflow test.
type memStore struct {
	mu   sync.Mutex
	rows []store.ActiveEnrollment // in (started_at, id) order
	shut map[string]bool
}

func (m *memStore) ActiveEnrollments(_ context.Context, q store.ActiveQuery) ([]store.ActiveEnrollment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if q.Limit <= 0 {
		q.Limit = DefaultPageSize // as store.ActiveEnrollments
	}
	var out []store.ActiveEnrollment
	for _, r := range m.rows {
		after := r.StartedAt.After(q.After.StartedAt) || (r.StartedAt.Equal(q.After.StartedAt) && r.ID > q.After.ID)
		if after && !m.shut[r.ID] && r.StartedAt.Before(q.StartedBefore) && len(out) < q.Limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memStore) CloseActive(_ context.Context, o activities.Outcome) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shut[o.Enrollment.ID] {
		return false, nil
	}
	m.shut[o.Enrollment.ID] = true
	return true, nil
}

// TestWorkflowPagesAndContinuesAsNew: a pass over 45,000 enrollments (2,000
// per call) continues as new after CallsPerRun calls with the cursor, the
// counts and its cutoff, and the next run finishes the rest.
func TestWorkflowPagesAndContinuesAsNew(t *testing.T) {
	now := t0.Add(24 * time.Hour)
	ms := &memStore{shut: map[string]bool{}}
	fw := &fakeWorkflows{fates: map[string]Fate{}, retention: time.Hour}
	const n = 45000
	for i := range n {
		id := fmt.Sprintf("e%05d", i)
		ms.rows = append(ms.rows, store.ActiveEnrollment{Enrollment: activities.Enrollment{ID: id, WorkflowID: "wf-" + id}, StartedAt: t0.Add(time.Duration(i/3) * time.Second)})
		if i%10 == 0 {
			fw.fates[id] = Fate{Ended: EndedTerminated}
		}
	}
	// Enrollments inside the grace at the pass's start are not judged.
	ms.rows = append(ms.rows, store.ActiveEnrollment{Enrollment: activities.Enrollment{ID: "young", WorkflowID: "wf-young"}, StartedAt: now.Add(-time.Minute)})
	fw.fates["young"] = Fate{Ended: EndedTerminated}
	a := &Activities{Store: ms, Workflows: fw, Logger: quietLog}

	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(quietLog))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(now)
	env.RegisterWorkflowWithOptions(Workflow, workflow.RegisterOptions{Name: WorkflowName})
	env.RegisterActivity(a.ReconcilePage)
	env.ExecuteWorkflow(WorkflowName, Input{})
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow ended with %v, want continue-as-new", err)
	}
	var next Input
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	perRun := CallsPerRun * PagesPerCall * DefaultPageSize
	if next.Counts.Checked != perRun || next.Counts.Closed != perRun/10 || next.After.ID != fmt.Sprintf("e%05d", perRun-1) {
		t.Errorf("continued with %+v, want %d checked, %d closed, cursor at e%05d", next, perRun, perRun/10, perRun-1)
	}
	if !next.StartedBefore.Equal(now.Add(-DefaultGrace)) {
		t.Errorf("cutoff %v, want the start time minus the default grace", next.StartedBefore)
	}

	env = s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Workflow, workflow.RegisterOptions{Name: WorkflowName})
	env.RegisterActivity(a.ReconcilePage)
	env.ExecuteWorkflow(WorkflowName, next)
	var res Result
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Checked != n || res.Closed != n/10 || res.Ended[EndedTerminated] != n/10 || len(ms.shut) != n/10 {
		t.Errorf("final %+v with %d closed in the store, want %d checked and %d closed", res, len(ms.shut), n, n/10)
	}
	if ms.shut["young"] {
		t.Error("closed an enrollment inside the grace")
	}
}

// TestPageFailsOnTemporalError: an error from Temporal (other than an
// invalid ID) fails the call, so that the activity is retried, with the
// cursor still before the page.
func TestPageFailsOnTemporalError(t *testing.T) {
	ms := &memStore{shut: map[string]bool{}}
	for i := range 5 {
		id := fmt.Sprintf("e%d", i)
		ms.rows = append(ms.rows, store.ActiveEnrollment{Enrollment: activities.Enrollment{ID: id, WorkflowID: "wf-" + id}, StartedAt: t0})
	}
	fw := &fakeWorkflows{fates: map[string]Fate{}, errs: map[string]error{"e2": serviceerror.NewUnavailable("frontend down")}}
	a := &Activities{Store: ms, Workflows: fw, Logger: quietLog, Concurrency: 1}
	res, err := a.ReconcilePage(context.Background(), PageRequest{StartedBefore: t0.Add(time.Hour), Limit: 10})
	var un *serviceerror.Unavailable
	if !errors.As(err, &un) || res.Done || res.Next != (store.Cursor{}) {
		t.Fatalf("page with an unavailable Temporal: %+v, %v; want the error, not done, cursor unmoved", res, err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	for _, c := range []struct {
		interval, grace string
		want            Config
		bad             bool
	}{
		{"", "", Config{Interval: 10 * time.Minute, Grace: 10 * time.Minute}, false},
		{"1h", "30m", Config{Interval: time.Hour, Grace: 30 * time.Minute}, false},
		{"off", "", Config{Interval: 0, Grace: 10 * time.Minute}, false},
		{"", "0s", Config{Interval: 10 * time.Minute, Grace: 0}, false},
		{"10", "", Config{}, true},
		{"500ms", "", Config{}, true},
		{"", "-1m", Config{}, true},
		{"", "soon", Config{}, true},
	} {
		t.Setenv("RAPPORT_RECONCILE_INTERVAL", c.interval)
		t.Setenv("RAPPORT_RECONCILE_GRACE", c.grace)
		got, err := ConfigFromEnv()
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("interval %q grace %q: %+v, %v; want %+v (error: %v)", c.interval, c.grace, got, err, c.want, c.bad)
		}
	}
}

// pageOf is a memStore of enrollments e0, e1, … started a second apart.
func pageOf(n int) *memStore {
	ms := &memStore{shut: map[string]bool{}}
	for i := range n {
		id := fmt.Sprintf("e%d", i)
		ms.rows = append(ms.rows, store.ActiveEnrollment{Enrollment: activities.Enrollment{ID: id, WorkflowID: "wf-" + id}, StartedAt: t0.Add(time.Duration(i) * time.Second)})
	}
	return ms
}

// TestPageSkipsWhatItCannotJudge: an enrollment Temporal answers about
// with an error that is not about Temporal as a whole (here the oldest,
// which every pass meets first) is skipped with a warning and counted by
// why, and the page goes on: the others are closed, and the cursor moves
// past it, so the next pass does not stop there either.
func TestPageSkipsWhatItCannotJudge(t *testing.T) {
	ms := pageOf(6)
	fw := &fakeWorkflows{retention: time.Hour,
		fates: map[string]Fate{"e1": {Ended: EndedTerminated}, "e3": {Ended: EndedTimedOut}, "e5": {Ended: EndedCanceled}},
		errs: map[string]error{
			"e0": errors.New("history of workflow wf-e0 cannot be read"),
			"e2": fmt.Errorf("describe: %w", serviceerror.NewInternal("shard corrupted")),
			"e4": serviceerror.NewInvalidArgument("RunId is not valid UUID"),
		}}
	var mu sync.Mutex
	var skipped []Skipped
	a := &Activities{Store: ms, Workflows: fw, Logger: quietLog, Concurrency: 2,
		OnSkipped: func(s Skipped) { mu.Lock(); skipped = append(skipped, s); mu.Unlock() }}
	res, err := a.ReconcilePage(context.Background(), PageRequest{StartedBefore: t0.Add(time.Hour), Limit: 10})
	if err != nil {
		t.Fatalf("a page with enrollments that cannot be judged failed: %v", err)
	}
	want := Counts{Checked: 6, Closed: 3, Skipped: 3, SkippedBy: map[string]int{SkipError: 2, SkipInvalidID: 1},
		Ended: map[string]int{EndedTerminated: 1, EndedTimedOut: 1, EndedCanceled: 1}}
	if fmt.Sprint(res.Counts) != fmt.Sprint(want) || res.Next.ID != "e5" {
		t.Errorf("page %+v, want counts %+v and the cursor past the page (e5)", res, want)
	}
	for _, id := range []string{"e1", "e3", "e5"} {
		if !ms.shut[id] {
			t.Errorf("%s was not closed", id)
		}
	}
	for _, id := range []string{"e0", "e2", "e4"} {
		if ms.shut[id] {
			t.Errorf("%s, which could not be judged, was closed", id)
		}
	}
	sort.Slice(skipped, func(i, j int) bool { return skipped[i].Enrollment.ID < skipped[j].Enrollment.ID })
	if len(skipped) != 3 || skipped[0].Why != SkipError || skipped[0].Err == nil || skipped[2].Why != SkipInvalidID {
		t.Errorf("OnSkipped saw %+v", skipped)
	}
}

// TestPageFailsOnDatabaseError: a close the database cannot make fails
// the call (PostgreSQL down concerns every enrollment).
func TestPageFailsOnDatabaseError(t *testing.T) {
	ms := pageOf(3)
	fw := &fakeWorkflows{fates: map[string]Fate{"e1": {Ended: EndedTerminated}}}
	down := errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	a := &Activities{Store: failingCloses{ms, down}, Workflows: fw, Logger: quietLog}
	if res, err := a.ReconcilePage(context.Background(), PageRequest{StartedBefore: t0.Add(time.Hour), Limit: 10}); !errors.Is(err, down) || res.Next != (store.Cursor{}) {
		t.Fatalf("page with the database down: %+v, %v; want the error, cursor unmoved", res, err)
	}
}

type failingCloses struct {
	*memStore
	err error
}

func (f failingCloses) CloseActive(context.Context, activities.Outcome) (bool, error) {
	return false, f.err
}

// TestWrongNamespaceClosesNothingNotFound: asked of a namespace that
// holds no Journey workflow (TEMPORAL_NAMESPACE wrong), where every
// workflow is "not found", a pass closes nothing as not found, however
// old the enrollment, and fails naming TEMPORAL_NAMESPACE; in an activity
// the failure is not retried.
func TestWrongNamespaceClosesNothingNotFound(t *testing.T) {
	ms := pageOf(4)
	fw := &fakeWorkflows{retention: time.Hour, noJourneys: true, fates: map[string]Fate{}}
	for _, r := range ms.rows {
		fw.fates[r.ID] = Fate{Ended: EndedNotFound}
	}
	a := &Activities{Store: ms, Workflows: fw, Logger: quietLog, Now: func() time.Time { return t0.Add(30 * 24 * time.Hour) }}
	req := PageRequest{StartedBefore: t0.Add(time.Hour), Limit: 10}
	_, err := a.Pass(context.Background(), PassRequest{StartedBefore: req.StartedBefore})
	var wrong *WrongNamespaceError
	if !errors.As(err, &wrong) || !strings.Contains(err.Error(), "TEMPORAL_NAMESPACE") {
		t.Fatalf("pass in a namespace without journeys: %v, want a WrongNamespaceError naming TEMPORAL_NAMESPACE", err)
	}
	if len(ms.shut) != 0 {
		t.Fatalf("closed %v in the wrong namespace", ms.shut)
	}

	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(quietLog))
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a.ReconcilePage)
	_, err = env.ExecuteActivity(a.ReconcilePage, req)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != ErrTypeWrongNamespace {
		t.Fatalf("activity in a namespace without journeys: %v, want a non-retryable %s", err, ErrTypeWrongNamespace)
	}
	if len(ms.shut) != 0 {
		t.Fatalf("closed %v in the wrong namespace", ms.shut)
	}

	// The right namespace: the same enrollments, older than the retention,
	// are closed as not found, unless KeepNotFound.
	fw.noJourneys = false
	a.KeepNotFound = true
	counts, err := a.Pass(context.Background(), PassRequest{StartedBefore: req.StartedBefore})
	if err != nil || counts.SkippedBy[SkipNotFound] != 4 || len(ms.shut) != 0 {
		t.Fatalf("KeepNotFound: %+v, %v, closed %v; want all 4 skipped as not found, none closed", counts, err, ms.shut)
	}
	a.KeepNotFound = false
	counts, err = a.Pass(context.Background(), PassRequest{StartedBefore: req.StartedBefore})
	if err != nil || counts.Ended[EndedNotFound] != 4 || len(ms.shut) != 4 {
		t.Fatalf("right namespace: %+v, %v, closed %v; want all 4 closed as not found", counts, err, ms.shut)
	}
}

// serialStore wraps a Store and records how many CloseActive calls ran
// at once. Each close lingers, so that closes made concurrently overlap.
type serialStore struct {
	Store
	mu             sync.Mutex
	closing, most  int
	linger         time.Duration
	closes, active int
}

func (s *serialStore) CloseActive(ctx context.Context, o activities.Outcome) (bool, error) {
	s.mu.Lock()
	s.closing++
	s.closes++
	s.most = max(s.most, s.closing)
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.closing--; s.mu.Unlock() }()
	time.Sleep(s.linger)
	return s.Store.CloseActive(ctx, o)
}

// barrierWorkflows answers every fate "terminated", but only once n
// questions are being asked at once (or a second has passed): it proves
// the Temporal requests of a page run concurrently.
type barrierWorkflows struct {
	fakeWorkflows
	mu          sync.Mutex
	n, waiting  int
	release     chan struct{}
	concurrent  int
	releaseOnce sync.Once
}

func (b *barrierWorkflows) Fate(ctx context.Context, workflowID, enrollmentID string) (Fate, error) {
	b.mu.Lock()
	b.waiting++
	b.concurrent = max(b.concurrent, b.waiting)
	if b.waiting >= b.n {
		b.releaseOnce.Do(func() { close(b.release) })
	}
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-time.After(time.Second):
	}
	b.mu.Lock()
	b.waiting--
	b.mu.Unlock()
	return Fate{Ended: EndedTerminated, Detail: "bad deploy"}, nil
}

// TestCallHoldsOneConnection: a reconcile activity holds at most one
// database connection, whatever its concurrency, as the worker's slot
// sizing assumes (worker/slots.go): the workflows of a page are asked
// about concurrently, but their closes are made one at a time, through a
// pool of a single connection.
func TestCallHoldsOneConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pc, err := pgxpool.ParseConfig(storetest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	pc.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := store.New(pool, storetest.Config())
	const n = 16
	for i := range n {
		id := fmt.Sprintf("e%02d", i)
		if err := st.UpsertCustomer(ctx, rules.Customer{ID: "cust-" + id}); err != nil {
			t.Fatal(err)
		}
		e := activities.Enrollment{ID: id, WorkflowID: "wf-" + id, Playbook: "pb", Version: "v1", CustomerID: "cust-" + id}
		if res, err := st.RecordStart(ctx, activities.EntryRequest{Enrollment: e, Reentry: "never", At: t0}); err != nil || !res.Admitted {
			t.Fatalf("start %s: %+v %v", id, res, err)
		}
	}
	ss := &serialStore{Store: st, linger: 5 * time.Millisecond}
	bw := &barrierWorkflows{n: DefaultConcurrency, release: make(chan struct{})}
	a := &Activities{Store: ss, Workflows: bw, Logger: quietLog}
	res, err := a.ReconcilePage(ctx, PageRequest{StartedBefore: t0.Add(time.Hour), Limit: n})
	if err != nil {
		t.Fatalf("pass over a one-connection pool: %v", err)
	}
	if res.Closed != n || ss.closes != n {
		t.Fatalf("closed %d (%d closes made), want %d", res.Closed, ss.closes, n)
	}
	if ss.most != 1 {
		t.Errorf("%d closes ran at once, want 1: a reconcile activity must hold at most one connection", ss.most)
	}
	if bw.concurrent < DefaultConcurrency {
		t.Errorf("at most %d workflows asked about at once, want %d", bw.concurrent, DefaultConcurrency)
	}
	var active int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM enrollments WHERE status = 'active'`).Scan(&active); err != nil || active != 0 {
		t.Errorf("%d enrollments still active (%v), want 0", active, err)
	}
}

// With payload encryption on, a failed journey's message is in the
// failure's encoded attributes: the reason still quotes it.
func TestFailureMessageOfAnEncryptedFailure(t *testing.T) {
	spec, err := payloadcrypt.GenerateKeySpec("k1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := payloadcrypt.ParseKeys(spec)
	if err != nil {
		t.Fatal(err)
	}
	codec := payloadcrypt.New(keys, nil, payloadcrypt.Options{})
	f := codec.FailureConverter().ErrorToFailure(errors.New("load plan: no such version"))
	if f.GetMessage() == "load plan: no such version" {
		t.Fatal("the failure converter left the message in clear")
	}
	if got := (Temporal{DataConverter: codec.DataConverter()}).failureMessage(f); got != "load plan: no such version" {
		t.Errorf("failure message %q", got)
	}
	plain := temporal.GetDefaultFailureConverter().ErrorToFailure(errors.New("plain"))
	if got := (Temporal{}).failureMessage(plain); got != "plain" {
		t.Errorf("clear failure message %q", got)
	}
}
