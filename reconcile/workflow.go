package reconcile

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/store"
)

// Names and sizes of the Reconcile workflow.
const (
	// WorkflowName is the registered reconcile workflow type.
	WorkflowName = "Reconcile"
	// PagesPerCall is how many pages of DefaultPageSize one activity call
	// judges: 2,000 enrollments.
	PagesPerCall = 20
	// CallsPerRun is how many activity calls one run makes before it
	// continues as new, keeping each run's history short.
	CallsPerRun = 20
)

// Input starts a pass (Grace only) or continues one (all fields, after
// continue-as-new).
type Input struct {
	// Grace: enrollments that started less than Grace before the pass
	// are not judged. DefaultGrace when 0.
	Grace time.Duration `json:"grace"`
	// StartedBefore is the pass's cutoff, set by its first run from the
	// workflow clock, so every page of one pass uses the same.
	StartedBefore time.Time    `json:"started_before,omitzero"`
	After         store.Cursor `json:"after"`
	Counts        Counts       `json:"counts"`
}

// Result is what a pass did.
type Result struct {
	StartedBefore time.Time `json:"started_before"`
	Counts
}

// Workflow runs one pass: it calls ReconcilePage until the active
// enrollments run out, carrying only the cursor and the counts, and
// continues as new every CallsPerRun calls.
func Workflow(ctx workflow.Context, in Input) (Result, error) {
	if in.StartedBefore.IsZero() {
		grace := in.Grace
		if grace <= 0 {
			grace = DefaultGrace
		}
		in.StartedBefore = workflow.Now(ctx).Add(-grace).UTC()
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
	var a *Activities
	for call := 0; ; call++ {
		if call == CallsPerRun {
			return Result{}, workflow.NewContinueAsNewError(ctx, Workflow, in)
		}
		req := PageRequest{StartedBefore: in.StartedBefore, After: in.After, Limit: DefaultPageSize, Pages: PagesPerCall}
		var res PageResult
		if err := workflow.ExecuteActivity(ctx, a.ReconcilePage, req).Get(ctx, &res); err != nil {
			return Result{}, err
		}
		in.Counts = in.Counts.Add(res.Counts)
		in.After = res.Next
		if res.Done {
			return Result{StartedBefore: in.StartedBefore, Counts: in.Counts}, nil
		}
	}
}

var workflowRegisterOptions = workflow.RegisterOptions{Name: WorkflowName}
