package workflows

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// Bounds that keep every run's history and memory small.
const (
	// MaxHistory is the history length (events) past which a journey
	// continues as new at its next wait, so no run's history grows large
	// however long the journey loops.
	MaxHistory = 1000
	// maxStepLog bounds the step log kept within one run; carriedStepLog
	// is the tail carried into the next run.
	maxStepLog     = 2000
	carriedStepLog = 50
	// maxSeenIDs bounds the set of recent event IDs used to drop duplicates.
	maxSeenIDs = 256
	// maxStepsWithoutWait stops a journey that loops without ever waiting
	// (the compiler rejects such cycles; this guards the interpreter).
	maxStepsWithoutWait = 10_000
	// maxDefers bounds how often one send is deferred by the frequency cap.
	maxDefers = 100
)

// changeHoldoutReceivesNothing names the workflow change after which a
// holdout enrollment receives nothing from the playbook: no profile
// update, points, coupon or task (sends were suppressed already; now
// transactional ones too, by the send activity). Runs recorded before it
// did those steps for holdouts too.
const changeHoldoutReceivesNothing = "holdout-receives-nothing"

// withhold skips an action step of a holdout enrollment and records it as
// suppressed with the reason holdout (step log, step record, report). The
// journey goes on along its path, so both groups are measured over the
// same waits and goal window.
func (j *journey) withhold(step *engine.Step, key string) (bool, error) {
	if !j.holdout || !j.holdoutReceivesNothing() {
		return false, nil
	}
	j.logStep(step.ID, string(step.Kind), "suppressed ("+activities.ReasonHoldout+")")
	return true, j.record(step, key+"/"+activities.ReasonHoldout, SuppressedBranch+activities.ReasonHoldout, string(step.Kind)+" suppressed ("+activities.ReasonHoldout+")")
}

// holdoutReceivesNothing says whether this run follows
// changeHoldoutReceivesNothing; asked only for holdout enrollments.
func (j *journey) holdoutReceivesNothing() bool {
	return j.version(changeHoldoutReceivesNothing, 1) >= 1
}

// SuppressedBranch prefixes the branch of a step record for an action the
// journey did not take ("suppressed:holdout"); reports count them with the
// step's suppressed messages.
const SuppressedBranch = "suppressed:"

// changeBoundedDeferrals names the workflow change that lets a deferred
// send continue as new mid-deferral (version 1), takes in pending events
// just before every continue-as-new (1), and does not continue as new
// before a wait while events are pending, so that the wait sees them (2).
// Runs recorded before it waited out deferrals in one run.
const (
	changeBoundedDeferrals = "bounded-deferrals"
	boundedDeferrals       = 2 // the version new runs take
)

// boundedDeferralsVersion is the version of changeBoundedDeferrals this run
// follows.
func (j *journey) boundedDeferralsVersion() workflow.Version {
	return j.version(changeBoundedDeferrals, boundedDeferrals)
}

// Journey runs one enrollment of a customer in a playbook: it loads the
// pinned plan (loadPlan), applies the entry policy, walks the plan and
// records the outcome. See the package documentation.
func Journey(ctx workflow.Context, in JourneyInput) (JourneyResult, error) {
	plan, err := loadPlan(in)
	if err != nil {
		return JourneyResult{}, err
	}
	j := newJourney(ctx, in, plan)
	if err := workflow.SetQueryHandler(ctx, StateQuery, j.state); err != nil {
		return JourneyResult{}, fmt.Errorf("register the %s query: %w", StateQuery, err)
	}
	return j.run()
}

// loadPlan decodes the plan the enrollment is pinned to (or, for a journey
// started before plans were pinned, compiles its source) and checks that it
// is the version the enrollment was started on.
func loadPlan(in JourneyInput) (*engine.Plan, error) {
	var plan *engine.Plan
	var err error
	if len(in.Plan) > 0 {
		plan, err = engine.DecodePlan(in.Plan)
	} else {
		plan, err = engine.CompileStarted(in.sourceBytes())
	}
	if err != nil {
		// The plan loaded when the journey started, so a worker that
		// cannot load it disagrees with the release that started it: a
		// plan format newer than this worker (a rollback, a rolling
		// upgrade half done), or a rule or compiler made stricter since.
		// Failing the journey would end it for good; panicking fails this
		// workflow task only, which Temporal retries until a worker that
		// can load the plan takes it.
		panic(fmt.Sprintf("journey of %s in playbook %s version %s: cannot load its plan on this worker: %v", in.CustomerID, in.Playbook, in.Version, err))
	}
	if plan.Name != in.Playbook || plan.Version != in.Version {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the source is playbook %s version %s, but the enrollment is for %s version %s",
				plan.Name, plan.Version, in.Playbook, in.Version), ErrTypeInvalidPlaybook, nil)
	}
	return plan, nil
}

