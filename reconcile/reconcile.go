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
// An enrollment the pass cannot judge is skipped, with a warning and a
// reason (Skipped), and the pass goes on with the others: a pass fails
// only on what stops it judging any enrollment (Temporal or PostgreSQL
// unreachable, a namespace that is not the journeys', see
// WrongNamespaceError). A workflow Temporal does not find is taken as
// removed by retention only in a namespace that holds journeys, and only
// for an enrollment older than the namespace's retention.
//
// Passes run as a Temporal Schedule (rapport-reconcile, see Ensure) that
// starts the Reconcile workflow on the worker, and on demand with
// `rapport reconcile`.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

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
	// HasJourneys reports whether the namespace holds any Journey
	// workflow, running or closed within its retention. A namespace that
	// holds none is not the one the journeys run in.
	HasJourneys(ctx context.Context) (bool, error)
}

// Defaults of a pass.
const (
	// DefaultPageSize is how many enrollments one query reads.
	DefaultPageSize = 100
	// DefaultConcurrency bounds the enrollments judged at once (each is
	// one or more Temporal calls). Their closes in PostgreSQL are made
	// one at a time whatever the concurrency, so a call holds at most one
	// database connection.
	DefaultConcurrency = 8
)

// Why an enrollment was skipped: Skipped.Why, Counts.SkippedBy, and the
// why label of rapport_reconcile_skipped_total.
const (
	// SkipInvalidID: Temporal rejects the enrollment's workflow or run ID
	// as malformed.
	SkipInvalidID = "invalid_id"
	// SkipNotFoundRecent: Temporal does not find the workflow, yet the
	// enrollment started within the namespace's retention, so retention
	// cannot have removed it.
	SkipNotFoundRecent = "not_found_recent"
	// SkipNotFound: Temporal does not find the workflow and
	// Activities.KeepNotFound is set (`rapport reconcile` without
	// --close-not-found).
	SkipNotFound = "not_found"
	// SkipError: Temporal answered about this enrollment's workflow with
	// an error that is not about Temporal as a whole, or PostgreSQL
	// refused this enrollment's close. The next pass tries again.
	SkipError = "error"
)

