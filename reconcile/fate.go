package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/workflows"
)

// How an enrollment's workflow ended (Fate.Ended, and the reason label of
// rapport_reconciled_enrollments_total).
const (
	EndedCompleted  = "completed"
	EndedFailed     = "failed"
	EndedTimedOut   = "timed_out"
	EndedCanceled   = "canceled"
	EndedTerminated = "terminated"
	EndedNotFound   = "not_found"
)

// Fate is what became of an enrollment's workflow: still open, or how the
// last run of its chain ended.
type Fate struct {
	// Open: a run of the enrollment's chain is still running (or the
	// chain continued as new into one), so the journey will record its
	// outcome itself.
	Open bool
	// Ended says how the chain's last run closed (EndedCompleted, ...),
	// or EndedNotFound when Temporal has no such workflow (removed after
	// the namespace's retention).
	Ended string
	// Detail is what Temporal says about it: the termination reason, the
	// failure message.
	Detail string
	// ClosedAt is when the last run closed; zero when unknown.
	ClosedAt time.Time
	// Result is the journey's result when the run completed (the journey
	// decided its outcome, but the outcome never reached the database).
	Result *workflows.JourneyResult
}

// maxDetail bounds the Temporal text kept in an enrollment's reason.
const maxDetail = 300

// Outcome is the status and reason an enrollment of this fate is closed
// with: the journey's own outcome when it completed with one; exited for
// a canceled workflow, as the journey itself records a cancellation;
// failed otherwise, with the reason saying what happened to the workflow.
func (f Fate) Outcome() (activities.Status, string) {
	detail := f.Detail
	if len(detail) > maxDetail {
		detail = detail[:maxDetail] + "…"
	}
	with := func(s string) string {
		if detail == "" {
			return s
		}
		return s + ": " + detail
	}
	switch f.Ended {
	case EndedCompleted:
		if r := f.Result; r != nil && r.Status != activities.StatusActive && r.Status != "" {
			return r.Status, r.Reason
		}
		return activities.StatusCompleted, "workflow completed"
	case EndedCanceled:
		return activities.StatusExited, "workflow canceled"
	case EndedTerminated:
		return activities.StatusFailed, with("workflow terminated")
	case EndedTimedOut:
		return activities.StatusFailed, "workflow timed out"
	case EndedNotFound:
		return activities.StatusFailed, "workflow not found"
	default:
		return activities.StatusFailed, with("workflow failed")
	}
}

// DefaultHops is how many runs of an enrollment's chain Fate follows one
// by one, by their close events, before it asks the visibility API for
// the chain's last run. A journey continues as new whenever its history
// grows long (about every 250 events it takes in, under a steady stream
// of them), so a chain may have thousands of runs.
const DefaultHops = 10

// maxSearches bounds the visibility searches of one Fate; past them the
// chain is followed run by run to its end.
const maxSearches = 3

// Temporal finds the fates of enrollments' workflows with a Temporal client.
type Temporal struct {
	Client client.Client
	// Namespace is the client's namespace, for Retention and
	// HasJourneys; inside an activity it defaults to the activity's
	// namespace.
	Namespace string
	// DataConverter decodes a completed journey's result and an encoded
	// failure message; default the SDK's default converter. With payload
	// encryption on it must be the client's (payloadcrypt.Codec).
	DataConverter converter.DataConverter
	// Hops: see DefaultHops (used when 0).
	Hops int
}

