package workflows

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// Local activity options. Journey activities run as local activities: each
// is one marker event in the history instead of the ~6 events of a regular
// activity, which keeps the history of an enrollment small. They are short
// database calls (and one provider call for sends), so 30 seconds bounds an
// attempt.
//
// An outage waits, it does not fail: a failing activity is retried for up
// to OutageBudget, backing off to one try every MaxOutageBackoff. Retries
// further apart than the workflow task timeout wait on a durable timer (the
// SDK records the backoff in the marker), so a journey rides out a
// PostgreSQL or provider outage across worker restarts, and every retry
// reuses the step's idempotency key: nothing is sent twice. A six-hour
// outage costs about 30 retries, some 180 history events.
const (
	OutageBudget     = 7 * 24 * time.Hour
	MaxOutageBackoff = 15 * time.Minute
)

var (
	localRetry = &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        MaxOutageBackoff,
		NonRetryableErrorTypes: []string{activities.ErrTypePermanent},
	}
	localTimeouts = workflow.LocalActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: OutageBudget,
		RetryPolicy:            localRetry,
	}
)

// local runs the named activity as a local activity and decodes its result
// into result (nil for none).
func (j *journey) local(summary, name string, result any, arg any) error {
	opts := localTimeouts
	opts.Summary = summary
	ctx := workflow.WithLocalActivityOptions(j.ctx, opts)
	j.est++ // one marker event
	return workflow.ExecuteLocalActivity(ctx, name, arg).Get(ctx, result)
}

// loadCustomer returns the customer, reading it again when stale: at the
// start of a run, after every blocking wait, and after the journey's own
// profile and points changes. Between consecutive non-blocking steps the
// cached profile is used, so a run of steps costs one read.
func (j *journey) loadCustomer() (rules.Customer, error) {
	if !j.stale {
		return j.customer, nil
	}
	var c rules.Customer
	if err := j.local("load customer "+j.in.CustomerID, activities.ActLoadCustomer, &c, j.in.CustomerID); err != nil {
		return rules.Customer{}, fmt.Errorf("load customer %s: %w", j.in.CustomerID, err)
	}
	j.customer, j.stale = c, false
	return c, nil
}

// env is the rule environment now, with ev as `event`.
func (j *journey) env(ev rules.Event) (rules.Env, error) {
	c, err := j.loadCustomer()
	if err != nil {
		return rules.Env{}, err
	}
	env := rules.NewEnv(c, ev, workflow.Now(j.ctx))
	env.Coupon, env.Messages = j.coupon, j.messageStatuses()
	return env, nil
}

// decide evaluates a bool rule; where names it in errors.
func (j *journey) decide(r *rules.Rule, where string, ev rules.Event) (bool, error) {
	env, err := j.env(ev)
	if err != nil {
		return false, err
	}
	ok, err := j.eval.Bool(r, &env)
	if err != nil {
		return false, ruleError(where, r, err)
	}
	return ok, nil
}

func (j *journey) number(r *rules.Rule, where string) (float64, error) {
	env, err := j.env(j.event)
	if err != nil {
		return 0, err
	}
	f, err := j.eval.Number(r, &env)
	if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
		err = fmt.Errorf("the value is %v", f)
	}
	if err != nil {
		return 0, ruleError(where, r, err)
	}
	return f, nil
}

// ruleError fails the enrollment: a rule that cannot be evaluated is a
// playbook bug that a retry cannot fix.
func ruleError(where string, r *rules.Rule, err error) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: rule %q: %v", where, r.Source, err), ErrTypeRule, nil)
}

// record writes a step record for a decision (branch taken, wait outcome,
// deferral). Steps whose activity keeps its own record under the same key
// (sends, updates, points, coupons, tasks) are not recorded again.
func (j *journey) record(step *engine.Step, key, branch, detail string) error {
	rec := activities.StepRecord{
		Enrollment: j.enr, Key: key, StepID: step.ID, Kind: string(step.Kind),
		Detail: detail, Branch: branch, At: workflow.Now(j.ctx),
	}
	if err := j.local("record "+step.ID+" "+detail, activities.ActRecordStep, nil, rec); err != nil {
		return fmt.Errorf("step %s: record %q: %w", step.ID, detail, err)
	}
	return nil
}