// journey is the interpreter state of one run.
type journey struct {
	ctx  workflow.Context
	in   JourneyInput
	plan *engine.Plan
	enr  activities.Enrollment
	eval rules.Evaluator

	customer rules.Customer
	stale    bool // customer must be reloaded before it is next used
	event    rules.Event
	coupon   rules.Coupon
	holdout  bool
	// globalControl: the customer is in the global control group (and so
	// a holdout); set at entry.
	globalControl bool
	// converted: the journey reached a goal that continues (see checkGoal).
	converted bool
	// messages: the watched send steps' messages (see engagement.go).
	messages map[string]MessageState

	enrolledAt     time.Time
	goalDeadline   time.Time
	pc             int
	resumeDeadline time.Time // deadline of the wait at pc when resumed mid-wait
	resumeDeferral *Deferral // the deferral of the send at pc when resumed mid-deferral
	deferral       *Deferral // the deferral being waited out now
	visits         map[string]int
	seen           *recentIDs
	events         workflow.ReceiveChannel

	log        []StepLog
	seq        int
	status     activities.Status
	reason     string
	waitingFor string
	counters   Counters
	blocks     int // blocking waits so far in this run
	sinceWait  int // steps since the last wait that waited, across runs
	est        int // estimated history events of this run
}

// ending stops the walk with an outcome. unrecorded is set when there is no
// enrollment to close (the re-entry policy refused it).
type ending struct {
	status     activities.Status
	reason     string
	goal       string // the goal event that ended the journey as converted
	unrecorded bool
}

func (e *ending) Error() string { return fmt.Sprintf("journey ends %s (%s)", e.status, e.reason) }

func newJourney(ctx workflow.Context, in JourneyInput, plan *engine.Plan) *journey {
	info := workflow.GetInfo(ctx)
	j := &journey{
		ctx: ctx, in: in, plan: plan,
		stale:  true,
		visits: map[string]int{},
		seen:   newRecentIDs(maxSeenIDs),
		events: workflow.GetSignalChannel(ctx, EventSignal),
		status: activities.StatusActive,
		est:    3, // started, first workflow task scheduled and started
	}
	enrollmentID := info.FirstRunID
	if enrollmentID == "" {
		// Only the SDK test environment has no first run ID (and gives
		// every run the same run ID): name the enrollment by workflow ID
		// and start time, unique and reproducible in a simulation.
		enrollmentID = SimulatedEnrollmentID(info.WorkflowExecution.ID, workflow.Now(ctx))
	}
	if r := in.Resume; r != nil {
		j.restore(r)
		enrollmentID = r.EnrollmentID
	} else {
		j.enrolledAt = workflow.Now(ctx)
		j.event = in.Trigger
		// The trigger is already applied: if a retried dispatch signals
		// it again, it must not count as a new event (a purchase-triggered
		// playbook with a purchase goal would convert on its own trigger).
		if in.Trigger.ID != "" {
			j.seen.add(in.Trigger.ID)
		}
		j.holdout = inHoldout(plan, in.CustomerID)
		j.counters.Runs = 1
		if plan.Goal != nil {
			j.goalDeadline = j.enrolledAt.Add(plan.Goal.Within)
		}
	}
	j.enr = activities.Enrollment{
		ID: enrollmentID, WorkflowID: info.WorkflowExecution.ID, Playbook: plan.Name,
		Version: plan.Version, CustomerID: in.CustomerID, Holdout: j.holdout,
	}
	return j
}

// SimulatedEnrollmentID is the enrollment ID of a journey in the SDK test
// environment, which has no first run ID: its workflow ID and start time.
// The simulator derives the props of message events from it.
func SimulatedEnrollmentID(workflowID string, start time.Time) string {
	return workflowID + "@" + start.UTC().Format(time.RFC3339)
}

// run enters (first run only), walks the plan and closes the enrollment.
func (j *journey) run() (JourneyResult, error) {
	var err error
	if j.in.Resume == nil {
		err = j.enter()
	}
	if err == nil {
		err = j.walk()
	}
	return j.finish(err)
}

