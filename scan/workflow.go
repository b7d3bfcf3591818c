package scan

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/store"
)

// Names shared by the workflow, the schedules and the worker.
const (
	// WorkflowName is the registered scan workflow type.
	WorkflowName = "Scan"
	// PartitionWorkflowName is the registered type of the child workflows
	// a scan splits into, one per partition of the customers. A type of
	// its own, not Scan with a partition in its input: a worker of an
	// older release that picked up such a child would ignore the partition
	// and scan everyone; it fails the task instead (unknown type), which
	// Temporal retries until a worker that knows the type takes it.
	PartitionWorkflowName = "ScanPartition"
	// PagesPerCall is how many pages of DefaultPageSize one activity call
	// reads: 50 pages of 500 = 25,000 customers per call (well under a
	// second of work), so Temporal's per-activity round trips are paid
	// once per 25,000 customers, not once per page.
	PagesPerCall = 50
	// CallsPerRun is how many activity calls one run makes before it
	// continues as new: 10 calls keep each run's history near 60 events.
	CallsPerRun = 10
)

// partitionsChange gates the split of a scan into partitions: histories
// recorded before it (one workflow paging through everyone from its first
// command) replay on the sequential path.
const partitionsChange = "scan-partitions"

// scheduledStart is the search attribute a Temporal Schedule sets on the
// runs it starts: the time the action was due.
var scheduledStart = temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")

// Input starts a scan (Playbook, optionally Partitions) or continues one
// (all fields, after continue-as-new).
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
	// Partitions, when set, is how many partitions this scan splits into;
	// 0 (what schedules start) takes the worker's setting (see
	// Activities.ScanPartitions). 1 pages through everyone in this
	// workflow, as scans did before partitions.
	Partitions int `json:"partitions,omitempty"`
}

// PartitionInput starts or continues the scan of one partition.
type PartitionInput struct {
	Playbook  string          `json:"playbook"`
	Now       time.Time       `json:"now"` // the scan's time, the same for every partition
	Partition store.Partition `json:"partition"`
	PageSize  int             `json:"page_size"`
	// ScheduledAt is set in the first run of partition 0 of a scheduled
	// scan only: its first call reports the schedule lag, once per scan.
	ScheduledAt time.Time `json:"scheduled_at,omitzero"`
	AfterID     string    `json:"after_id,omitempty"`
	Counts      Counts    `json:"counts"`
	Version     string    `json:"version,omitempty"`
}

// Result is how a scan (or one partition of it) ended.
type Result struct {
	Playbook string    `json:"playbook"`
	Version  string    `json:"version,omitempty"`
	Now      time.Time `json:"now"`
	Inactive bool      `json:"inactive,omitempty"`
	// Partitions is how many partitions the scan was split into (0 or 1:
	// none).
	Partitions int `json:"partitions,omitempty"`
	Counts
}

// Workflow scans the customers for one playbook: the candidates its
// trigger's SQL selects (package pushdown), each checked in Go where the
// SQL is not exact. A scan split into several partitions starts one
// PartitionWorkflow child per partition, so as many workers as there are
// partitions share it, and returns the sum of their counts; a scan of one
// partition pages through its candidates itself, holding only the cursor
// and the counts, and continues as new with them every CallsPerRun
// activity calls.
func Workflow(ctx workflow.Context, in Input) (Result, error) {
	v := workflow.GetVersion(ctx, partitionsChange, workflow.DefaultVersion, 1)
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
	ctx = workflow.WithActivityOptions(ctx, pageOptions)
	if v != workflow.DefaultVersion && first {
		n := in.Partitions
		if n <= 0 {
			lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
			var a *Activities
			if err := workflow.ExecuteLocalActivity(lctx, a.ScanPartitions).Get(ctx, &n); err != nil {
				return Result{}, err
			}
		}
		if n > 1 {
			return split(ctx, in, scheduledAt, n)
		}
	}
	w := walk{Playbook: in.Playbook, Now: in.Now, PageSize: in.PageSize, AfterID: in.AfterID, Counts: in.Counts, Version: in.Version, ScheduledAt: scheduledAt}
	done, inactive, err := w.run(ctx, first)
	if err != nil {
		return Result{}, err
	}
	if !done {
		in.AfterID, in.Counts, in.Version = w.AfterID, w.Counts, w.Version
		return Result{}, workflow.NewContinueAsNewError(ctx, Workflow, in)
	}
	return Result{Playbook: in.Playbook, Version: w.Version, Now: in.Now, Inactive: inactive, Counts: w.Counts}, nil
}

