package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// matcher is what a wait step is waiting for: one event, or the first of
// several (each with its optional rule). hit is the index of the one that
// ended the wait.
type matcher struct {
	alts []alternative
	hit  int
}

// alternative is one event a wait takes; where names its rule in messages.
type alternative struct {
	event string
	of    string // the send step the event must be about ("": any)
	when  *rules.Rule
	where string
}

// wait runs a wait step. A wait-for-event only counts events that arrive
// while it waits: an event that came earlier was already used for the goal
// and exit_when, and a wait that matched stale events would make journeys
// jump ahead on something the customer did before being asked.
func (j *journey) wait(step *engine.Step, key string) (int, error) {
	w := step.Wait
	now := workflow.Now(j.ctx)
	resumed := j.resumeDeadline
	j.resumeDeadline = time.Time{}
	pick := func(until time.Time) time.Time {
		if !resumed.IsZero() {
			return resumed
		}
		return until
	}
	// end is when a wait of w's span (or of the fixed d) that starts at
	// from ends; a run resumed mid-wait keeps the deadline it carries.
	end := func(from time.Time, d time.Duration) (time.Time, error) {
		if !resumed.IsZero() {
			return resumed, nil
		}
		return j.spanEnd(w, from, d)
	}
	switch w.Kind {
	case engine.WaitFor:
		until, err := end(now, w.Duration)
		if err != nil {
			return 0, err
		}
		j.logStep(step.ID, "wait", fmt.Sprintf("%s (until %s)", w.Length(w.Duration), j.localTime(until)))
		_, err = j.block(until, fmt.Sprintf("%s: waiting until %s", step.ID, j.localTime(until)), nil, true)
		return step.Next, err
	case engine.WaitAfterEntry:
		until, err := end(j.enrolledAt, w.Duration)
		if err != nil {
			return 0, err
		}
		j.logStep(step.ID, "wait", fmt.Sprintf("%s after entry (until %s)", w.Length(w.Duration), j.localTime(until)))
		_, err = j.block(until, fmt.Sprintf("%s: waiting until %s", step.ID, j.localTime(until)), nil, true)
		return step.Next, err
	case engine.WaitUntil:
		c, err := j.loadCustomer()
		if err != nil {
			return 0, err
		}
		until := pick(NextLocal(now, rules.Location(c.Timezone), w.Until))
		j.logStep(step.ID, "wait", fmt.Sprintf("until %02d:%02d local (%s)", w.Until.Hour(), w.Until.Minute(), j.localTime(until)))
		_, err = j.block(until, fmt.Sprintf("%s: waiting until %s", step.ID, j.localTime(until)), nil, true)
		return step.Next, err
	case engine.WaitEvent:
		until, err := end(now, w.Timeout)
		if err != nil {
			return 0, err
		}
		return j.waitEvent(step, key, until)
	case engine.WaitEvents:
		until, err := end(now, w.Timeout)
		if err != nil {
			return 0, err
		}
		return j.waitEvents(step, key, until)
	}
	return 0, fmt.Errorf("step %s: unknown wait kind %q", step.ID, w.Kind)
}

// changeCalendarWaits names the workflow change after which a wait's
// duration is a calendar span in the customer's zone (1d: the same local
// time tomorrow; 6mo: the same day and time six months on). Runs recorded
// before it waited the fixed duration.
const changeCalendarWaits = "calendar-waits"

// spanEnd is when a wait of w's span starting at from ends, on the
// customer's calendar; a plan without spans (compiled before calendar
// waits) or a run recorded before the change waits the fixed d.
func (j *journey) spanEnd(w *engine.WaitStep, from time.Time, d time.Duration) (time.Time, error) {
	if w.Span == nil || j.version(changeCalendarWaits, 1) < 1 {
		return from.Add(d), nil
	}
	c, err := j.loadCustomer()
	if err != nil {
		return time.Time{}, err
	}
	return w.Span.After(from, rules.Location(c.Timezone)), nil
}

func (j *journey) waitEvent(step *engine.Step, key string, until time.Time) (int, error) {
	w := step.Wait
	j.logStep(step.ID, "wait", fmt.Sprintf("event %s (timeout %s)", eventOf(w.Event, w.Of), w.Length(w.Timeout)))
	m := &matcher{alts: []alternative{{event: w.Event, of: w.Of, when: w.When, where: "step " + step.ID + " when"}}}
	matched, err := j.heard(m)
	if err == nil && !matched {
		matched, err = j.block(until, fmt.Sprintf("%s: waiting for %s until %s", step.ID, w.Event, j.localTime(until)), m, true)
	}
	if err != nil {
		return 0, err
	}
	outcome, next := "timeout", w.OnTimeout
	if matched {
		outcome, next = "event", w.OnEvent
	}
	j.logStep(step.ID, "wait", "→ "+outcome)
	return next, j.record(step, key, outcome, "wait "+w.Event+" → "+outcome)
}

