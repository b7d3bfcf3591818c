package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/rapport-crm/rapport/workflows"
)

// ScheduleID is the ID of the reconcile schedule (one per namespace).
const ScheduleID = "rapport-reconcile"

// Defaults of the schedule.
const (
	DefaultInterval = 10 * time.Minute
	DefaultGrace    = 10 * time.Minute
)

// passTimeout bounds one pass: one that cannot finish within it is
// broken, and the next tick starts afresh.
const passTimeout = 6 * time.Hour

// Config is how often passes run and how old an enrollment must be to be
// judged.
type Config struct {
	Interval time.Duration // 0: no passes (the schedule is paused)
	Grace    time.Duration
}

// ConfigFromEnv reads
//
//	RAPPORT_RECONCILE_INTERVAL  time between passes, a Go duration (default 10m); "off" pauses the schedule
//	RAPPORT_RECONCILE_GRACE     enrollments younger than this are not judged (default 10m)
func ConfigFromEnv() (Config, error) {
	cfg := Config{Interval: DefaultInterval, Grace: DefaultGrace}
	if v := os.Getenv("RAPPORT_RECONCILE_INTERVAL"); v == "off" {
		cfg.Interval = 0
	} else if v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return Config{}, fmt.Errorf("RAPPORT_RECONCILE_INTERVAL %q: want a duration of at least 1s, like 10m, or off", v)
		}
		cfg.Interval = d
	}
	if v := os.Getenv("RAPPORT_RECONCILE_GRACE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return Config{}, fmt.Errorf("RAPPORT_RECONCILE_GRACE %q: want a duration, like 10m", v)
		}
		cfg.Grace = d
	}
	return cfg, nil
}

func action(cfg Config) *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		ID:                       "rapport-reconcile-run",
		Workflow:                 WorkflowName,
		Args:                     []any{Input{Grace: cfg.Grace}},
		TaskQueue:                workflows.TaskQueue,
		WorkflowExecutionTimeout: passTimeout,
	}
}

// catchup is how late a pass missed while the server was down still
// runs: one interval (at least a minute); older ones are not worth making
// up, the next pass does their work.
func catchup(cfg Config) time.Duration { return max(cfg.Interval, time.Minute) }

func note(cfg Config) string {
	return fmt.Sprintf("rapport worker: a pass every %s, judging enrollments older than %s", cfg.Interval, cfg.Grace)
}

// Ensure creates the reconcile schedule, or brings an existing one up to
// date (spec, action with the grace, overlap policy skip) and unpauses
// it; with cfg.Interval 0 it pauses an existing one instead. Every worker
// calls it when it starts, so the last worker started decides. It reports
// whether the schedule was created.
func Ensure(ctx context.Context, c client.Client, cfg Config) (created bool, err error) {
	sc := c.ScheduleClient()
	if cfg.Interval <= 0 {
		err := sc.GetHandle(ctx, ScheduleID).Pause(ctx, client.SchedulePauseOptions{Note: "RAPPORT_RECONCILE_INTERVAL=off"})
		var nf *serviceerror.NotFound
		if err != nil && !errors.As(err, &nf) {
			return false, fmt.Errorf("pause schedule %s: %w", ScheduleID, err)
		}
		return false, nil
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: cfg.Interval}}}
	_, err = sc.Create(ctx, client.ScheduleOptions{
		ID:            ScheduleID,
		Spec:          spec,
		Action:        action(cfg),
		Overlap:       enums.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: catchup(cfg),
		Note:          note(cfg),
	})
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return false, fmt.Errorf("create schedule %s: %w", ScheduleID, err)
	}
	err = sc.GetHandle(ctx, ScheduleID).Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		s.Spec = &spec
		s.Action = action(cfg)
		if s.Policy == nil {
			s.Policy = &client.SchedulePolicies{}
		}
		s.Policy.Overlap = enums.SCHEDULE_OVERLAP_POLICY_SKIP
		s.Policy.CatchupWindow = catchup(cfg)
		if s.State == nil {
			s.State = &client.ScheduleState{}
		}
		s.State.Paused, s.State.Note = false, note(cfg)
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
	if err != nil {
		return false, fmt.Errorf("update schedule %s: %w", ScheduleID, err)
	}
	return false, nil
}

// EnsureFromEnv is Ensure with ConfigFromEnv, what a worker does when it
// starts.
func EnsureFromEnv(ctx context.Context, c client.Client) error {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return err
	}
	_, err = Ensure(ctx, c, cfg)
	return err
}

// Trigger starts a pass now (outside the schedule's interval); a pass
// already running is not doubled.
func Trigger(ctx context.Context, c client.Client) error {
	h := c.ScheduleClient().GetHandle(ctx, ScheduleID)
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enums.SCHEDULE_OVERLAP_POLICY_SKIP}); err != nil {
		return fmt.Errorf("trigger schedule %s: %w", ScheduleID, err)
	}
	return nil
}

// Register registers the Reconcile workflow and the activity with a worker.
func Register(r workflows.Registry, a *Activities) {
	r.RegisterWorkflowWithOptions(Workflow, workflowRegisterOptions)
	r.RegisterActivity(a.ReconcilePage) // the only activity: not Pass
}