// Activities run passes; register the value with a worker.
type Activities struct {
	Store     Store
	Workflows Workflows
	Logger    *slog.Logger // default slog.Default()
	// Concurrency bounds the enrollments judged at once;
	// DefaultConcurrency when 0.
	Concurrency int
	// KeepNotFound leaves an enrollment whose workflow Temporal does not
	// find active (skipped, SkipNotFound) instead of closing it as
	// removed by retention: `rapport reconcile` without
	// --close-not-found.
	KeepNotFound bool
	// OnClosed, when set, receives each enrollment closed, or that a dry
	// run would close (Closed.DryRun); the worker counts them in a
	// metric. It is called from several goroutines at once.
	OnClosed func(Closed)
	// OnSkipped, when set, receives each enrollment skipped; the worker
	// counts them in a metric. It is called from several goroutines at
	// once.
	OnSkipped func(Skipped)
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

// Skipped is one enrollment a pass left active without knowing whether
// its workflow has ended, or (SkipNotFound) without closing it.
type Skipped struct {
	Enrollment store.ActiveEnrollment
	Why        string // SkipInvalidID, ...
	Err        error  // what Temporal or PostgreSQL answered, if anything
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
	// Skipped counts enrollments left active that could not be judged
	// (or, SkipNotFound, were not to be closed); SkippedBy splits them by
	// why (SkipInvalidID, ...).
	Skipped   int            `json:"skipped"`
	SkippedBy map[string]int `json:"skipped_by,omitempty"`
	// Ended counts the closed enrollments by how their workflow ended.
	Ended map[string]int `json:"ended,omitempty"`
}

// Add returns c + o.
func (c Counts) Add(o Counts) Counts {
	return Counts{Checked: c.Checked + o.Checked, Open: c.Open + o.Open, Closed: c.Closed + o.Closed,
		Raced: c.Raced + o.Raced, Skipped: c.Skipped + o.Skipped,
		SkippedBy: addMaps(c.SkippedBy, o.SkippedBy), Ended: addMaps(c.Ended, o.Ended)}
}

func addMaps(a, b map[string]int) map[string]int {
	var sum map[string]int
	for _, m := range []map[string]int{a, b} {
		for k, v := range m {
			if sum == nil {
				sum = map[string]int{}
			}
			sum[k] += v
		}
	}
	return sum
}

// WrongNamespaceError fails a pass that met an enrollment whose workflow
// Temporal does not find, in a namespace that holds no Journey workflow
// at all: the pass is asking the wrong namespace (TEMPORAL_NAMESPACE),
// where it would find none of the journeys and close every enrollment as
// "workflow not found". Nothing is closed as not found.
type WrongNamespaceError struct {
	Enrollment string // the first enrollment not found
	Namespace  string // the namespace asked, when known
}

func (e *WrongNamespaceError) Error() string {
	ns := "the namespace"
	if e.Namespace != "" {
		ns = fmt.Sprintf("namespace %q", e.Namespace)
	}
	return fmt.Sprintf("reconcile: Temporal does not find the workflow of enrollment %s, and %s holds no Journey workflow at all: "+
		"it is not the namespace the journeys run in; set TEMPORAL_NAMESPACE to the worker's. Nothing was closed as \"workflow not found\"", e.Enrollment, ns)
}

// ErrTypeWrongNamespace is the application error type a reconcile
// activity fails with, not retried, on a WrongNamespaceError.
const ErrTypeWrongNamespace = "RapportReconcileWrongNamespace"

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
// at least one retention period ago, and only in a namespace that holds
// journeys. Not found any sooner, the enrollment is skipped with a
// warning (SkipNotFoundRecent); in a namespace without a single Journey
// workflow the call fails with a WrongNamespaceError (inside an activity,
// a non-retryable application error of type ErrTypeWrongNamespace).
//
// An enrollment that cannot be judged (Temporal rejects its IDs, or
// answers about its workflow with an error that is not about Temporal as
// a whole) is skipped with a warning, and the page goes on. Errors that
// stop every enrollment being judged (Temporal unavailable, PostgreSQL
// down, the context ending) fail the call, to be retried.
//
// However many enrollments it judges at once, a call makes its database
// writes one at a time: it holds at most one connection.
func (a *Activities) ReconcilePage(ctx context.Context, r PageRequest) (PageResult, error) {
	res := PageResult{Next: r.After}
	if activity.IsActivity(ctx) && activity.HasHeartbeatDetails(ctx) {
		var resumed PageResult
		if err := activity.GetHeartbeatDetails(ctx, &resumed); err == nil {
			res = resumed
		}
	}
	pages := max(r.Pages, 1)
	c := &call{dry: r.DryRun}
	for range pages {
		page, err := a.Store.ActiveEnrollments(ctx, store.ActiveQuery{StartedBefore: r.StartedBefore, After: res.Next, Limit: r.Limit})
		if err != nil {
			return res, err
		}
		if len(page) == 0 {
			res.Done = true
			return res, nil
		}
		before := res
		c.beat = func() { heartbeat(ctx, before) } // a retry resumes at this page
		counts, err := a.judgePage(ctx, page, c)
		if err != nil {
			var wrong *WrongNamespaceError
			if errors.As(err, &wrong) && activity.IsActivity(ctx) {
				if wrong.Namespace == "" {
					wrong.Namespace = activity.GetInfo(ctx).WorkflowNamespace
				}
				err = temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeWrongNamespace, err)
			}
			return res, err
		}
		res.Counts = res.Counts.Add(counts)
		last := page[len(page)-1]
		res.Next = store.Cursor{StartedAt: last.StartedAt, ID: last.ID}
		heartbeat(ctx, res)
	}
	return res, nil
}