// send delivers a template. A marketing send first waits out the quiet
// hours; a send deferred by the frequency cap waits until the store says it
// may try again. Transactional sends ignore quiet hours as well as consent
// and caps: a receipt or a complaint acknowledgement must not wait for the
// morning (a holdout's are suppressed by the send activity all the same). A deferral can outlast a run: the run continues as new
// mid-deferral and the next one resumes it here (see resumeDeferral).
func (j *journey) send(step *engine.Step, key string) (int, error) {
	s := step.Send
	attempt := 1
	if d, until := j.takeDeferral(); d != nil {
		if err := j.waitDeferral(step, *d, until); err != nil {
			return 0, err
		}
		attempt = d.Attempt
		if d.Reason == activities.ReasonFrequencyCap {
			attempt++
		}
	} else {
		j.counters.Sends++
	}
	for ; ; attempt++ {
		if err := j.quietHours(step, key, attempt); err != nil {
			return 0, err
		}
		req, err := j.sendRequest(step, key)
		if err != nil {
			return 0, err
		}
		var res activities.SendResult
		summary := fmt.Sprintf("send %s %s → %s (%s)", s.Channel, s.Template, j.recipient(s.Channel, req.Customer), req.Locale)
		if err := j.local(summary, activities.ActSendMessage, &res, req); err != nil {
			if !isPermanent(err) {
				// The error names no recipient: errors reach logs.
				return 0, fmt.Errorf("step %s: send %s %s: %w", step.ID, s.Channel, s.Template, err)
			}
			res = activities.SendResult{Status: activities.SendFailed, Reason: err.Error()}
		}
		if res.Status != activities.SendDeferred || attempt >= maxDefers {
			j.logStep(step.ID, "send", sendDetail(s, req.Locale, res))
			j.counters.countMessage(res)
			j.noteSend(step.ID, key, res.Status)
			return step.Next, nil
		}
		if err := j.deferSend(step, key, attempt, res.RetryAt); err != nil {
			return 0, err
		}
	}
}

// deferSend waits until a deferred send may be tried again.
func (j *journey) deferSend(step *engine.Step, key string, attempt int, retryAt time.Time) error {
	now := workflow.Now(j.ctx)
	if !retryAt.After(now) {
		retryAt = now.Add(time.Hour)
	}
	detail := "frequency cap: deferred until " + j.localTime(retryAt)
	j.logStep(step.ID, "defer", detail)
	if err := j.record(step, fmt.Sprintf("%s/%s/%d", key, activities.ReasonFrequencyCap, attempt), "", detail); err != nil {
		return err
	}
	return j.waitDeferral(step, Deferral{Reason: activities.ReasonFrequencyCap, Attempt: attempt}, retryAt)
}

// quietHours waits, before a marketing send, until the customer's local
// quiet window is over, and records the deferral.
func (j *journey) quietHours(step *engine.Step, key string, attempt int) error {
	q := j.plan.Policies.QuietHours
	if q == nil || step.Send.Transactional {
		return nil
	}
	c, err := j.loadCustomer()
	if err != nil {
		return err
	}
	end, quiet := QuietUntil(workflow.Now(j.ctx), rules.Location(c.Timezone), q.Start, q.End)
	if !quiet {
		return nil
	}
	detail := "quiet hours: deferred until " + j.localTime(end)
	j.logStep(step.ID, "defer", detail)
	if err := j.record(step, key+"/"+activities.ReasonQuietHours, "", detail); err != nil {
		return err
	}
	return j.waitDeferral(step, Deferral{Reason: activities.ReasonQuietHours, Attempt: attempt}, end)
}