// Fate describes the enrollment's workflow. The workflow ID may since
// have been reused by a later enrollment of the same customer (a new
// chain, with a new first run ID), and the enrollment's own chain may
// have continued as new any number of times, so:
//
//  1. DescribeWorkflowExecution of the workflow ID gives its current run.
//     When that run belongs to the enrollment (its first run ID is the
//     enrollment ID) and is running, the enrollment is open; when it
//     has closed, its close event says how.
//  2. Otherwise (a later enrollment reused the workflow ID) the chain is
//     followed from the enrollment's first run by each run's close
//     event, until a run that did not continue as new: no close event
//     means still running (open); its close event says how the chain
//     ended. After Hops runs, the visibility API is asked for the
//     earliest run of the workflow ID that started since and did not
//     continue as new; when DescribeWorkflowExecution confirms it is of
//     the enrollment's chain (same first run ID), the chain is followed
//     from there, else run by run as before. Visibility only shortens
//     the walk: the answer is always read from close events.
//
// Temporal answering NotFound (the workflow ID, or the enrollment's run)
// means the workflow was removed after the namespace's retention: closed,
// EndedNotFound.
func (t Temporal) Fate(ctx context.Context, workflowID, enrollmentID string) (Fate, error) {
	d, err := t.Client.DescribeWorkflowExecution(ctx, workflowID, "")
	if isNotFound(err) {
		return Fate{Ended: EndedNotFound}, nil
	}
	if err != nil {
		return Fate{}, fmt.Errorf("describe workflow %s: %w", workflowID, err)
	}
	info := d.GetWorkflowExecutionInfo()
	run := enrollmentID
	if info.GetFirstRunId() == enrollmentID || info.GetExecution().GetRunId() == enrollmentID {
		if info.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return Fate{Open: true}, nil
		}
		run = info.GetExecution().GetRunId()
	}
	hops := t.Hops
	if hops <= 0 {
		hops = DefaultHops
	}
	for walked, searches := 0, 0; ; {
		ev, err := t.closeEvent(ctx, workflowID, run)
		if isNotFound(err) {
			return Fate{Ended: EndedNotFound}, nil
		}
		if err != nil {
			return Fate{}, err
		}
		if ev == nil {
			return Fate{Open: true}, nil
		}
		f, next := t.ended(ev)
		if next == "" {
			return f, nil
		}
		run = next
		if walked++; walked < hops || searches == maxSearches || !searchable(workflowID) {
			continue
		}
		walked, searches = 0, searches+1
		last, err := t.lastRun(ctx, workflowID, enrollmentID, ev.GetEventTime().AsTime())
		if err != nil {
			return Fate{}, err
		}
		if last != "" {
			run = last
		}
	}
}

// lastRun asks the visibility API for the earliest run of the workflow ID
// that started at or after since and did not continue as new, and returns
// it when it is of the enrollment's chain: the chain's last run, unless
// visibility lags. It returns "" when it finds none (visibility lags, or
// the query is not supported), leaving Fate to walk the chain; only
// errors about Temporal as a whole are returned.
func (t Temporal) lastRun(ctx context.Context, workflowID, enrollmentID string, since time.Time) (string, error) {
	// The runs of one workflow ID never overlap, so no run of an earlier
	// chain started after since; a millisecond of slack covers a
	// visibility store that keeps coarser times.
	q := fmt.Sprintf("WorkflowId = '%s' AND ExecutionStatus != 'ContinuedAsNew' AND StartTime >= '%s'",
		strings.ReplaceAll(workflowID, "'", "''"), since.Add(-time.Millisecond).UTC().Format(time.RFC3339Nano))
	var (
		best  *workflowpb.WorkflowExecutionInfo
		token []byte
	)
	for {
		res, err := t.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, PageSize: 100, NextPageToken: token})
		if err != nil {
			if isGlobal(ctx, err) {
				return "", fmt.Errorf("search the runs of workflow %s: %w", workflowID, err)
			}
			return "", nil
		}
		for _, e := range res.GetExecutions() {
			if best == nil || e.GetStartTime().AsTime().Before(best.GetStartTime().AsTime()) {
				best = e
			}
		}
		if token = res.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	if best == nil {
		return "", nil
	}
	run := best.GetExecution().GetRunId()
	d, err := t.Client.DescribeWorkflowExecution(ctx, workflowID, run)
	if err != nil {
		if isGlobal(ctx, err) {
			return "", fmt.Errorf("describe workflow %s run %s: %w", workflowID, run, err)
		}
		return "", nil
	}
	if d.GetWorkflowExecutionInfo().GetFirstRunId() != enrollmentID {
		return "", nil
	}
	return run, nil
}

