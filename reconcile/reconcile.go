// Package reconcile closes enrollments that would otherwise stay active
// forever. An enrollment row leaves status active only through the
// journey's own RecordOutcome, at the end of its workflow; a workflow
// that never gets there (terminated by an operator, timed out, reset, a
// playbook that no longer loads, a RecordOutcome that gave up, a history
// removed by retention) leaves the row active, and RecordStart then turns
// the customer away from that playbook for good (reason "active").
//
// A pass pages through the active enrollments that started more than a
// grace period ago, oldest first, asks Temporal what became of each one's
// workflow (Fate), and closes those whose workflow has closed: with the
// journey's own outcome when it completed with one, as exited when it was
// canceled, and as failed otherwise, with a reason saying what happened
// ("workflow terminated: …", "workflow timed out", …). A close applies
// only while the row is still active, so an outcome the journey records
// first always stands.
//
// Passes run as a Temporal Schedule (rapport-reconcile, see Ensure) that
// starts the Reconcile workflow on the worker, and on demand with
// `rapport reconcile`.
package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/store"
)

// Store is what a pass reads and writes. *store.Store implements it.
type Store interface {
	ActiveEnrollments(ctx context.Context, q store.ActiveQuery) ([]store.ActiveEnrollment, error)
	CloseActive(ctx context.Context, o activities.Outcome) (bool, error)
}

// Workflows tells what became of enrollments' workflows. Temporal
// implements it.
type Workflows interface {
	Fate(ctx context.Context, workflowID, enrollmentID string) (Fate, error)
	// Retention is how long the namespace keeps closed workflows.
	Retention(ctx context.Context) (time.Duration, error)
}

// Defaults of a pass.
const (
	// DefaultPageSize is how many enrollments one query reads.
	DefaultPageSize = 100
	// DefaultConcurrency bounds the enrollments judged at once (each is
	// one or more Temporal calls, and a close in PostgreSQL).
	DefaultConcurrency = 8
)

// Activities run passes; register the value with a worker.
type Activities struct {
	Store     Store
	Workflows Workflows
	Logger    *slog.Logger // default slog.Default()
	// Concurrency bounds the enrollments judged at once;
	// DefaultConcurrency when 0.
	Concurrency int
	// OnClosed, when set, receives each enrollment closed, or that a dry
	// run would close (Closed.DryRun); the worker counts them in a
	// metric. It is called from several goroutines at once.
	OnClosed func(Closed)
	// Now is the clock the retention check reads; default time.Now.
	Now func() time.Time
}

// Closed is one enrollment a pass closed (or, in a dry run, would close).
type Closed struct {
	Enrollment store.ActiveEnrollment
	Ended      string // how its workflow ended: EndedTerminated, ...
	Status     activities.Status
	Reason     string
	DryRun     bool // nothing was written
}

// Counts add up over the pages of a pass.
type Counts struct {
	Checked int `json:"checked"` // active enrollments judged
	Open    int `json:"open"`    // workflow still running: left alone
	Closed  int `json:"closed"`  // closed (dry run: would be)
	// Raced counts enrollments whose workflow had closed but whose row
	// was no longer active when the pass closed it: the journey's own
	// outcome arrived first and stands.
	Raced int `json:"raced"`
	// Skipped counts enrollments that could not be judged: Temporal
	// rejected their IDs, or said their workflow was not found although
	// retention cannot have removed it yet (see PageRequest).
	Skipped int `json:"skipped"`
	// Ended counts the closed enrollments by how their workflow ended.
	Ended map[string]int `json:"ended,omitempty"`
}

// Add returns c + o.
func (c Counts) Add(o Counts) Counts {
	sum := Counts{Checked: c.Checked + o.Checked, Open: c.Open + o.Open, Closed: c.Closed + o.Closed,
		Raced: c.Raced + o.Raced, Skipped: c.Skipped + o.Skipped}
	for _, m := range []map[string]int{c.Ended, o.Ended} {
		for k, v := range m {
			if sum.Ended == nil {
				sum.Ended = map[string]int{}
			}
			sum.Ended[k] += v
		}
	}
	return sum
}

// PageRequest asks for the next pages of a pass.
type PageRequest struct {
	// StartedBefore is the pass's cutoff: enrollments that started at or
	// after it are not judged (the grace period).
	StartedBefore time.Time    `json:"started_before"`
	After         store.Cursor `json:"after"`
	Limit         int          `json:"limit,omitempty"` // enrollments per query; DefaultPageSize when 0
	Pages         int          `json:"pages,omitempty"` // queries this call makes at most; 1 when 0
	// DryRun judges but closes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// PageResult is what one call did.
type PageResult struct {
	Next store.Cursor `json:"next"` // cursor for the next call
	Done bool         `json:"done"` // no active enrollment after Next
	Counts
}

// ReconcilePage judges up to r.Pages pages of active enrollments after
// the cursor and closes those whose workflow has closed. Progress is
// recorded in a heartbeat after each page, so a retried call resumes
// there; enrollments of a page judged twice are closed once.
//
// A workflow Temporal does not find is taken as removed after the
// namespace's retention, which can only be once the enrollment started
// at least one retention period ago. Not found any sooner, something
// else is wrong (most likely a worker pointed at another namespace than
// the journeys run in, where it would find none of them): the enrollment
// is skipped with a warning rather than closed.
//
// Errors from Temporal or the database fail the call, to be retried; an
// enrollment whose IDs Temporal rejects as invalid is skipped.
func (a *Activities) ReconcilePage(ctx context.Context, r PageRequest) (PageResult, error) {
	res := PageResult{Next: r.After}
	if activity.IsActivity(ctx) && activity.HasHeartbeatDetails(ctx) {
		var resumed PageResult
		if err := activity.GetHeartbeatDetails(ctx, &resumed); err == nil {
			res = resumed
		}
	}
	pages := max(r.Pages, 1)
	retention := &retention{w: a.Workflows}
	for range pages {
		page, err := a.Store.ActiveEnrollments(ctx, store.ActiveQuery{StartedBefore: r.StartedBefore, After: res.Next, Limit: r.Limit})
		if err != nil {
			return res, err
		}
		if len(page) == 0 {
			res.Done = true
			return res, nil
		}
		counts, err := a.judgePage(ctx, page, r.DryRun, retention)
		if err != nil {
			return res, err
		}
		res.Counts = res.Counts.Add(counts)
		last := page[len(page)-1]
		res.Next = store.Cursor{StartedAt: last.StartedAt, ID: last.ID}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, res)
		}
	}
	return res, nil
}