// waitDeferral blocks until a deferred send's time. Events are taken in
// meanwhile, and a run whose history fills up continues as new with the
// deferral in its checkpoint, so a long deferral under a stream of events
// keeps every run's history bounded.
func (j *journey) waitDeferral(step *engine.Step, d Deferral, until time.Time) error {
	why := fmt.Sprintf("%s: send %s deferred by quiet hours until %s", step.ID, step.Send.Template, j.localTime(until))
	if d.Reason == activities.ReasonFrequencyCap {
		why = fmt.Sprintf("%s: send %s deferred by the frequency cap until %s", step.ID, step.Send.Template, j.localTime(until))
	}
	j.deferral = &d
	defer func() { j.deferral = nil }()
	cut := j.boundedDeferralsVersion() >= 1
	if cut && j.historyFull() {
		return j.continueAsNew(until)
	}
	_, err := j.block(until, why, nil, cut)
	return err
}

// takeDeferral returns the deferral this run resumes, with its deadline,
// once: the first send step of a run continued mid-deferral.
func (j *journey) takeDeferral() (*Deferral, time.Time) {
	d, until := j.resumeDeferral, j.resumeDeadline
	if d == nil {
		return nil, time.Time{}
	}
	if !d.Until.IsZero() {
		until = d.Until
	}
	j.resumeDeferral, j.resumeDeadline = nil, time.Time{}
	return d, until
}

// sendRequest builds the request with the variant for the customer's locale.
func (j *journey) sendRequest(step *engine.Step, key string) (activities.SendRequest, error) {
	s := step.Send
	c, err := j.loadCustomer()
	if err != nil {
		return activities.SendRequest{}, err
	}
	v, locale := j.plan.Template(s.Template, c.Locale)
	if v == nil {
		return activities.SendRequest{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("step %s: template %s has no variant for locale %q", step.ID, s.Template, c.Locale), ErrTypeInvalidPlaybook, nil)
	}
	req := activities.SendRequest{
		Enrollment: j.enr, Key: key, StepID: step.ID, Channel: string(s.Channel),
		Template: s.Template, Locale: locale, Topic: j.plan.Topic, Transactional: s.Transactional,
		Subject: v.Subject, Text: v.Text, HTML: v.HTML,
		Customer: c, Event: j.event, Coupon: j.coupon, Now: workflow.Now(j.ctx), Tracking: j.plan.Tracking,
	}
	if fc := j.plan.Policies.FrequencyCap; fc != nil && !s.Transactional {
		req.CapMax, req.CapPer, req.CapDefer = fc.Max, fc.Per, fc.Action == engine.CapDefer
	}
	return req, nil
}

func sendDetail(s *engine.SendStep, locale string, res activities.SendResult) string {
	switch res.Status {
	case activities.SendSent:
		return fmt.Sprintf("%s %s (locale %s)", s.Channel, s.Template, locale)
	case activities.SendDeferred:
		return fmt.Sprintf("%s %s skipped (deferred %d times)", s.Channel, s.Template, maxDefers)
	default:
		return fmt.Sprintf("%s %s %s (%s)", s.Channel, s.Template, res.Status, res.Reason)
	}
}

// isPermanent says whether an activity failed for good.
func isPermanent(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && (app.NonRetryable() || app.Type() == activities.ErrTypePermanent)
}

// branch runs an if step.
func (j *journey) branch(step *engine.Step, key string) (int, error) {
	ok, err := j.decide(step.If.Cond, "step "+step.ID, j.event)
	if err != nil {
		return 0, err
	}
	name, next := "else", step.If.Else
	if ok {
		name, next = "then", step.If.Then
	}
	j.logStep(step.ID, "if", "→ "+name)
	return next, j.record(step, key, name, "if → "+name)
}