// enter applies the entry policy: the store's re-entry check, then the
// audience rule. The holdout draw was made in newJourney.
func (j *journey) enter() error {
	var res activities.EntryResult
	req := activities.EntryRequest{
		Enrollment: j.enr, Reentry: string(j.plan.Entry.Reentry),
		Cooldown: j.plan.Entry.Cooldown, At: workflow.Now(j.ctx), TriggerID: j.in.Trigger.ID,
		GlobalControl: j.plan.Entry.GlobalControl,
		WithCustomer:  j.in.Edition >= Edition1,
	}
	if err := j.local("record start", activities.ActRecordStart, &res, req); err != nil {
		return fmt.Errorf("record the start of the enrollment: %w", err)
	}
	if res.Customer != nil {
		j.customer, j.stale = *res.Customer, false
	}
	if !res.Admitted {
		j.logStep("entry", "enter", "refused ("+res.Reason+")")
		return &ending{status: activities.StatusRejected, reason: res.Reason, unrecorded: true}
	}
	if res.GlobalControl {
		// The store decided (and recorded) that the customer is in the
		// global control group: from here on a holdout like any other.
		j.holdout, j.enr.Holdout, j.globalControl = true, true, true
	}
	if aud := j.plan.Entry.Audience; aud != nil {
		ok, err := j.decide(aud, "entry.audience", j.event)
		if err != nil {
			return err
		}
		if !ok {
			j.logStep("entry", "enter", "rejected (audience)")
			return &ending{status: activities.StatusRejected, reason: "audience"}
		}
	}
	detail := "admitted (trigger " + triggerName(j.plan, j.event) + ")"
	if j.holdout {
		switch {
		case j.globalControl:
			detail += ", global control group: receives nothing from the playbook"
		case j.holdoutReceivesNothing():
			detail += ", holdout: receives nothing from the playbook"
		default:
			detail += ", holdout: marketing sends are suppressed"
		}
	}
	j.logStep("entry", "enter", detail)
	return nil
}

// walk runs steps from pc until the plan ends or something ends the
// journey. Before every step it takes in the events that arrived (goal,
// exit_when) and checks exit_when.
func (j *journey) walk() error {
	for j.pc != engine.End {
		if j.pc < 0 || j.pc >= len(j.plan.Steps) {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("step index %d is outside the plan", j.pc), ErrTypeInvalidPlaybook, nil)
		}
		if err := j.drainEvents(); err != nil {
			return err
		}
		if err := j.checkExitWhen(j.event); err != nil {
			return err
		}
		step := &j.plan.Steps[j.pc]
		if step.Kind == engine.KindWait && j.resumeDeadline.IsZero() && j.historyFull() &&
			(j.events.Len() == 0 || j.boundedDeferralsVersion() < 2) {
			// With events pending the wait starts in this run, so that it
			// sees them; it continues as new from inside once they are in.
			return j.continueAsNew(time.Time{})
		}
		if j.resumeDeadline.IsZero() && j.resumeDeferral == nil {
			j.visits[step.ID]++ // not when resuming the step mid-wait or mid-deferral
		}
		key := fmt.Sprintf("%s/%s/%d", j.enr.ID, step.ID, j.visits[step.ID])
		blocks := j.blocks
		next, err := j.exec(step, key)
		if err != nil {
			return err
		}
		j.counters.Steps++
		j.pc = next
		if j.sinceWait++; j.blocks != blocks {
			j.sinceWait = 0
		}
		if j.sinceWait > maxStepsWithoutWait {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("more than %d steps without a wait (last %s): the playbook loops", maxStepsWithoutWait, step.ID), ErrTypeRunaway, nil)
		}
	}
	return &ending{status: activities.StatusCompleted}
}

