package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/reconcile"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store/storetest"
	rworker "github.com/rapport-crm/rapport/worker"
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
	e.eventually(time.Minute, func() string {
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
	if done, err := reconcile.Ensure(ctx, e.c, reconcile.Config{Interval: reconcile.DefaultInterval, Grace: time.Second}); err != nil || done != (reconcile.Ensured{}) {
		t.Fatalf("ensure the schedule again: %+v, %v; want it updated, running", done, err)
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

	cliIn := func(namespace string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(rapportBin, append([]string{"reconcile"}, args...)...)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+e.st.Pool().Config().ConnString(),
			"TEMPORAL_ADDRESS="+frontend, "TEMPORAL_NAMESPACE="+namespace)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	cli := func(args ...string) string {
		t.Helper()
		out, err := cliIn(nsRecon, args...)
		if err != nil {
			t.Fatalf("rapport reconcile %v: %v\n%s", args, err, out)
		}
		return out
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
	e.eventually(time.Minute, func() string {
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

	// An enrollment whose workflow Temporal does not find, older than the
	// namespace's retention: removed by retention, as far as anyone can
	// tell.
	retention, err := reconcile.Temporal{Client: e.c, Namespace: nsRecon}.Retention(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ghost := activities.Enrollment{ID: "0196a1b2-0000-7000-8000-0000000000aa", WorkflowID: workflows.WorkflowID(always, "ghost"),
		Playbook: always, Version: "v1", CustomerID: "ghost"}
	if err := e.st.UpsertCustomer(ctx, rules.Customer{ID: "ghost"}); err != nil {
		t.Fatal(err)
	}
	if res, err := e.st.RecordStart(ctx, activities.EntryRequest{Enrollment: ghost, Reentry: "always", At: time.Now().Add(-retention - 24*time.Hour)}); err != nil || !res.Admitted {
		t.Fatalf("record the ghost enrollment: %+v, %v", res, err)
	}
	ghostStatus := func() string {
		var status, why string
		if err := e.st.Pool().QueryRow(ctx, `SELECT status, reason FROM enrollments WHERE id = $1`, ghost.ID).Scan(&status, &why); err != nil {
			t.Fatal(err)
		}
		return status + " " + why
	}
	// Asked of a namespace without journeys (a wrong TEMPORAL_NAMESPACE),
	// where every workflow is "not found", the command closes nothing and
	// fails naming it, even with --close-not-found.
	out, err = cliIn("default", "--grace", "1s", "--close-not-found")
	if err == nil || !strings.Contains(out, `namespace "default" holds no Journey workflow`) || !strings.Contains(out, "TEMPORAL_NAMESPACE") {
		t.Errorf("rapport reconcile in namespace default: %v\n%s\nwant a failure naming the namespace and TEMPORAL_NAMESPACE", err, out)
	}
	if s := ghostStatus(); s != "active " {
		t.Fatalf("rapport reconcile in the wrong namespace left the ghost enrollment %q, want active", s)
	}
	// In the right one, without --close-not-found it is listed and left
	// active; with it, closed.
	out = cli("--grace", "1s")
	if want := "not found, left active " + ghost.ID + "  " + always + "  customer ghost  started "; !strings.Contains(out, want) ||
		!strings.Contains(out, "1 not found left active (--close-not-found closes them)") {
		t.Errorf("rapport reconcile without --close-not-found printed\n%s\nwithout %q and the count", out, want)
	}
	if s := ghostStatus(); s != "active " {
		t.Fatalf("rapport reconcile without --close-not-found left the ghost enrollment %q, want active", s)
	}
	out = cli("--grace", "1s", "--close-not-found")
	if want := "closed " + ghost.ID + "  " + always + "  customer ghost  workflow not_found → failed (workflow not found)\n"; !strings.Contains(out, want) {
		t.Errorf("rapport reconcile --close-not-found printed\n%s\nwithout %q", out, want)
	}
	if s := ghostStatus(); s != "failed workflow not found" {
		t.Errorf("rapport reconcile --close-not-found left the ghost enrollment %q, want failed (workflow not found)", s)
	}

	testSchedulePauses(t, e, h)
}

// testSchedulePauses: RAPPORT_RECONCILE_INTERVAL=off pauses the schedule,
// and a worker started with an interval resumes it; a schedule paused by
// hand stays paused, with its note, whatever the workers start with.
func testSchedulePauses(t *testing.T, e *env, h client.ScheduleHandle) {
	t.Helper()
	ctx := context.Background()
	// state waits until the schedule shows the grace (each step changes
	// it, so that it shows the step has been applied), then checks its
	// pause and note.
	state := func(grace time.Duration, paused bool, note string) {
		t.Helper()
		e.eventually(schedulePropagation, func() string {
			d, err := h.Describe(ctx)
			if err != nil {
				return err.Error()
			}
			if in := scheduledInput(t, d); in.Grace != grace && grace != 0 {
				return errorf("schedule input %+v, want the grace of %s", in, grace)
			}
			if d.Schedule.State.Paused != paused || (note != "" && d.Schedule.State.Note != note) {
				return errorf("schedule paused: %v (note %q), want %v (note %q)", d.Schedule.State.Paused, d.Schedule.State.Note, paused, note)
			}
			return ""
		})
	}
	ensure := func(interval, grace time.Duration, want reconcile.Ensured) {
		t.Helper()
		got, err := reconcile.Ensure(ctx, e.c, reconcile.Config{Interval: interval, Grace: grace})
		if err != nil || got != want {
			t.Fatalf("ensure every %s with grace %s: %+v, %v; want %+v", interval, grace, got, err, want)
		}
	}

	// RAPPORT_RECONCILE_INTERVAL=off pauses; an interval resumes.
	ensure(0, 0, reconcile.Ensured{Paused: true, Note: reconcile.OffNote})
	state(0, true, reconcile.OffNote)
	ensure(time.Hour, 2*time.Second, reconcile.Ensured{})
	state(2*time.Second, false, "")

	// Paused by hand: a worker with an interval updates the schedule but
	// leaves it paused, with the operator's note; one with off does not
	// take the pause over; and the next with an interval still leaves it.
	const operator = "operator: investigating the journeys of 2 March"
	if err := h.Pause(ctx, client.SchedulePauseOptions{Note: operator}); err != nil {
		t.Fatal(err)
	}
	state(2*time.Second, true, operator)
	ensure(time.Hour, 3*time.Second, reconcile.Ensured{Paused: true, ByHand: true, Note: operator})
	state(3*time.Second, true, operator)
	ensure(0, 0, reconcile.Ensured{Paused: true, ByHand: true, Note: operator})
	ensure(time.Hour, 4*time.Second, reconcile.Ensured{Paused: true, ByHand: true, Note: operator})
	state(4*time.Second, true, operator)

	// Resumed by hand, it is the workers' again.
	if err := h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: "operator: done"}); err != nil {
		t.Fatal(err)
	}
	state(4*time.Second, false, "operator: done")
	ensure(0, 0, reconcile.Ensured{Paused: true, Note: reconcile.OffNote})
	state(0, true, reconcile.OffNote)
	ensure(time.Hour, 5*time.Second, reconcile.Ensured{})
	state(5*time.Second, false, "")
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
	e.eventually(time.Minute, func() string {
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
	e.eventually(time.Minute, func() string {
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
		deadline := time.Now().Add(time.Minute)
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
		deadline := time.Now().Add(time.Minute)
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
	// A chain of several runs, whose workflow ID a later enrollment
	// reused: after Hops runs Fate asks the visibility API for the chain's
	// last run instead of reading every run's close event. (The server
	// spaces the runs of one workflow ID a second apart, so the chain is
	// kept short and Hops smaller than the default.)
	const cans = 6
	long := start("long", "fateBlock", 0, cans)
	e := &env{t: t}
	e.eventually(time.Minute, func() string {
		n, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = '%slong' AND ExecutionStatus = 'ContinuedAsNew'", prefix)})
		if err != nil || n.GetCount() < cans {
			return errorf("%d runs of long continued as new (%v), waiting for %d", n.GetCount(), err, cans)
		}
		return ""
	})
	if err := c.TerminateWorkflow(ctx, prefix+"long", "", "bad deploy"); err != nil {
		t.Fatal(err)
	}
	longReused := start("long", "fateBlock", 0, 0)
	counted := &historyCounter{Client: c}
	lf := reconcile.Temporal{Client: counted, Namespace: nsRecon, Hops: 2}
	if got, err := lf.Fate(ctx, prefix+"long", long); err != nil || got.Open || got.Ended != reconcile.EndedTerminated || got.Detail != "bad deploy" {
		t.Errorf("%d runs, terminated, workflow ID reused: fate %+v, %v; want terminated (bad deploy)", cans+1, got, err)
	}
	if n := counted.histories.Load(); n > 3 {
		t.Errorf("Fate read the close events of %d runs of a %d-run chain, want 3 (2 hops, a visibility search, the last run)", n, cans+1)
	}
	if got, err := lf.Fate(ctx, prefix+"long", longReused); err != nil || !got.Open {
		t.Errorf("the running enrollment that reused the long chain's ID: %+v, %v; want open", got, err)
	}

	if _, err := f.Fate(ctx, prefix+"running", "not-a-run-id"); err == nil || !isInvalidArgument(err) {
		t.Errorf("a malformed enrollment ID: %v, want Temporal's InvalidArgument", err)
	}
	if d, err := f.Retention(ctx); err != nil || d <= 0 {
		t.Errorf("retention of %s: %v, %v", nsRecon, d, err)
	}
}

// historyCounter counts the workflow histories read through it.
type historyCounter struct {
	client.Client
	histories atomic.Int32
}

func (h *historyCounter) GetWorkflowHistory(ctx context.Context, workflowID, runID string, long bool, filter enums.HistoryEventFilterType) client.HistoryEventIterator {
	h.histories.Add(1)
	return h.Client.GetWorkflowHistory(ctx, workflowID, runID, long, filter)
}

func isInvalidArgument(err error) bool {
	var ia *serviceerror.InvalidArgument
	return errors.As(err, &ia)
}

// scheduleFaults fails a client's CreateSchedule calls: the first blips
// with Unavailable (a Temporal blip), or every one with PermissionDenied
// (a worker not allowed to create schedules).
type scheduleFaults struct {
	interceptor.ClientInterceptorBase
	blips  int32
	denied bool
	calls  atomic.Int32
}

func (f *scheduleFaults) InterceptClient(next interceptor.ClientOutboundInterceptor) interceptor.ClientOutboundInterceptor {
	return &scheduleFaultsOut{ClientOutboundInterceptorBase: interceptor.ClientOutboundInterceptorBase{Next: next}, f: f}
}

type scheduleFaultsOut struct {
	interceptor.ClientOutboundInterceptorBase
	f *scheduleFaults
}

func (o *scheduleFaultsOut) CreateSchedule(ctx context.Context, in *interceptor.ScheduleClientCreateInput) (client.ScheduleHandle, error) {
	n := o.f.calls.Add(1)
	if o.f.denied {
		return nil, serviceerror.NewPermissionDenied("e2e: not allowed to create schedules", "")
	}
	if n <= o.f.blips {
		return nil, serviceerror.NewUnavailable("e2e: frontend restarting")
	}
	return o.Next.CreateSchedule(ctx, in)
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestWorkerStartsWhileTheScheduleFails: a worker whose reconcile
// schedule cannot be created at start does not exit (docs/operators.md,
// "Supervising the worker"): it polls, logs why, and keeps trying in the
// background. After a Temporal blip the schedule is created a moment
// later; without the permission to create schedules the worker runs all
// the same (a pass started by hand completes), and Stop ends its
// attempts. It runs in namespace default, which no other test's worker
// polls.
func TestWorkerStartsWhileTheScheduleFails(t *testing.T) {
	t.Parallel()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	ctx := context.Background()
	st := storetest.New(t)
	admin, err := client.Dial(client.Options{HostPort: frontend, Namespace: client.DefaultNamespace, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close) // after deleteSchedule
	h := admin.ScheduleClient().GetHandle(ctx, reconcile.ScheduleID)
	deleteSchedule := func() {
		var nf *serviceerror.NotFound
		if err := h.Delete(ctx); err != nil && !errors.As(err, &nf) {
			t.Fatal(err)
		}
	}
	deleteSchedule()
	t.Cleanup(deleteSchedule)

	for _, faults := range []*scheduleFaults{{blips: 2}, {denied: true}} {
		c, err := client.Dial(client.Options{HostPort: frontend, Namespace: client.DefaultNamespace, Logger: quiet{},
			Interceptors: []interceptor.ClientInterceptor{faults}})
		if err != nil {
			t.Fatal(err)
		}
		var logs lockedBuffer
		w := rworker.New(rworker.Options{Client: c, Store: st, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			Backoff: rworker.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}})
		if err := w.Start(); err != nil {
			t.Fatalf("worker start with CreateSchedule failing (%+v): %v; want it started", faults, err)
		}
		if !strings.Contains(logs.String(), "cannot create or update the reconcile schedule; the worker runs, and retries in the background") {
			t.Errorf("worker start logged\n%s\nwithout the warning", logs.String())
		}
		e := &env{t: t}
		if !faults.denied {
			e.eventually(time.Minute, func() string {
				if _, err := h.Describe(ctx); err != nil {
					return errorf("the schedule was not created after the blip: %v", err)
				}
				return ""
			})
			if n := faults.calls.Load(); n != faults.blips+1 {
				t.Errorf("%d attempts to create the schedule, want %d", n, faults.blips+1)
			}
			w.Stop()
			c.Close()
			deleteSchedule()
			continue
		}
		// Not allowed: the worker runs passes all the same.
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "e2e-reconcile-by-hand", TaskQueue: workflows.TaskQueue,
			WorkflowExecutionTimeout: time.Minute}, reconcile.WorkflowName, reconcile.Input{})
		if err != nil {
			t.Fatal(err)
		}
		var res reconcile.Result
		if err := run.Get(ctx, &res); err != nil || !res.StartedBefore.Before(time.Now()) {
			t.Errorf("a pass on the worker without its schedule: %+v, %v", res, err)
		}
		e.eventually(time.Minute, func() string {
			if n := faults.calls.Load(); n < 3 {
				return errorf("%d attempts to create the schedule, want it still trying", n)
			}
			return ""
		})
		w.Stop()
		n := faults.calls.Load()
		time.Sleep(300 * time.Millisecond)
		if m := faults.calls.Load(); m != n {
			t.Errorf("still trying to create the schedule after Stop: %d attempts, then %d", n, m)
		}
		var nf *serviceerror.NotFound
		if _, err := h.Describe(ctx); !errors.As(err, &nf) {
			t.Errorf("schedule without the permission to create it: %v, want not found", err)
		}
		c.Close()
	}
}