func heartbeat(ctx context.Context, progress PageResult) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, progress)
	}
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

// call is the state one ReconcilePage call shares between the
// enrollments it judges.
type call struct {
	dry       bool
	retention lazy[time.Duration]
	journeys  lazy[bool]
	// write serializes the call's database writes: one connection at
	// most, whatever the concurrency of the Temporal requests.
	write sync.Mutex
	beat  func() // heartbeat, between enrollments of a page
}

// lazy is a value read once per call, when first needed.
type lazy[T any] struct {
	mu   sync.Mutex
	v    T
	read bool
}

func (l *lazy[T]) get(ctx context.Context, read func(context.Context) (T, error)) (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.read {
		return l.v, nil
	}
	v, err := read(ctx)
	if err != nil {
		return v, err
	}
	l.v, l.read = v, true
	return v, nil
}

// verdict is what became of one enrollment in a pass.
type verdict int

const (
	verdictOpen verdict = iota
	verdictClosed
	verdictRaced
	verdictSkipped
)

// judged is the verdict on one enrollment: with how its workflow ended
// when closed, and why when skipped.
type judged struct {
	verdict verdict
	ended   string
	why     string
}

// judgePage judges the enrollments of one page, Concurrency at a time.
// An enrollment that cannot be judged is counted as skipped; the first
// error that concerns every enrollment stops the rest of the page and is
// returned.
func (a *Activities) judgePage(ctx context.Context, page []store.ActiveEnrollment, c *call) (Counts, error) {
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
			j, err := a.judge(ctx, e, c)
			mu.Lock()
			defer mu.Unlock()
			if c.beat != nil {
				c.beat()
			}
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			counts.Checked++
			switch j.verdict {
			case verdictOpen:
				counts.Open++
			case verdictClosed:
				counts.Closed++
				counts.Ended = addMaps(counts.Ended, map[string]int{j.ended: 1})
			case verdictRaced:
				counts.Raced++
			case verdictSkipped:
				counts.Skipped++
				counts.SkippedBy = addMaps(counts.SkippedBy, map[string]int{j.why: 1})
			}
		}()
	}
	wg.Wait()
	return counts, firstErr
}