// split sends the customer down one weighted branch, the same one on every
// run and in every version that keeps the playbook and step names.
func (j *journey) split(step *engine.Step, key string) (int, error) {
	br := step.Split.Branches[PickBranch(j.plan.Name, step.ID, j.in.CustomerID, step.Split.Branches)]
	j.logStep(step.ID, "split", fmt.Sprintf("→ %s (%g%%)", br.Name, br.Weight))
	return br.Start, j.record(step, key, br.Name, "split → "+br.Name)
}

// update changes the customer record; the next rule sees the new profile.
func (j *journey) update(step *engine.Step, key string) (int, error) {
	u := step.Update
	env, err := j.env(j.event)
	if err != nil {
		return 0, err
	}
	set := make(map[string]any, len(u.Set))
	names := make([]string, 0, len(u.Set))
	for name := range u.Set {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v, err := j.eval.Value(u.Set[name], &env)
		if err != nil {
			return 0, ruleError(fmt.Sprintf("step %s: set %s", step.ID, name), u.Set[name], err)
		}
		set[name] = v
	}
	req := activities.ProfileUpdate{
		Enrollment: j.enr, Key: key, CustomerID: j.in.CustomerID, Set: set,
		AddTags: u.AddTags, RemoveTags: u.RemoveTags, Tier: u.Tier, Stage: u.Stage,
	}
	if err := j.local("update profile of "+j.in.CustomerID, activities.ActUpdateProfile, nil, req); err != nil {
		return 0, fmt.Errorf("step %s: update profile: %w", step.ID, err)
	}
	j.stale = true
	j.logStep(step.ID, "update", updateDetail(names, set, u))
	return step.Next, nil
}

func updateDetail(names []string, set map[string]any, u *engine.UpdateStep) string {
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s=%s", n, rules.Format(set[n])))
	}
	if u.Tier != "" {
		parts = append(parts, "tier="+u.Tier)
	}
	if u.Stage != "" {
		parts = append(parts, "stage="+u.Stage)
	}
	for _, t := range u.AddTags {
		parts = append(parts, "+"+t)
	}
	for _, t := range u.RemoveTags {
		parts = append(parts, "-"+t)
	}
	return strings.Join(parts, " ")
}

// changePointsChecks names the workflow change after which a calculated
// points amount out of bounds fails the step in plain words (before, a
// negative award became a deduction), and a deduction refused for want of
// points ends the journey exited (insufficient_points) instead of failed.
const changePointsChecks = "points-checks"

// points awards or deducts whole points.
func (j *journey) points(step *engine.Step, key string) (int, error) {
	p := step.Points
	f, err := j.number(p.Amount, "step "+step.ID)
	if err != nil {
		return 0, err
	}
	checked := j.version(changePointsChecks, 1) >= 1
	if checked && math.Round(f) != 0 {
		// A calculated amount is checked against the bounds of a fixed
		// one: a negative award would otherwise become a deduction, and a
		// negative deduction an award.
		if err := engine.CheckPoints(f); err != nil {
			return 0, ruleError("step "+step.ID, p.Amount, err)
		}
	}
	delta := int64(math.Round(f))
	if p.Deduct {
		delta = -int64(math.Abs(math.Round(f)))
	}
	if delta == 0 {
		j.logStep(step.ID, "points", "0 ("+p.Reason+"): nothing to change")
		return step.Next, nil
	}
	var res activities.PointsResult
	req := activities.PointsRequest{Enrollment: j.enr, Key: key, CustomerID: j.in.CustomerID, Delta: delta, Reason: p.Reason}
	if err := j.local(fmt.Sprintf("points %+d (%s)", delta, p.Reason), activities.ActAdjustPoints, &res, req); err != nil {
		var app *temporal.ApplicationError
		if checked && errors.As(err, &app) && app.Type() == activities.ErrTypeInsufficientPoints {
			// Refused for want of points: nothing changed. The journey
			// exits rather than failing, and goes no further: later steps
			// would tell the customer about points never deducted.
			j.logStep(step.ID, "points", fmt.Sprintf("%+d (%s) refused: %s", delta, p.Reason, app.Message()))
			return 0, &ending{status: activities.StatusExited, reason: activities.ReasonInsufficientPoints}
		}
		return 0, fmt.Errorf("step %s: adjust points: %w", step.ID, err)
	}
	j.stale = true
	j.logStep(step.ID, "points", fmt.Sprintf("%+d (%s) → balance %d", delta, p.Reason, res.Balance))
	return step.Next, nil
}

