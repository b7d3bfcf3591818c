package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/reconcile"
	"github.com/rapport-crm/rapport/workflows"
)

// TestReconcileClosesTerminatedJourneys: two journeys wait, one of a
// `reentry: always` and one of a `reentry: never` playbook; an operator
// terminates both with the temporal CLI. Their enrollments stay active, so
// the customer is refused as "active" by both playbooks. The reconcile
// schedule the worker created at start, triggered, closes both as failed
// with the termination's reason (`rapport reconcile --dry-run` first
// shows them and changes nothing); then the customer enters the `always`
// playbook again and is refused by the `never` one as already enrolled.
func TestReconcileClosesTerminatedJourneys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nsRecon)
	ctx := context.Background()
	rapportBin := buildRapport(t)
	temporalBin, err := devenv.TemporalBinary(ctx, false, io.Discard)
	if err != nil {
		t.Fatal(err)
	}

	// The worker's start created the schedule with the defaults.
	h := e.c.ScheduleClient().GetHandle(ctx, reconcile.ScheduleID)
	d, err := h.Describe(ctx)
	if err != nil {
		t.Fatalf("the worker did not create the reconcile schedule: %v", err)
	}
	if in := scheduledInput(t, d); len(d.Schedule.Spec.Intervals) != 1 || d.Schedule.Spec.Intervals[0].Every != reconcile.DefaultInterval ||
		in.Grace != reconcile.DefaultGrace || d.Schedule.State.Paused {
		t.Errorf("schedule %+v with input %+v, want every %s with grace %s, running", d.Schedule.Spec, in, reconcile.DefaultInterval, reconcile.DefaultGrace)
	}

	e.deploy("reconcile_always.yaml", "reconcile_never.yaml")
	const always, never = "e2e_reconcile_always", "e2e_reconcile_never"
	e.post("/v1/identify", `{"userId":"rita","traits":{"email":"rita@example.com"}}`)
	e.post("/v1/track", `{"userId":"rita","event":"visit","messageId":"visit-1"}`)
	e.eventually(30*time.Second, func() string {
		if tags := e.customerTags("rita"); !contains(tags, "reconcile_always") || !contains(tags, "reconcile_never") {
			return errorf("rita's journeys have not reached their wait yet (tags %v)", tags)
		}
		return ""
	})
	first := map[string]enrollment{always: e.enrollments(always)["rita"], never: e.enrollments(never)["rita"]}

	const reason = "e2e: an operator stops it"
	for _, pb := range []string{always, never} {
		out, err := exec.Command(temporalBin, "workflow", "terminate", "--workflow-id", workflows.WorkflowID(pb, "rita"),
			"--reason", reason, "--address", frontend, "--namespace", nsRecon).CombinedOutput()
		if err != nil {
			t.Fatalf("temporal workflow terminate: %v\n%s", err, out)
		}
	}
	// Stuck: the rows stay active, and both playbooks turn rita away.
	e.post("/v1/track", `{"userId":"rita","event":"visit","messageId":"visit-2"}`)
	refused := map[string]string{}
	for _, pb := range []string{always, never} {
		var r workflows.JourneyResult
		if r, refused[pb] = e.nextResult(pb, "rita", first[pb].ID); r.Status != activities.StatusRejected || r.Reason != "active" {
			t.Errorf("%s before reconciling: %s (%s), want rejected (active)", pb, r.Status, r.Reason)
		}
		if en := e.enrollments(pb)["rita"]; en.Status != "active" {
			t.Fatalf("%s: terminated enrollment %+v, want still active before reconciling", pb, en)
		}
	}

	// What a worker started with RAPPORT_RECONCILE_GRACE=1s does: the
	// terminated journeys are older than that.
	if created, err := reconcile.Ensure(ctx, e.c, reconcile.Config{Interval: reconcile.DefaultInterval, Grace: time.Second}); err != nil || created {
		t.Fatalf("ensure the schedule again: created=%v err=%v, want it updated", created, err)
	}
	e.eventually(schedulePropagation, func() string {
		d, err := h.Describe(ctx)
		if err != nil {
			return err.Error()
		}
		if in := scheduledInput(t, d); in.Grace != time.Second {
			return errorf("schedule input %+v, want the grace of 1s", in)
		}
		return ""
	})
	time.Sleep(time.Second)

	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(rapportBin, append([]string{"reconcile"}, args...)...)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+e.st.Pool().Config().ConnString(),
			"TEMPORAL_ADDRESS="+frontend, "TEMPORAL_NAMESPACE="+nsRecon)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("rapport reconcile %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := cli("--grace", "1s", "--dry-run")
	t.Logf("rapport reconcile --grace 1s --dry-run:\n%s", out)
	for _, pb := range []string{always, never} {
		want := fmt.Sprintf("would close %s  %s  customer rita  workflow terminated → failed (workflow terminated: %s)", first[pb].ID, pb, reason)
		if !strings.Contains(out, want) {
			t.Errorf("rapport reconcile --dry-run printed\n%s\nwithout %q", out, want)
		}
	}
	if !strings.Contains(out, "active enrollments older than 1s: 2 checked, 2 would close, 0 still running, 0 closed by their journey meanwhile\n") {
		t.Errorf("rapport reconcile --dry-run summary:\n%s", out)
	}
	if en := e.enrollments(always)["rita"]; en.Status != "active" {
		t.Fatalf("a dry run closed %+v", en)
	}

	res := e.triggerReconcile()
	if res.Checked != 2 || res.Closed != 2 || res.Ended[reconcile.EndedTerminated] != 2 || res.Open != 0 || res.Skipped != 0 {
		t.Errorf("reconcile pass %+v, want both terminated enrollments closed", res.Counts)
	}
	for _, pb := range []string{always, never} {
		var status, why string
		var ended *time.Time
		err := e.st.Pool().QueryRow(ctx, `SELECT status, reason, ended_at FROM enrollments WHERE id = $1`, first[pb].ID).Scan(&status, &why, &ended)
		if err != nil || status != "failed" || why != "workflow terminated: "+reason || ended == nil {
			t.Errorf("%s after reconciling: %s (%s) ended %v, err %v; want failed (workflow terminated: %s)", pb, status, why, ended, err, reason)
		}
	}
	if n := counterValue(e.stack.Worker.Metrics.Reconciled.WithLabelValues(reconcile.EndedTerminated)); n != 2 {
		t.Errorf("rapport_reconciled_enrollments_total{reason=terminated} = %v, want 2", n)
	}
	if out := cli("--grace", "1s"); !strings.Contains(out, "active enrollments older than 1s: 0 checked, 0 closed,") {
		t.Errorf("rapport reconcile after the scheduled pass printed:\n%s", out)
	}

	// Unstuck: `always` admits rita again, `never` refuses her as enrolled.
	e.post("/v1/track", `{"userId":"rita","event":"visit","messageId":"visit-3"}`)
	e.eventually(30*time.Second, func() string {
		var n int
		err := e.st.Pool().QueryRow(ctx, `SELECT count(*) FROM enrollments WHERE playbook = $1 AND customer_id = 'rita' AND status = 'active' AND id <> $2`,
			always, first[always].ID).Scan(&n)
		if err != nil || n != 1 {
			return errorf("%d new active enrollments of rita in %s (%v), want 1", n, always, err)
		}
		return ""
	})
	if r, _ := e.nextResult(never, "rita", first[never].ID, refused[never]); r.Status != activities.StatusRejected || r.Reason != "already_enrolled" {
		t.Errorf("%s after reconciling: %s (%s), want rejected (already_enrolled)", never, r.Status, r.Reason)
	}
	var rows int
	if err := e.st.Pool().QueryRow(ctx, `SELECT count(*) FROM enrollments WHERE playbook = $1`, never).Scan(&rows); err != nil || rows != 1 {
		t.Errorf("%d enrollments of %s (%v), want only the closed one", rows, never, err)
	}

	// RAPPORT_RECONCILE_INTERVAL=off pauses the schedule; a worker started
	// with an interval again resumes it.
	paused := func(want bool) func() string {
		return func() string {
			d, err := h.Describe(ctx)
			if err != nil {
				return err.Error()
			}
			if d.Schedule.State.Paused != want {
				return errorf("schedule paused: %v, want %v", d.Schedule.State.Paused, want)
			}
			return ""
		}
	}
	if _, err := reconcile.Ensure(ctx, e.c, reconcile.Config{Grace: time.Second}); err != nil {
		t.Fatal(err)
	}
	e.eventually(schedulePropagation, paused(true))
	if _, err := reconcile.Ensure(ctx, e.c, reconcile.Config{Interval: time.Hour, Grace: time.Second}); err != nil {
		t.Fatal(err)
	}
	e.eventually(schedulePropagation, paused(false))
}

