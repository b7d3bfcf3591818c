// Package scan enrolls customers in segment and date playbooks: a Temporal
// Schedule per playbook (ID rapport-scan/<playbook>) starts the Scan
// workflow, which pages through the customers table by id in an activity
// that evaluates the playbook's `where` rule (and date condition) against
// each customer and starts the matching enrollments in bounded batches.
//
// The workflow carries only a cursor and counts, never customers, and
// continues as new every few pages, so a scan of any size keeps a small
// history and small memory. Every part is idempotent: a retried page, a
// second worker or a manual trigger starts no customer twice (the journey
// ID admits one running enrollment per customer and playbook, and the
// store's re-entry policy decides the rest).
package scan

import (
	"fmt"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/pushdown"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

// DateWindow is the interval between two date-trigger scans, and the
// width of the slot each scan covers: the scan at time T enrolls the
// customers whose local `at` time today fell in (T-DateWindow, T]. Slots
// partition time, so with an hourly schedule every customer is enrolled on
// exactly one scan per day, whatever their zone (including :30 and :45
// offsets), and a customer whose `at` passed while a scan was late is
// picked up by that late scan.
const DateWindow = time.Hour

// Matcher decides whether one customer enters a playbook at a scan time.
// It reuses one rule evaluator, so it is not safe for concurrent use.
type Matcher struct {
	plan *engine.Plan
	now  time.Time
	ev   rules.Evaluator
}

// NewMatcher returns a matcher for a segment or date playbook at now (the
// scheduled time of the scan). Other trigger kinds have nothing to scan.
func NewMatcher(plan *engine.Plan, now time.Time) (*Matcher, error) {
	switch plan.Trigger.Kind {
	case engine.TriggerSegment, engine.TriggerDate:
		return &Matcher{plan: plan, now: now}, nil
	}
	return nil, fmt.Errorf("playbook %s has a %s trigger; only segment and date playbooks are scanned", plan.Name, plan.Trigger.Kind)
}

// Match reports whether c enters: the date condition (date triggers)
// holds and the where rule, evaluated with an empty event and now = the
// scan time, is true.
func (m *Matcher) Match(c rules.Customer) (bool, error) {
	t := m.plan.Trigger
	if t.Kind == engine.TriggerDate && !DateDue(t, c, m.now) {
		return false, nil
	}
	if t.Where == nil {
		return true, nil
	}
	env := rules.NewEnv(c, rules.Event{}, m.now)
	ok, err := m.ev.Bool(t.Where, &env)
	if err != nil {
		return false, fmt.Errorf("playbook %s: where %q for customer %s: %w", m.plan.Name, t.Where.Source, c.ID, err)
	}
	return ok, nil
}

// DateDue reports whether the date trigger t is due for c in the slot
// (now-DateWindow, now]: the customer's local `at` time on some day fell
// in the slot, and that day is the anniversary of their birthday or
// signup in their zone.
func DateDue(t engine.Trigger, c rules.Customer, now time.Time) bool {
	var date time.Time
	switch t.Date {
	case "birthday":
		date = c.Birthday
	case "signup_anniversary":
		date = c.SignupAt
	}
	if date.IsZero() {
		return false
	}
	loc := rules.Location(c.Timezone)
	at, ok := pushdown.DueAt(t.At, loc, now, DateWindow)
	return ok && rules.IsAnniversary(at, date, c.Timezone) && !isSignupDay(date, at, loc, t.Date)
}

// isSignupDay is true on the signup day itself (same month and day, same
// year): a signup anniversary is not due on the day of the signup.
func isSignupDay(date, at time.Time, loc *time.Location, kind string) bool {
	if kind != "signup_anniversary" {
		return false
	}
	d := date.In(loc)
	return d.Year() == at.Year()
}

// Admissible applies the store's re-entry policy (activities.DecideEntry,
// which store.RecordStart calls) to a customer's enrollment history, so a
// scan does not start a workflow that would only be refused. RecordStart
// remains the authority. A customer whose latest enrollment started at or
// after the scan time was enrolled by this very scan (a retried page) or
// concurrently, and is skipped too: that makes a retried page start nobody
// twice even under reentry always.
func Admissible(entry engine.Entry, h store.EntryHistory, now time.Time) bool {
	if h.Last != nil && !h.Last.Before(now) {
		return false
	}
	f := activities.EntryFacts{Earlier: h.Any, Active: h.Active}
	if h.Last != nil {
		f.Last = *h.Last
	}
	r := activities.EntryRequest{Reentry: string(entry.Reentry), Cooldown: entry.Cooldown, At: now}
	return activities.DecideEntry(r, f).Admitted
}