// issueCoupon issues a coupon; it becomes `coupon` in later rules and
// templates.
func (j *journey) issueCoupon(step *engine.Step, key string) (int, error) {
	c := step.Coupon
	v, err := j.number(c.Value, "step "+step.ID)
	if err != nil {
		return 0, err
	}
	req := activities.CouponRequest{
		Enrollment: j.enr, Key: key, CustomerID: j.in.CustomerID, Kind: c.Kind,
		Value: v, ExpiresAt: workflow.Now(j.ctx).Add(c.Expires), Prefix: c.Prefix,
	}
	var got rules.Coupon
	if err := j.local(fmt.Sprintf("coupon %s %s", c.Kind, rules.Format(v)), activities.ActIssueCoupon, &got, req); err != nil {
		return 0, fmt.Errorf("step %s: issue coupon: %w", step.ID, err)
	}
	j.coupon = got
	j.logStep(step.ID, "coupon", fmt.Sprintf("%s %s %s (expires %s)", got.Kind, rules.Format(got.Value), got.Code, j.localTime(got.ExpiresAt)))
	return step.Next, nil
}

// task hands work to a person.
func (j *journey) task(step *engine.Step, key string) (int, error) {
	t := step.Task
	env, err := j.env(j.event)
	if err != nil {
		return 0, err
	}
	title, err := engine.RenderText(t.Title, &env)
	if err != nil {
		return 0, temporal.NewNonRetryableApplicationError(fmt.Sprintf("step %s: task title: %v", step.ID, err), ErrTypeRule, nil)
	}
	due, priority := t.Due, t.Priority
	if due <= 0 {
		due = 24 * time.Hour
	}
	if priority == "" {
		priority = "normal"
	}
	req := activities.TaskRequest{
		Enrollment: j.enr, Key: key, CustomerID: j.in.CustomerID, Assignee: t.Assignee,
		Title: title, Priority: priority, DueAt: workflow.Now(j.ctx).Add(due),
	}
	var res activities.TaskResult
	if err := j.local("task for "+t.Assignee, activities.ActCreateTask, &res, req); err != nil {
		return 0, fmt.Errorf("step %s: create task: %w", step.ID, err)
	}
	j.logStep(step.ID, "task", fmt.Sprintf("%s: %q (%s, due %s)", t.Assignee, title, priority, j.localTime(req.DueAt)))
	return step.Next, nil
}

// localTime formats t in the customer's zone (as last loaded), for logs and
// the current-details line.
func (j *journey) localTime(t time.Time) string {
	tz := j.customer.Timezone
	if tz == "" {
		tz = "UTC"
	}
	return t.In(rules.Location(tz)).Format("2006-01-02 15:04") + " " + tz
}

// changeMaskedRecipient names the workflow change that masks the address
// in a send's activity summary (w***@example.cn, +44*******123): the
// summary is what the Temporal UI lists, and with payload encryption off
// it is stored in clear. Runs recorded before it show the whole address.
const changeMaskedRecipient = "masked-recipient"

// recipient names whom a send goes to in its activity summary, so an
// operator reading a run in the Temporal UI sees "send email offer →
// a***@example.com (zh)": the address masked (activities.MaskAddress), as
// summaries and search attributes never carry a whole address.
func (j *journey) recipient(ch engine.Channel, c rules.Customer) string {
	var address string
	switch ch {
	case engine.ChannelEmail:
		address = c.Email
	case engine.ChannelSMS:
		address = c.Phone
	default:
		return "customer " + c.ID
	}
	if j.version(changeMaskedRecipient, 1) < 1 {
		return address
	}
	return activities.MaskAddress(string(ch), address)
}