// nextResult waits for the latest run of customer's journey in playbook
// to be a completed one other than the runs seen before, and returns its
// result and run ID.
func (e *env) nextResult(playbook, customer string, before ...string) (workflows.JourneyResult, string) {
	e.t.Helper()
	ctx := context.Background()
	wid := workflows.WorkflowID(playbook, customer)
	var runID string
	seen := map[string]bool{}
	for _, id := range before {
		seen[id] = true
	}
	e.eventually(30*time.Second, func() string {
		d, err := e.c.DescribeWorkflowExecution(ctx, wid, "")
		if err != nil {
			return err.Error()
		}
		info := d.GetWorkflowExecutionInfo()
		if seen[info.GetExecution().GetRunId()] || info.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			return errorf("latest run of %s: %s %s, waiting for a new completed one", wid, info.GetExecution().GetRunId(), info.GetStatus())
		}
		runID = info.GetExecution().GetRunId()
		return ""
	})
	var r workflows.JourneyResult
	if err := e.c.GetWorkflow(ctx, wid, runID).Get(ctx, &r); err != nil {
		e.t.Fatalf("result of %s run %s: %v", wid, runID, err)
	}
	return r, runID
}

// triggerReconcile triggers the reconcile schedule and returns the result
// of the pass it starts.
func (e *env) triggerReconcile() reconcile.Result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h := e.c.ScheduleClient().GetHandle(ctx, reconcile.ScheduleID)
	before := 0
	if d, err := h.Describe(ctx); err == nil {
		before = len(d.Info.RecentActions)
	}
	if err := reconcile.Trigger(ctx, e.c); err != nil {
		e.t.Fatal(err)
	}
	var run client.ScheduleWorkflowExecution
	e.eventually(30*time.Second, func() string {
		d, err := h.Describe(ctx)
		if err != nil {
			return err.Error()
		}
		if len(d.Info.RecentActions) <= before {
			return "the schedule has not started a pass yet"
		}
		run = *d.Info.RecentActions[len(d.Info.RecentActions)-1].StartWorkflowResult
		return ""
	})
	var res reconcile.Result
	if err := e.c.GetWorkflow(ctx, run.WorkflowID, "").Get(ctx, &res); err != nil {
		e.t.Fatalf("reconcile pass %s: %v", run.WorkflowID, err)
	}
	return res
}