// PartitionWorkflow scans one partition of the customers for a scan, page
// by page, as an unsplit scan pages through everyone: it holds only the
// cursor and the counts, and continues as new with them every CallsPerRun
// activity calls.
func PartitionWorkflow(ctx workflow.Context, in PartitionInput) (Result, error) {
	ctx = workflow.WithActivityOptions(ctx, pageOptions)
	w := walk(in)
	done, inactive, err := w.run(ctx, !in.ScheduledAt.IsZero())
	if err != nil {
		return Result{}, err
	}
	if !done {
		next := PartitionInput(w)
		next.ScheduledAt = time.Time{} // the lag is reported once
		return Result{}, workflow.NewContinueAsNewError(ctx, PartitionWorkflow, next)
	}
	return Result{Playbook: in.Playbook, Version: w.Version, Now: in.Now, Inactive: inactive, Counts: w.Counts}, nil
}

// split runs the scan in as many child workflows as partitions, waits for
// every one (a partition that fails does not stop the others: what they
// start is started either way), and adds up their counts. The version is
// the last partition's that saw one; the scan is inactive when a partition
// found the playbook undeployed.
func split(ctx workflow.Context, in Input, scheduledAt time.Time, n int) (Result, error) {
	n = min(n, store.MaxPartitions)
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	futures := make([]workflow.ChildWorkflowFuture, n)
	for i := range futures {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: fmt.Sprintf("%s/partition-%d-of-%d", id, i+1, n),
			// The scan's own timeout bounds its children: closing the
			// parent terminates them (the default parent close policy).
		})
		pin := PartitionInput{Playbook: in.Playbook, Now: in.Now, Partition: store.Partition{Index: i, Count: n}, PageSize: in.PageSize}
		if i == 0 {
			pin.ScheduledAt = scheduledAt
		}
		futures[i] = workflow.ExecuteChildWorkflow(cctx, PartitionWorkflowName, pin)
	}
	res := Result{Playbook: in.Playbook, Now: in.Now, Partitions: n}
	var firstErr error
	for i, f := range futures {
		var r Result
		if err := f.Get(ctx, &r); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("scan %s partition %d of %d: %w", in.Playbook, i+1, n, err)
			}
			continue
		}
		res.Counts = res.Counts.Add(r.Counts)
		res.Inactive = res.Inactive || r.Inactive
		if r.Version != "" {
			res.Version = r.Version
		}
	}
	if firstErr != nil {
		return Result{}, firstErr
	}
	return res, nil
}

// walk is the state of one keyset walk, the whole scan or one partition:
// the fields of PartitionInput, so a partition's input converts to it and
// back.
type walk struct {
	Playbook    string          `json:"playbook"`
	Now         time.Time       `json:"now"`
	Partition   store.Partition `json:"partition"`
	PageSize    int             `json:"page_size"`
	ScheduledAt time.Time       `json:"scheduled_at,omitzero"`
	AfterID     string          `json:"after_id,omitempty"`
	Counts      Counts          `json:"counts"`
	Version     string          `json:"version,omitempty"`
}

// run makes up to CallsPerRun ScanPage calls from the cursor on, adding
// to the counts; done reports the end of the customers (or of the
// partition). first says whether the first call reports the schedule lag.
func (w *walk) run(ctx workflow.Context, first bool) (done, inactive bool, err error) {
	var a *Activities
	for call := range CallsPerRun {
		req := PageRequest{Playbook: w.Playbook, Now: w.Now, AfterID: w.AfterID, Limit: w.PageSize,
			Pages: PagesPerCall, First: first && call == 0, ScheduledAt: w.ScheduledAt, Partition: w.Partition}
		var res PageResult
		if err := workflow.ExecuteActivity(ctx, a.ScanPage, req).Get(ctx, &res); err != nil {
			return false, false, err
		}
		w.Counts = w.Counts.Add(res.Counts)
		w.AfterID = res.NextID
		if res.Version != "" {
			w.Version = res.Version
		}
		if res.Done {
			return true, res.Inactive, nil
		}
	}
	return false, false, nil
}

// pageOptions are the options of every ScanPage call.
var pageOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 10 * time.Minute,
	HeartbeatTimeout:    time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
	},
}

var (
	workflowRegisterOptions  = workflow.RegisterOptions{Name: WorkflowName}
	partitionRegisterOptions = workflow.RegisterOptions{Name: PartitionWorkflowName}
)