// PassRequest asks for one whole pass.
type PassRequest struct {
	StartedBefore time.Time
	DryRun        bool
}

// Pass runs one whole pass in this process, page after page (`rapport
// reconcile`; the worker runs passes as the Reconcile workflow instead).
func (a *Activities) Pass(ctx context.Context, r PassRequest) (Counts, error) {
	var total Counts
	req := PageRequest{StartedBefore: r.StartedBefore, DryRun: r.DryRun}
	for {
		res, err := a.ReconcilePage(ctx, req)
		total = total.Add(res.Counts)
		if err != nil || res.Done {
			return total, err
		}
		req.After = res.Next
	}
}

// verdict is what became of one enrollment in a pass.
type verdict int

const (
	verdictOpen verdict = iota
	verdictClosed
	verdictRaced
	verdictSkipped
)

// judgePage judges the enrollments of one page, Concurrency at a time.
// The first error stops the rest of the page and is returned.
func (a *Activities) judgePage(ctx context.Context, page []store.ActiveEnrollment, dry bool, ret *retention) (Counts, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		counts   Counts
		firstErr error
		wg       sync.WaitGroup
	)
	n := a.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	sem := make(chan struct{}, n)
	for _, e := range page {
		sem <- struct{}{}
		if ctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			v, ended, err := a.judge(ctx, e, dry, ret)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			counts.Checked++
			switch v {
			case verdictOpen:
				counts.Open++
			case verdictClosed:
				counts.Closed++
				if counts.Ended == nil {
					counts.Ended = map[string]int{}
				}
				counts.Ended[ended]++
			case verdictRaced:
				counts.Raced++
			case verdictSkipped:
				counts.Skipped++
			}
		}()
	}
	wg.Wait()
	return counts, firstErr
}

// judge decides one enrollment and closes it when its workflow has closed.
func (a *Activities) judge(ctx context.Context, e store.ActiveEnrollment, dry bool, ret *retention) (verdict, string, error) {
	log := a.logger().With("enrollment", e.ID, "playbook", e.Playbook, "customer", e.CustomerID, "workflow_id", e.WorkflowID)
	f, err := a.Workflows.Fate(ctx, e.WorkflowID, e.ID)
	if isInvalid(err) {
		log.Warn("reconcile: enrollment skipped: Temporal rejects its workflow or run ID", "error", err)
		return verdictSkipped, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("reconcile enrollment %s: %w", e.ID, err)
	}
	if f.Open {
		return verdictOpen, "", nil
	}
	if f.Ended == EndedNotFound {
		keep, err := ret.get(ctx)
		if err != nil {
			return 0, "", fmt.Errorf("reconcile enrollment %s: %w", e.ID, err)
		}
		if e.StartedAt.After(a.now().Add(-keep)) {
			log.Warn("reconcile: enrollment skipped: its workflow is not found, yet it started within the namespace's retention, "+
				"so retention cannot have removed it; is this worker on the namespace the journeys run in (TEMPORAL_NAMESPACE)?",
				"started_at", e.StartedAt, "retention", keep)
			return verdictSkipped, "", nil
		}
	}
	status, reason := f.Outcome()
	c := Closed{Enrollment: e, Ended: f.Ended, Status: status, Reason: reason, DryRun: dry}
	if dry {
		log.Info("reconcile: would close enrollment (dry run)", "workflow_status", f.Ended, "status", status, "reason", reason)
		if a.OnClosed != nil {
			a.OnClosed(c)
		}
		return verdictClosed, f.Ended, nil
	}
	closed, err := a.Store.CloseActive(ctx, activities.Outcome{Enrollment: e.Enrollment, Status: status, Reason: reason, At: f.ClosedAt})
	if err != nil {
		return 0, "", fmt.Errorf("reconcile enrollment %s: %w", e.ID, err)
	}
	if !closed {
		return verdictRaced, "", nil
	}
	log.Info("reconcile: closed enrollment whose workflow ended without recording its outcome",
		"workflow_status", f.Ended, "status", status, "reason", reason)
	if a.OnClosed != nil {
		a.OnClosed(c)
	}
	return verdictClosed, f.Ended, nil
}

func (a *Activities) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// retention reads the namespace's retention once per call, when a
// workflow is not found.
type retention struct {
	w    Workflows
	mu   sync.Mutex
	d    time.Duration
	read bool
}

func (r *retention) get(ctx context.Context) (time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.read {
		return r.d, nil
	}
	d, err := r.w.Retention(ctx)
	if err != nil {
		return 0, err
	}
	r.d, r.read = d, true
	return d, nil
}