// scheduledInput decodes the input the reconcile schedule starts passes with.
func scheduledInput(t *testing.T, d *client.ScheduleDescription) reconcile.Input {
	t.Helper()
	a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || a.Workflow != reconcile.WorkflowName || a.TaskQueue != workflows.TaskQueue || len(a.Args) != 1 {
		t.Fatalf("schedule action %#v, want the %s workflow on %s with one argument", d.Schedule.Action, reconcile.WorkflowName, workflows.TaskQueue)
	}
	p, ok := a.Args[0].(*commonpb.Payload)
	var in reconcile.Input
	if !ok || converter.GetDefaultDataConverter().FromPayload(p, &in) != nil {
		t.Fatalf("schedule argument %#v is not a reconcile.Input", a.Args[0])
	}
	return in
}

// buildRapport builds the rapport command into a temporary directory.
func buildRapport(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rapport")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/rapport-crm/rapport/cmd/rapport").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/rapport: %v\n%s", err, out)
	}
	return bin
}

// Workflows of TestReconcileFates, on a task queue of their own: each
// stands for a journey that ended one way or another.
const fatesQueue = "e2e-reconcile-fates"

// fateBlock continues as new hops times, then waits for a signal "go" (or
// a cancellation) and completes.
func fateBlock(ctx workflow.Context, hops int) error {
	if hops > 0 {
		return workflow.NewContinueAsNewError(ctx, "fateBlock", hops-1)
	}
	workflow.NewSelector(ctx).
		AddReceive(workflow.GetSignalChannel(ctx, "go"), func(workflow.ReceiveChannel, bool) {}).
		AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {}).
		Select(ctx)
	return ctx.Err()
}

func fateConverted(workflow.Context) (workflows.JourneyResult, error) {
	return workflows.JourneyResult{Status: activities.StatusConverted, Reason: "goal purchase"}, nil
}

func fateBroken(workflow.Context) error {
	return temporal.NewNonRetryableApplicationError("playbook x does not compile", workflows.ErrTypeInvalidPlaybook, nil)
}