// searchable reports whether a workflow ID can be matched exactly by a
// visibility query: some visibility stores read a backslash in a quoted
// string as an escape.
func searchable(workflowID string) bool { return !strings.Contains(workflowID, `\`) }

// closeEvent is the close event of one run, nil while it runs.
func (t Temporal) closeEvent(ctx context.Context, workflowID, runID string) (*historypb.HistoryEvent, error) {
	it := t.Client.GetWorkflowHistory(ctx, workflowID, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	var last *historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			if isNotFound(err) {
				return nil, err
			}
			return nil, fmt.Errorf("close event of workflow %s run %s: %w", workflowID, runID, err)
		}
		last = ev
	}
	return last, nil
}

func (t Temporal) dataConverter() converter.DataConverter {
	if t.DataConverter == nil {
		return converter.GetDefaultDataConverter()
	}
	return t.DataConverter
}

// failureMessage is the failure's message, decoded when the failure
// converter moved it into the encoded attributes (payload encryption).
func (t Temporal) failureMessage(f *failurepb.Failure) string {
	if ea := f.GetEncodedAttributes(); ea != nil {
		var attrs struct {
			Message string `json:"message"`
		}
		if err := t.dataConverter().FromPayload(ea, &attrs); err == nil {
			return attrs.Message
		}
	}
	return f.GetMessage()
}

// ended reads a close event: the fate, or the next run of the chain.
// Completed, failed and timed-out runs also name a next run when a retry
// policy or cron schedule started one (journeys have neither).
func (t Temporal) ended(ev *historypb.HistoryEvent) (f Fate, nextRun string) {
	f.ClosedAt = ev.GetEventTime().AsTime()
	switch ev.GetEventType() {
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
		return f, ev.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
		a := ev.GetWorkflowExecutionCompletedEventAttributes()
		if a.GetNewExecutionRunId() != "" {
			return f, a.GetNewExecutionRunId()
		}
		f.Ended = EndedCompleted
		var r workflows.JourneyResult
		if a.GetResult() != nil && t.dataConverter().FromPayloads(a.GetResult(), &r) == nil {
			f.Result = &r
		}
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
		a := ev.GetWorkflowExecutionFailedEventAttributes()
		if a.GetNewExecutionRunId() != "" {
			return f, a.GetNewExecutionRunId()
		}
		f.Ended, f.Detail = EndedFailed, t.failureMessage(a.GetFailure())
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
		a := ev.GetWorkflowExecutionTimedOutEventAttributes()
		if a.GetNewExecutionRunId() != "" {
			return f, a.GetNewExecutionRunId()
		}
		f.Ended = EndedTimedOut
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
		f.Ended = EndedCanceled
	case enums.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
		f.Ended, f.Detail = EndedTerminated, ev.GetWorkflowExecutionTerminatedEventAttributes().GetReason()
	default:
		f.Ended, f.Detail = EndedFailed, "closed by "+ev.GetEventType().String()
	}
	return f, ""
}

// Retention is the namespace's retention: how long Temporal keeps a
// closed workflow.
func (t Temporal) Retention(ctx context.Context) (time.Duration, error) {
	namespace := t.namespace(ctx)
	ns, err := t.Client.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	if err != nil {
		return 0, fmt.Errorf("describe namespace %s: %w", namespace, err)
	}
	return ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(), nil
}

// HasJourneys counts the namespace's Journey workflows, running or closed
// within its retention, with the visibility API.
func (t Temporal) HasJourneys(ctx context.Context) (bool, error) {
	namespace := t.namespace(ctx)
	res, err := t.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: namespace, Query: fmt.Sprintf("WorkflowType = '%s'", workflows.WorkflowName)})
	if err != nil {
		return false, fmt.Errorf("count the %s workflows of namespace %s: %w", workflows.WorkflowName, namespace, err)
	}
	return res.GetCount() > 0, nil
}

// namespace is Namespace, or the activity's namespace; "" leaves it to
// the client (its own namespace) where the request allows.
func (t Temporal) namespace(ctx context.Context) string {
	if t.Namespace == "" && activity.IsActivity(ctx) {
		return activity.GetInfo(ctx).WorkflowNamespace
	}
	return t.Namespace
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

// isInvalid reports whether Temporal rejected the request itself (a
// workflow or run ID that cannot exist), which no retry mends.
func isInvalid(err error) bool {
	var ia *serviceerror.InvalidArgument
	return errors.As(err, &ia)
}