// waitEvents runs a wait for the first of several events: the branch of
// the event that arrives first (and whose rule holds) runs, or on_timeout.
// The step record's branch is the event's name, or timeout.
func (j *journey) waitEvents(step *engine.Step, key string, until time.Time) (int, error) {
	w := step.Wait
	var alts []string
	for _, b := range w.Branches {
		alts = append(alts, eventOf(b.Event, b.Of))
	}
	names := strings.Join(alts, ", ")
	j.logStep(step.ID, "wait", fmt.Sprintf("first of %s (timeout %s)", names, w.Length(w.Timeout)))
	m := &matcher{}
	for _, b := range w.Branches {
		m.alts = append(m.alts, alternative{event: b.Event, of: b.Of, when: b.When, where: "step " + step.ID + " " + b.Event + " when"})
	}
	matched, err := j.heard(m)
	if err == nil && !matched {
		matched, err = j.block(until, fmt.Sprintf("%s: waiting for %s until %s", step.ID, names, j.localTime(until)), m, true)
	}
	if err != nil {
		return 0, err
	}
	outcome, next := "timeout", w.OnTimeout
	if matched {
		b := w.Branches[m.hit]
		outcome, next = b.Event, b.Start
	}
	j.logStep(step.ID, "wait", "→ "+outcome)
	return next, j.record(step, key, outcome, "wait "+names+" → "+outcome)
}

// block waits until the deadline, or until an event that m matches arrives
// (then it returns true). Every event that arrives meanwhile is checked
// against the goal and exit_when, which may end the journey mid-wait. When
// canCut is set (the wait of a wait step) and a stream of events has filled
// the history, the run continues as new and the next run resumes the same
// wait with the same deadline.
func (j *journey) block(until time.Time, why string, m *matcher, canCut bool) (bool, error) {
	j.waitingFor = why
	defer func() { j.stale, j.waitingFor = true, "" }()
	if err := j.upsertVisibility(); err != nil {
		return false, err
	}
	workflow.SetCurrentDetails(j.ctx, why)
	d := until.Sub(workflow.Now(j.ctx))
	if d <= 0 {
		return false, nil
	}
	// Only a wait that waits counts against runaway loops: an after_entry
	// wait whose moment has passed ends at once, every time round.
	j.blocks++
	timerCtx, cancel := workflow.WithCancel(j.ctx)
	defer cancel()
	timer := workflow.NewTimerWithOptions(timerCtx, d, workflow.TimerOptions{Summary: why})
	j.est += 5 // timer started and fired, one workflow task
	for {
		var ev rules.Event
		fired, got := false, false
		sel := workflow.NewSelector(j.ctx)
		sel.AddFuture(timer, func(workflow.Future) { fired = true })
		sel.AddReceive(j.events, func(c workflow.ReceiveChannel, _ bool) { c.Receive(j.ctx, &ev); got = true })
		sel.Select(j.ctx)
		if fired {
			return false, timer.Get(j.ctx, nil)
		}
		if !got {
			continue
		}
		j.est += 4 // the signal and its workflow task
		matched, err := j.onEvent(ev, m)
		if err != nil || matched {
			return matched, err
		}
		if canCut && j.events.Len() == 0 && j.historyFull() {
			return false, j.continueAsNew(until)
		}
	}
}

// drainEvents takes in the events that arrived while the journey was busy.
func (j *journey) drainEvents() error {
	for {
		var ev rules.Event
		if !j.events.ReceiveAsync(&ev) {
			return nil
		}
		j.est += 4
		if _, err := j.onEvent(ev, nil); err != nil {
			return err
		}
	}
}

// changeFreshProfileOnEvent names the workflow change that reloads the
// profile before judging an event (see onEvent).
const changeFreshProfileOnEvent = "fresh-profile-on-event"

// onEvent handles one delivered event: duplicates (by ID) are dropped; the
// goal may convert, exit_when may exit (with the profile read again, since
// the event may have changed it), and m decides whether a wait is over.
func (j *journey) onEvent(ev rules.Event, m *matcher) (bool, error) {
	here := j.stepID(j.pc)
	if !j.seen.add(ev.ID) {
		j.logStep(here, "event", fmt.Sprintf("%s %s duplicate, ignored", ev.Name, ev.ID))
		return false, nil
	}
	j.counters.Events++
	j.logStep(here, "event", eventDetail(ev))
	// The event was stored before it was signalled and may have changed the
	// profile (a purchase raises order_count), so every rule that judges it
	// — goal, exit_when, the wait's own when — reads the profile again.
	// Versioned: runs recorded before this change judged the goal against
	// the profile of the wait, and must replay the same way.
	fresh := j.version(changeFreshProfileOnEvent, 1) >= 1
	if fresh {
		j.stale = true
	}
	j.noteMessageEvent(ev)
	if err := j.checkGoal(ev); err != nil {
		return false, err
	}
	if j.plan.ExitWhen != nil {
		if !fresh {
			j.stale = true
		}
		if err := j.checkExitWhen(ev); err != nil {
			return false, err
		}
	}
	if m == nil {
		return false, nil
	}
	for i, a := range m.alts {
		if ev.Name != a.event || (a.of != "" && !j.aboutMessage(ev, a.of)) {
			continue
		}
		if a.when != nil {
			ok, err := j.decide(a.when, a.where, ev)
			if err != nil || !ok {
				return false, err
			}
		}
		m.hit, j.event = i, ev
		return true, nil
	}
	return false, nil
}