// TestReconcileFates asks reconcile.Temporal about workflows on the dev
// server that ended every way a journey can, and about running ones whose
// workflow ID or run chain could mislead it: a chain that continued as
// new, and a workflow ID reused by a later enrollment.
func TestReconcileFates(t *testing.T) {
	t.Parallel()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	ctx := context.Background()
	c, err := client.Dial(client.Options{HostPort: frontend, Namespace: nsRecon, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := worker.New(c, fatesQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(fateBlock, workflow.RegisterOptions{Name: "fateBlock"})
	w.RegisterWorkflowWithOptions(fateConverted, workflow.RegisterOptions{Name: "fateConverted"})
	w.RegisterWorkflowWithOptions(fateBroken, workflow.RegisterOptions{Name: "fateBroken"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	prefix := fmt.Sprintf("fates-%d/", time.Now().UnixNano())
	start := func(id, wf string, timeout time.Duration, args ...any) string {
		t.Helper()
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: prefix + id, TaskQueue: fatesQueue, WorkflowExecutionTimeout: timeout}, wf, args...)
		if err != nil {
			t.Fatal(err)
		}
		return run.GetRunID() // the first run's ID: the enrollment ID
	}
	f := reconcile.Temporal{Client: c, Namespace: nsRecon}
	status := func(id string) enums.WorkflowExecutionStatus {
		d, err := c.DescribeWorkflowExecution(ctx, prefix+id, "")
		if err != nil {
			t.Fatal(err)
		}
		return d.GetWorkflowExecutionInfo().GetStatus()
	}
	// waitRuns waits until the current run of id is past its first one.
	waitRuns := func(id, first string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			d, err := c.DescribeWorkflowExecution(ctx, prefix+id, "")
			if err == nil && d.GetWorkflowExecutionInfo().GetExecution().GetRunId() != first {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not continue as new: %v", id, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	running := start("running", "fateBlock", 0, 0)
	chain := start("chain", "fateBlock", 0, 2)
	converted := start("converted", "fateConverted", 0)
	broken := start("broken", "fateBroken", 0)
	canceled := start("canceled", "fateBlock", 0, 0)
	timedOut := start("timedout", "fateBlock", time.Second, 0)
	terminated := start("terminated", "fateBlock", 0, 1)
	reusedFirst := start("reused", "fateBlock", 0, 1)

	waitRuns("chain", chain)
	waitRuns("terminated", terminated)
	waitRuns("reused", reusedFirst)
	for _, id := range []string{"terminated", "reused"} {
		if err := c.TerminateWorkflow(ctx, prefix+id, "", "bad deploy"); err != nil {
			t.Fatal(err)
		}
	}
	reusedSecond := start("reused", "fateBlock", 0, 0) // a later enrollment of the same customer
	if err := c.CancelWorkflow(ctx, prefix+"canceled", ""); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"converted", "broken", "canceled", "timedout"} {
		deadline := time.Now().Add(30 * time.Second)
		for status(id) == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			if time.Now().After(deadline) {
				t.Fatalf("%s still running", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	for _, tc := range []struct {
		name, id, enrollment string
		open                 bool
		ended, detail        string
	}{
		{"running", "running", running, true, "", ""},
		{"running after continue-as-new", "chain", chain, true, "", ""},
		{"completed with an outcome", "converted", converted, false, reconcile.EndedCompleted, ""},
		{"failed", "broken", broken, false, reconcile.EndedFailed, "playbook x does not compile"},
		{"canceled", "canceled", canceled, false, reconcile.EndedCanceled, ""},
		{"timed out", "timedout", timedOut, false, reconcile.EndedTimedOut, ""},
		{"terminated after continue-as-new", "terminated", terminated, false, reconcile.EndedTerminated, "bad deploy"},
		{"terminated, workflow ID reused by a running enrollment", "reused", reusedFirst, false, reconcile.EndedTerminated, "bad deploy"},
		{"the running enrollment that reused the ID", "reused", reusedSecond, true, "", ""},
		{"workflow ID unknown", "never-started", "0196a1b2-0000-7000-8000-000000000000", false, reconcile.EndedNotFound, ""},
		{"run unknown under a known workflow ID", "running", "0196a1b2-0000-7000-8000-000000000000", false, reconcile.EndedNotFound, ""},
	} {
		got, err := f.Fate(ctx, prefix+tc.id, tc.enrollment)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got.Open != tc.open || got.Ended != tc.ended || got.Detail != tc.detail {
			t.Errorf("%s: fate %+v, want open=%v ended=%q detail=%q", tc.name, got, tc.open, tc.ended, tc.detail)
		}
		if !tc.open && tc.ended != reconcile.EndedNotFound && got.ClosedAt.IsZero() {
			t.Errorf("%s: no close time", tc.name)
		}
		if tc.ended == reconcile.EndedCompleted && (got.Result == nil || got.Result.Status != activities.StatusConverted || got.Result.Reason != "goal purchase") {
			t.Errorf("%s: result %+v, want the journey's converted (goal purchase)", tc.name, got.Result)
		}
	}
	if _, err := f.Fate(ctx, prefix+"running", "not-a-run-id"); err == nil || !isInvalidArgument(err) {
		t.Errorf("a malformed enrollment ID: %v, want Temporal's InvalidArgument", err)
	}
	if d, err := f.Retention(ctx); err != nil || d <= 0 {
		t.Errorf("retention of %s: %v, %v", nsRecon, d, err)
	}
}

func isInvalidArgument(err error) bool {
	var ia *serviceerror.InvalidArgument
	return errors.As(err, &ia)
}