// exec runs one step and returns the index of the next one.
func (j *journey) exec(step *engine.Step, key string) (int, error) {
	switch step.Kind {
	case engine.KindUpdate, engine.KindPoints, engine.KindCoupon, engine.KindTask:
		if withheld, err := j.withhold(step, key); err != nil || withheld {
			return step.Next, err
		}
	}
	switch step.Kind {
	case engine.KindSend:
		return j.send(step, key)
	case engine.KindWait:
		return j.wait(step, key)
	case engine.KindIf:
		return j.branch(step, key)
	case engine.KindSplit:
		return j.split(step, key)
	case engine.KindUpdate:
		return j.update(step, key)
	case engine.KindPoints:
		return j.points(step, key)
	case engine.KindCoupon:
		return j.issueCoupon(step, key)
	case engine.KindTask:
		return j.task(step, key)
	case engine.KindGoto:
		j.logStep(step.ID, "goto", j.stepID(step.Next))
		return step.Next, nil
	case engine.KindExit:
		j.logStep(step.ID, "exit", step.Exit.Reason)
		return 0, &ending{status: activities.StatusExited, reason: step.Exit.Reason}
	}
	return 0, temporal.NewNonRetryableApplicationError(fmt.Sprintf("step %s has unknown kind %q", step.ID, step.Kind), ErrTypeInvalidPlaybook, nil)
}

// finish closes the enrollment: it records the outcome and the final
// visibility, and returns the result (or the error that failed the run).
func (j *journey) finish(err error) (JourneyResult, error) {
	if workflow.IsContinueAsNewError(err) {
		return JourneyResult{}, err
	}
	var end *ending
	canceled := false
	switch {
	case errors.As(err, &end):
	case temporal.IsCanceledError(err):
		canceled = true
		end = &ending{status: activities.StatusExited, reason: "canceled"}
		j.ctx, _ = workflow.NewDisconnectedContext(j.ctx)
	default:
		end = &ending{status: activities.StatusFailed, reason: plainReason(err)}
	}
	j.status, j.reason, j.waitingFor = end.status, end.reason, ""
	j.logStep("-", "outcome", outcomeDetail(end.status, end.reason))
	if !end.unrecorded {
		o := activities.Outcome{Enrollment: j.enr, Status: end.status, Reason: end.reason, At: workflow.Now(j.ctx), Goal: end.goal}
		if rerr := j.local("record outcome "+string(end.status), activities.ActRecordOutcome, nil, o); rerr != nil {
			return JourneyResult{}, fmt.Errorf("record outcome %s: %w", end.status, rerr)
		}
	}
	workflow.SetCurrentDetails(j.ctx, outcomeDetail(end.status, end.reason))
	if uerr := j.upsertVisibility(); uerr != nil {
		return JourneyResult{}, uerr
	}
	if canceled || end.status == activities.StatusFailed {
		return JourneyResult{}, err
	}
	return JourneyResult{EnrollmentID: j.enr.ID, Status: end.status, Reason: end.reason, Holdout: j.holdout,
		Converted: j.converted || end.status == activities.StatusConverted, Counters: j.counters}, nil
}

// sdkErrorNoise is the SDK's wrapping of an activity's error ("activity
// error (type: AdjustPoints, scheduledEventID: 0, startedEventID: 0,
// identity: ): ") and of the application error's type suffix, which say
// nothing to a marketer reading why an enrollment failed.
var sdkErrorNoise = regexp.MustCompile(`activity error \([^)]*\): |local activity error \([^)]*\): | \(type: [A-Za-z]+, retryable: (true|false)\)`)

// plainReason is the recorded reason of a failed enrollment: the error's
// words without the SDK's wrapping.
func plainReason(err error) string {
	return sdkErrorNoise.ReplaceAllString(err.Error(), "")
}

func outcomeDetail(s activities.Status, reason string) string {
	if reason == "" {
		return string(s)
	}
	return fmt.Sprintf("%s (%s)", s, reason)
}

// historyFull says whether this run should continue as new: the server
// suggests it, or the history passed MaxHistory. The SDK test environment
// reports no history length, so the journey's own estimate stands in.
func (j *journey) historyFull() bool {
	info := workflow.GetInfo(j.ctx)
	if info.GetContinueAsNewSuggested() {
		return true
	}
	n := info.GetCurrentHistoryLength()
	if n == 0 {
		n = j.est
	}
	return n > MaxHistory
}

// continueAsNew ends this run and starts the next with a checkpoint.
// deadline is set when a wait is cut short: the next run resumes the wait
// at step pc with the same deadline.
func (j *journey) continueAsNew(deadline time.Time) error {
	// Events that arrived since they were last taken in would be lost with
	// this run: take them in now, with nothing that yields between the
	// last receive and the continue-as-new.
	if j.boundedDeferralsVersion() >= 1 && j.events.Len() > 0 {
		if err := j.drainEvents(); err != nil {
			return err
		}
	}
	j.logStep(j.stepID(j.pc), "continue-as-new", fmt.Sprintf("run %d ends after about %d history events", j.counters.Runs, j.historyLength()))
	in := j.in
	in.Resume = j.checkpoint(deadline)
	if len(in.Plan) == 0 {
		// A journey started before plans were pinned pins the plan it
		// has been running from its next run on.
		pinned, err := engine.Pin(j.plan)
		if err != nil {
			return err
		}
		in.Source, in.Plan = string(in.sourceBytes()), pinned
	}
	return workflow.NewContinueAsNewError(j.ctx, WorkflowName, in)
}

