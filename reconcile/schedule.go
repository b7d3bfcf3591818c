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

// OffNote is the note of a schedule Rapport paused itself, because a
// worker started with RAPPORT_RECONCILE_INTERVAL=off. A schedule paused
// with any other note was paused by hand, and no worker resumes it.
const OffNote = "RAPPORT_RECONCILE_INTERVAL=off"

// PausedByRapport reports whether a schedule paused with this note was
// paused by a worker (RAPPORT_RECONCILE_INTERVAL=off) rather than by hand.
func PausedByRapport(note string) bool { return note == OffNote }

// Ensured is what Ensure did.
type Ensured struct {
	Created bool // the schedule did not exist
	// Paused: the schedule is paused, by this call or an earlier worker
	// (RAPPORT_RECONCILE_INTERVAL=off) or by hand (ByHand).
	Paused bool
	// ByHand: an operator paused the schedule (its pause note is not
	// OffNote); it stays paused whatever the interval.
	ByHand bool
	Note   string // the pause note when Paused
}

// Ensure creates the reconcile schedule, or brings an existing one up to
// date (spec, action with the grace, overlap policy skip). Every worker
// calls it when it starts, so the last worker started decides.
//
// With cfg.Interval 0 (RAPPORT_RECONCILE_INTERVAL=off) it pauses a
// running schedule, with OffNote, and changes nothing else. With an
// interval it resumes a schedule paused with OffNote, and leaves one
// paused by hand (any other note: `temporal schedule toggle --pause
// --reason …`, the UI) paused with its note: no worker resumes or re-notes
// a schedule an operator paused.
func Ensure(ctx context.Context, c client.Client, cfg Config) (Ensured, error) {
	sc := c.ScheduleClient()
	if cfg.Interval <= 0 {
		var out Ensured
		err := sc.GetHandle(ctx, ScheduleID).Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			if s.State == nil {
				s.State = &client.ScheduleState{}
			}
			if s.State.Paused {
				out = Ensured{Paused: true, ByHand: !PausedByRapport(s.State.Note), Note: s.State.Note}
				return nil, temporal.ErrSkipScheduleUpdate
			}
			s.State.Paused, s.State.Note = true, OffNote
			out = Ensured{Paused: true, Note: OffNote}
			return &client.ScheduleUpdate{Schedule: &s}, nil
		}})
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return Ensured{}, nil
		}
		if err != nil {
			return Ensured{}, fmt.Errorf("pause schedule %s: %w", ScheduleID, err)
		}
		return out, nil
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: cfg.Interval}}}
	_, err := sc.Create(ctx, client.ScheduleOptions{
		ID:            ScheduleID,
		Spec:          spec,
		Action:        action(cfg),
		Overlap:       enums.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: catchup(cfg),
		Note:          note(cfg),
	})
	if err == nil {
		return Ensured{Created: true}, nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return Ensured{}, fmt.Errorf("create schedule %s: %w", ScheduleID, err)
	}
	var out Ensured
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
		if s.State.Paused && !PausedByRapport(s.State.Note) {
			out = Ensured{Paused: true, ByHand: true, Note: s.State.Note}
		} else {
			out = Ensured{}
			s.State.Paused, s.State.Note = false, note(cfg)
		}
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
	if err != nil {
		return Ensured{}, fmt.Errorf("update schedule %s: %w", ScheduleID, err)
	}
	return out, nil
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