// judge decides one enrollment and closes it when its workflow has
// closed. It returns an error only for what concerns every enrollment;
// an enrollment it cannot judge is skipped.
func (a *Activities) judge(ctx context.Context, e store.ActiveEnrollment, c *call) (judged, error) {
	log := a.logger().With("enrollment", e.ID, "playbook", e.Playbook, "customer", e.CustomerID, "workflow_id", e.WorkflowID)
	f, err := a.Workflows.Fate(ctx, e.WorkflowID, e.ID)
	if err != nil {
		if isGlobal(ctx, err) {
			return judged{}, fmt.Errorf("reconcile enrollment %s: %w", e.ID, err)
		}
		if isInvalid(err) {
			return a.skip(log, e, SkipInvalidID, err, "reconcile: enrollment skipped: Temporal rejects its workflow or run ID"), nil
		}
		return a.skip(log, e, SkipError, err, "reconcile: enrollment skipped: Temporal answered with an error about its workflow; the next pass tries again"), nil
	}
	if f.Open {
		return judged{verdict: verdictOpen}, nil
	}
	if f.Ended == EndedNotFound {
		has, err := c.journeys.get(ctx, a.Workflows.HasJourneys)
		if err != nil {
			return judged{}, fmt.Errorf("reconcile enrollment %s: workflow not found: %w", e.ID, err)
		}
		if !has {
			return judged{}, &WrongNamespaceError{Enrollment: e.ID}
		}
		keep, err := c.retention.get(ctx, a.Workflows.Retention)
		if err != nil {
			return judged{}, fmt.Errorf("reconcile enrollment %s: %w", e.ID, err)
		}
		if e.StartedAt.After(a.now().Add(-keep)) {
			log = log.With("started_at", e.StartedAt, "retention", keep)
			return a.skip(log, e, SkipNotFoundRecent, nil, "reconcile: enrollment skipped: its workflow is not found, yet it started within the namespace's retention, "+
				"so retention cannot have removed it; is this worker on the namespace the journeys run in (TEMPORAL_NAMESPACE)?"), nil
		}
		if a.KeepNotFound {
			a.notify(Skipped{Enrollment: e, Why: SkipNotFound})
			return judged{verdict: verdictSkipped, why: SkipNotFound}, nil
		}
	}
	status, reason := f.Outcome()
	cl := Closed{Enrollment: e, Ended: f.Ended, Status: status, Reason: reason, DryRun: c.dry}
	if c.dry {
		log.Info("reconcile: would close enrollment (dry run)", "workflow_status", f.Ended, "status", status, "reason", reason)
		if a.OnClosed != nil {
			a.OnClosed(cl)
		}
		return judged{verdict: verdictClosed, ended: f.Ended}, nil
	}
	c.write.Lock()
	closed, err := a.Store.CloseActive(ctx, activities.Outcome{Enrollment: e.Enrollment, Status: status, Reason: reason, At: f.ClosedAt})
	c.write.Unlock()
	if err != nil {
		if ctx.Err() == nil && aboutRow(err) {
			return a.skip(log, e, SkipError, err, "reconcile: enrollment skipped: the database refused to close it"), nil
		}
		return judged{}, fmt.Errorf("reconcile enrollment %s: %w", e.ID, err)
	}
	if !closed {
		return judged{verdict: verdictRaced}, nil
	}
	log.Info("reconcile: closed enrollment whose workflow ended without recording its outcome",
		"workflow_status", f.Ended, "status", status, "reason", reason)
	if a.OnClosed != nil {
		a.OnClosed(cl)
	}
	return judged{verdict: verdictClosed, ended: f.Ended}, nil
}

// skip logs a skipped enrollment at WARN and reports it.
func (a *Activities) skip(log *slog.Logger, e store.ActiveEnrollment, why string, err error, msg string) judged {
	if err != nil {
		log = log.With("error", err)
	}
	log.Warn(msg, "why", why)
	a.notify(Skipped{Enrollment: e, Why: why, Err: err})
	return judged{verdict: verdictSkipped, why: why}
}

func (a *Activities) notify(s Skipped) {
	if a.OnSkipped != nil {
		a.OnSkipped(s)
	}
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

// globalCodes are the gRPC codes of Temporal errors that concern every
// request, not one workflow: the server (or the way to it) is down,
// overloaded, or refuses this client.
var globalCodes = map[string]bool{
	"Unavailable": true, "DeadlineExceeded": true, "Canceled": true,
	"ResourceExhausted": true, "PermissionDenied": true, "Unauthenticated": true,
}

// isGlobal reports whether a Temporal error concerns every enrollment
// (Temporal unreachable, overloaded or refusing this client, the
// namespace gone, the call's context ended), so the call fails and is
// retried, rather than one enrollment's workflow.
func isGlobal(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var (
		nsNotFound  *serviceerror.NamespaceNotFound
		nsNotActive *serviceerror.NamespaceNotActive
		nsInvalid   *serviceerror.NamespaceInvalidState
	)
	if errors.As(err, &nsNotFound) || errors.As(err, &nsNotActive) || errors.As(err, &nsInvalid) {
		return true
	}
	return globalCodes[serviceerror.ToStatus(err).Code().String()]
}

// aboutRow reports whether a database error concerns the row being
// written rather than the database (a permanent store error, a data or
// integrity violation), so that only that enrollment is skipped.
func aboutRow(err error) bool {
	if errors.Is(err, activities.ErrPermanent) {
		return true
	}
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (strings.HasPrefix(pg.Code, "22") || strings.HasPrefix(pg.Code, "23"))
}