func eventDetail(ev rules.Event) string {
	s := ev.Name + " received"
	if ev.Amount != 0 {
		s += fmt.Sprintf(" (amount %s)", rules.Format(ev.Amount))
	}
	return s
}

// checkGoal converts the journey when ev is the goal event (and its rule
// holds) within the goal window, counted from enrollment to the event's
// arrival in workflow time. A goal that continues records the first
// conversion and lets the journey go on (the same event may end the wait
// the journey is in); any other goal ends the journey as converted.
func (j *journey) checkGoal(ev rules.Event) error {
	g := j.plan.Goal
	if g == nil || ev.Name != g.Event || (g.Continue && j.converted) || workflow.Now(j.ctx).After(j.goalDeadline) {
		return nil
	}
	if g.When != nil {
		ok, err := j.decide(g.When, "goal.when", ev)
		if err != nil || !ok {
			return err
		}
	}
	if !g.Continue {
		j.event = ev
		return &ending{status: activities.StatusConverted, reason: "goal " + g.Event, goal: g.Event}
	}
	conv := activities.Conversion{Enrollment: j.enr, Event: ev.Name, EventID: ev.ID, At: workflow.Now(j.ctx)}
	if err := j.local("record conversion "+ev.Name, activities.ActRecordConversion, nil, conv); err != nil {
		return fmt.Errorf("record the conversion on %s: %w", ev.Name, err)
	}
	j.converted = true
	j.logStep(j.stepID(j.pc), "goal", "converted ("+ev.Name+"); the journey goes on")
	return nil
}

// checkExitWhen exits the journey when exit_when holds, with ev as `event`.
func (j *journey) checkExitWhen(ev rules.Event) error {
	if j.plan.ExitWhen == nil {
		return nil
	}
	ok, err := j.decide(j.plan.ExitWhen, "exit_when", ev)
	if err != nil || !ok {
		return err
	}
	return &ending{status: activities.StatusExited, reason: "exit_when"}
}

// QuietUntil says whether now falls in the quiet window [start, end) of
// the local clock in loc (the window may wrap midnight), and if so when it
// ends. Local dates are computed with time.Date, so days of 23 or 25 hours
// (DST) are handled by the calendar, not by adding 24h.
func QuietUntil(now time.Time, loc *time.Location, start, end engine.TimeOfDay) (time.Time, bool) {
	local := now.In(loc)
	m := local.Hour()*60 + local.Minute()
	s, e := start.Minutes, end.Minutes
	y, mo, d := local.Date()
	endOn := func(day int) time.Time { return rules.LocalTime(y, mo, d+day, e/60, e%60, loc) }
	var until time.Time
	switch {
	case s == e:
		return time.Time{}, false
	case s < e && m >= s && m < e:
		until = endOn(0)
	case s > e && m >= s:
		until = endOn(1)
	case s > e && m < e:
		until = endOn(0)
	default:
		return time.Time{}, false
	}
	if !until.After(now) {
		// The window's end repeats tonight (clocks go back) and now is in
		// the repeated hour, past its first occurrence: the window ends at
		// the second.
		until = rules.SecondOccurrence(until)
	}
	if !until.After(now) { // not expected; never wait zero
		until = now.Add(time.Minute)
	}
	return until, true
}

// NextLocal is the next time, at or after now, that the clock in loc shows
// the time of day t.
func NextLocal(now time.Time, loc *time.Location, t engine.TimeOfDay) time.Time {
	local := now.In(loc)
	y, mo, d := local.Date()
	next := rules.LocalTime(y, mo, d, t.Hour(), t.Minute(), loc)
	if next.Before(now) {
		next = rules.LocalTime(y, mo, d+1, t.Hour(), t.Minute(), loc)
	}
	return next
}

// FormatDuration writes a duration the way playbooks do: 10d, 1d12h, 30m.
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	if b.Len() == 0 {
		return d.String()
	}
	return b.String()
}

// recentIDs is a bounded set of recently seen event IDs, oldest evicted first.
type recentIDs struct {
	max   int
	order []string
	set   map[string]bool
}

func newRecentIDs(max int) *recentIDs { return &recentIDs{max: max, set: map[string]bool{}} }

// add records id and reports whether it is new. Events without an ID
// cannot be deduplicated and always count as new.
func (r *recentIDs) add(id string) bool {
	if id == "" {
		return true
	}
	if r.set[id] {
		return false
	}
	if len(r.order) >= r.max {
		delete(r.set, r.order[0])
		r.order = r.order[1:]
	}
	r.order = append(r.order, id)
	r.set[id] = true
	return true
}

func (r *recentIDs) list() []string { return append([]string(nil), r.order...) }
