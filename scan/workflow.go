package scan

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Names shared by the workflow, the schedules and the worker.
const (
	// WorkflowName is the registered scan workflow type.
	WorkflowName = "Scan"
	// PagesPerCall is how many pages of DefaultPageSize one activity call
	// reads: 50 pages of 500 = 25,000 customers per call (well under a
	// second of work), so Temporal's per-activity round trips are paid
	// once per 25,000 customers, not once per page.
	PagesPerCall = 50
	// CallsPerRun is how many activity calls one run makes before it
	// continues as new: 10 calls keep each run's history near 60 events.
	CallsPerRun = 10
)

// scheduledStart is the search attribute a Temporal Schedule sets on the
// runs it starts: the time the action was due.
var scheduledStart = temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")

// Input starts a scan (Playbook only) or continues one (all fields, after
// continue-as-new).
type Input struct {
	Playbook string `json:"playbook"`
	// Now is the scan time every rule sees; zero in the first run, which
	// takes the schedule's due time (or the start time when started by
	// hand), so every page of one scan evaluates against the same instant.
	Now      time.Time `json:"now,omitzero"`
	PageSize int       `json:"page_size,omitempty"`
	AfterID  string    `json:"after_id,omitempty"`
	Counts   Counts    `json:"counts"`
	Version  string    `json:"version,omitempty"`
}

// Result is how a scan ended.
type Result struct {
	Playbook string    `json:"playbook"`
	Version  string    `json:"version,omitempty"`
	Now      time.Time `json:"now"`
	Inactive bool      `json:"inactive,omitempty"`
	Counts
}

// Workflow scans every customer for one playbook, page by page. It holds
// only the cursor and the counts; every CallsPerRun activity calls it
// continues as new with them.
func Workflow(ctx workflow.Context, in Input) (Result, error) {
	first := in.Now.IsZero()
	var scheduledAt time.Time
	if first {
		in.Now = workflow.Now(ctx).UTC()
		if t, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(scheduledStart); ok && !t.IsZero() {
			in.Now, scheduledAt = t.UTC(), t.UTC()
		}
	}
	if in.PageSize <= 0 {
		in.PageSize = DefaultPageSize
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
		req := PageRequest{Playbook: in.Playbook, Now: in.Now, AfterID: in.AfterID, Limit: in.PageSize,
			Pages: PagesPerCall, First: first && call == 0, ScheduledAt: scheduledAt}
		var res PageResult
		if err := workflow.ExecuteActivity(ctx, a.ScanPage, req).Get(ctx, &res); err != nil {
			return Result{}, err
		}
		in.Counts = in.Counts.Add(res.Counts)
		in.AfterID = res.NextID
		if res.Version != "" {
			in.Version = res.Version
		}
		if res.Done {
			return Result{Playbook: in.Playbook, Version: in.Version, Now: in.Now, Inactive: res.Inactive, Counts: in.Counts}, nil
		}
	}
}

var workflowRegisterOptions = workflow.RegisterOptions{Name: WorkflowName}