func (j *journey) historyLength() int {
	if n := workflow.GetInfo(j.ctx).GetCurrentHistoryLength(); n > 0 {
		return n
	}
	return j.est
}

func (j *journey) checkpoint(deadline time.Time) *Checkpoint {
	tail := j.log
	if len(tail) > carriedStepLog {
		tail = tail[len(tail)-carriedStepLog:]
	}
	var deferral *Deferral
	if j.deferral != nil {
		// A deferral's deadline travels in the deferral, never in
		// Deadline: a worker older than deferral checkpoints ignores
		// Deferral and would take Deadline for the deadline of the next
		// wait step it reaches. Without it, such a worker only tries the
		// send again early, and the cap and quiet hours still apply.
		d := *j.deferral
		d.Until, deadline = deadline, time.Time{}
		deferral = &d
	}
	return &Checkpoint{
		EnrollmentID: j.enr.ID, PC: j.pc, Deadline: deadline, Deferral: deferral, Visits: j.visits,
		Seen: j.seen.list(), EnrolledAt: j.enrolledAt, GoalDeadline: j.goalDeadline,
		Holdout: j.holdout, Converted: j.converted, Coupon: j.coupon, Event: j.event,
		Steps: slices.Clone(tail), Seq: j.seq, Counters: j.counters, SinceWait: j.sinceWait,
		Messages: j.messages,
	}
}

func (j *journey) restore(r *Checkpoint) {
	j.pc, j.resumeDeadline, j.resumeDeferral = r.PC, r.Deadline, r.Deferral
	if r.Visits != nil {
		j.visits = r.Visits
	}
	for _, id := range r.Seen {
		j.seen.add(id)
	}
	j.enrolledAt, j.goalDeadline = r.EnrolledAt, r.GoalDeadline
	j.holdout, j.converted, j.coupon, j.event = r.Holdout, r.Converted, r.Coupon, r.Event
	j.log, j.seq, j.counters, j.sinceWait = slices.Clone(r.Steps), r.Seq, r.Counters, r.SinceWait
	j.messages = r.Messages
	j.counters.Runs++
}

// state answers the state query.
func (j *journey) state() (State, error) {
	return State{
		Playbook: j.plan.Name, Version: j.plan.Version, CustomerID: j.in.CustomerID,
		EnrollmentID: j.enr.ID, Status: j.status, CurrentStep: j.currentStep(),
		WaitingFor: j.waitingFor, Holdout: j.holdout, Converted: j.converted || j.status == activities.StatusConverted,
		Steps:   slices.Clone(j.log),
		Outcome: j.outcome(), Reason: j.reason, Counters: j.counters, EstimatedEvents: j.est,
		Messages: j.messageStatuses(),
	}, nil
}

func (j *journey) outcome() activities.Status {
	if j.status == activities.StatusActive {
		return ""
	}
	return j.status
}

func (j *journey) currentStep() string {
	if j.status != activities.StatusActive || j.pc == engine.End {
		return ""
	}
	return j.stepID(j.pc)
}

// stepID names step i for messages ("end" past the last step).
func (j *journey) stepID(i int) string { return stepAt(j.plan, i) }

// stepAt is the ID of plan's step i, "end" past the last.
func stepAt(plan *engine.Plan, i int) string {
	if i < 0 || i >= len(plan.Steps) {
		return "end"
	}
	return plan.Steps[i].ID
}

// logStep appends to the step log, dropping the oldest half when it is full.
func (j *journey) logStep(stepID, kind, detail string) {
	j.seq++
	if len(j.log) >= maxStepLog {
		j.log = slices.Delete(j.log, 0, maxStepLog/2)
	}
	j.log = append(j.log, StepLog{Seq: j.seq, At: workflow.Now(j.ctx), StepID: stepID, Kind: kind, Detail: detail})
}

func triggerName(plan *engine.Plan, ev rules.Event) string {
	if ev.Name != "" {
		return ev.Name
	}
	return string(plan.Trigger.Kind)
}
