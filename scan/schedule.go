package scan

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/workflows"
)

// ScheduleID is the ID of the schedule that scans for playbook.
func ScheduleID(playbook string) string { return "rapport-scan/" + playbook }

// Scheduled reports whether plan's trigger needs a schedule.
func Scheduled(plan *engine.Plan) bool {
	k := plan.Trigger.Kind
	return k == engine.TriggerSegment || k == engine.TriggerDate
}

// catchupWindow is how far back a schedule makes up for runs it missed
// (server down): a date scan covers only its own hour, so missed hours are
// run late rather than skipped, up to a day.
const catchupWindow = 24 * time.Hour

// Spec is the schedule spec of a segment or date playbook: every/cron for
// segments (cron in UTC), hourly for dates (see DateWindow).
func Spec(plan *engine.Plan) (client.ScheduleSpec, error) {
	t := plan.Trigger
	switch {
	case t.Kind == engine.TriggerDate:
		return client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: DateWindow}}}, nil
	case t.Kind == engine.TriggerSegment && t.Cron != "":
		return client.ScheduleSpec{CronExpressions: []string{t.Cron}, TimeZoneName: "UTC"}, nil
	case t.Kind == engine.TriggerSegment && t.Every > 0:
		return client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: t.Every}}}, nil
	}
	return client.ScheduleSpec{}, fmt.Errorf("playbook %s: a %s trigger has no schedule", plan.Name, t.Kind)
}

func action(plan *engine.Plan) *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		ID:        "rapport-scan-run/" + plan.Name,
		Workflow:  WorkflowName,
		Args:      []any{Input{Playbook: plan.Name}},
		TaskQueue: workflows.TaskQueue,
		// A scan that cannot finish within a day is broken; do not let
		// runs pile up behind it forever.
		WorkflowExecutionTimeout: 24 * time.Hour,
	}
}

// Ensure creates the schedule of plan, or brings an existing one up to
// date (spec, action, skip overlap policy) and unpauses it. It reports
// whether the schedule was created.
func Ensure(ctx context.Context, c client.Client, plan *engine.Plan) (created bool, err error) {
	spec, err := Spec(plan)
	if err != nil {
		return false, err
	}
	note := fmt.Sprintf("rapport deploy %s@%s", plan.Name, plan.Version)
	sc := c.ScheduleClient()
	_, err = sc.Create(ctx, client.ScheduleOptions{
		ID:            ScheduleID(plan.Name),
		Spec:          spec,
		Action:        action(plan),
		Overlap:       enums.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: catchupWindow,
		Note:          note,
	})
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return false, fmt.Errorf("create schedule %s: %w", ScheduleID(plan.Name), err)
	}
	h := sc.GetHandle(ctx, ScheduleID(plan.Name))
	err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		s.Spec = &spec
		s.Action = action(plan)
		if s.Policy == nil {
			s.Policy = &client.SchedulePolicies{}
		}
		s.Policy.Overlap = enums.SCHEDULE_OVERLAP_POLICY_SKIP
		s.Policy.CatchupWindow = catchupWindow
		if s.State == nil {
			s.State = &client.ScheduleState{}
		}
		s.State.Paused, s.State.Note = false, note
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
	if err != nil {
		return false, fmt.Errorf("update schedule %s: %w", ScheduleID(plan.Name), err)
	}
	return false, nil
}

// pauseConfirm bounds how long Pause waits for the pause to show.
const pauseConfirm = time.Minute

// Pause pauses the schedule of playbook, if there is one; it reports
// whether one was found. Scans already running finish.
//
// A pause and an update reach the server's scheduler as signals, and when
// both arrive before it runs it applies them in an order of its own: a
// deploy's update (which unpauses) sent just before an undeploy's pause
// can win, leaving the schedule running. So Pause reads the schedule back
// and pauses again until the pause shows (seen in the e2e test on a loaded
// two-core machine: the pause never showed without this).
func Pause(ctx context.Context, c client.Client, playbook, note string) (bool, error) {
	h := c.ScheduleClient().GetHandle(ctx, ScheduleID(playbook))
	deadline := time.Now().Add(pauseConfirm)
	for {
		err := h.Pause(ctx, client.SchedulePauseOptions{Note: note})
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("pause schedule %s: %w", ScheduleID(playbook), err)
		}
		if d, err := h.Describe(ctx); err == nil && d.Schedule.State != nil && d.Schedule.State.Paused {
			return true, nil
		}
		if time.Now().After(deadline) {
			return true, fmt.Errorf("pause schedule %s: still running after %s", ScheduleID(playbook), pauseConfirm)
		}
		select {
		case <-ctx.Done():
			return true, fmt.Errorf("pause schedule %s: %w", ScheduleID(playbook), ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Trigger runs the schedule of playbook now (a scan outside its spec), for
// tests, demos and `rapport deploy --trigger`. A scan already running is
// not doubled, but neither is the trigger dropped: it runs once more after
// the running scan (overlap policy buffer-one). With skip, a trigger that
// met the scheduled scan at the top of the hour was lost, and customers
// stored just before it waited an hour (rapport dev showed no win-back).
func Trigger(ctx context.Context, c client.Client, playbook string) error {
	h := c.ScheduleClient().GetHandle(ctx, ScheduleID(playbook))
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enums.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE}); err != nil {
		return fmt.Errorf("trigger schedule %s: %w", ScheduleID(playbook), err)
	}
	return nil
}

// Register registers the scan workflows (a scan and the scan of one
// partition) and the activities with a worker.
func Register(r workflows.Registry, a *Activities) {
	r.RegisterWorkflowWithOptions(Workflow, workflowRegisterOptions)
	r.RegisterWorkflowWithOptions(PartitionWorkflow, partitionRegisterOptions)
	r.RegisterActivity(a)
}
