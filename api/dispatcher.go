package api

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// Plans is the set of deployed playbooks; *engine.Registry implements it.
type Plans interface {
	Names() []string
	Latest(name string) (*engine.Plan, bool)
	Get(name, version string) (*engine.Plan, bool)
}

// Journeys starts and signals journeys; the Temporal implementation is
// TemporalJourneys. Both must be idempotent: Enroll starts nothing when
// the customer's enrollment of the playbook is already running (started
// false), and the journey drops a signalled event whose ID it has seen.
type Journeys interface {
	Enroll(ctx context.Context, plan *engine.Plan, customerID string, trigger rules.Event) (EnrollResult, error)
	Signal(ctx context.Context, playbook, customerID string, ev rules.Event) error
}

// ActiveEnrollment is a running enrollment of a customer, as recorded in
// the enrollments table.
type ActiveEnrollment struct {
	Playbook string
	Version  string
}

// EnrollmentLister lists a customer's active enrollments.
type EnrollmentLister interface {
	ActiveEnrollments(ctx context.Context, customerID string) ([]ActiveEnrollment, error)
}

// EventDispatcher is the real Dispatcher and Enroller.
type EventDispatcher struct {
	plans       Plans
	journeys    Journeys
	enrollments EnrollmentLister
	log         *slog.Logger
}

// NewEventDispatcher builds the dispatcher over the deployed plans, the
// journey client and the enrollments table.
func NewEventDispatcher(plans Plans, journeys Journeys, enrollments EnrollmentLister, log *slog.Logger) *EventDispatcher {
	if log == nil {
		log = slog.Default()
	}
	return &EventDispatcher{plans: plans, journeys: journeys, enrollments: enrollments, log: log}
}

// Dispatch starts the enrollments ev triggers and signals the enrollments
// of the customer that may react to it.
//
// Signalled are: every deployed playbook that listens for the event (its
// journey may have started so recently that its enrollment is not
// recorded yet; a playbook without a running journey answers "not found",
// which Journeys.Signal ignores), and every enrollment the enrollments
// table has as active (it may run an older version that listens when the
// deployed one does not). A journey this very event just started is not
// signalled with its own trigger. (On a retry after a partial failure it
// may be: the journey drops the trigger event by its ID.)
//
// Trigger rules are evaluated against the customer as stored now, at the
// event's time; the audience is the journey's business. Enrollments start
// first (a journey this event starts is not signalled), then the signals
// go out concurrently (signal).
func (d *EventDispatcher) Dispatch(ctx context.Context, c rules.Customer, ev rules.Event) error {
	return d.DispatchTo(ctx, Recipient{ID: c.ID, Load: func(context.Context) (rules.Customer, error) { return c, nil }}, ev)
}

// DispatchTo is Dispatch for the recipient r, whose profile it loads
// only when a deployed playbook's trigger names the event (only a
// trigger rule reads it, and most events, page and product views,
// trigger nothing), and whose active enrollments it reads unless r
// carries them. The decisions are Dispatch's.
func (d *EventDispatcher) DispatchTo(ctx context.Context, r Recipient, ev rules.Event) error {
	customerID := r.ID
	active := r.Running
	if active == nil {
		var err error
		if active, err = d.enrollments.ActiveEnrollments(ctx, customerID); err != nil {
			return fmt.Errorf("dispatch %s: list active enrollments: %w", ev.ID, err)
		}
	}
	triggered, err := d.triggered(ctx, customerID, r.Load, ev)
	if err != nil {
		return fmt.Errorf("dispatch %s: %w", ev.ID, err)
	}
	started := map[string]bool{}
	for _, p := range triggered {
		res, err := d.journeys.Enroll(ctx, p, customerID, ev)
		if err != nil {
			return fmt.Errorf("dispatch %s: enroll %s in %s: %w", ev.ID, customerID, p.Name, err)
		}
		started[p.Name] = res.Started
	}
	var targets []string
	for _, name := range d.listeners(active, ev.Name) {
		if !started[name] {
			targets = append(targets, name)
		}
	}
	return d.signal(ctx, targets, customerID, ev)
}

// signal sends ev to the journeys of customerID in playbooks, all at
// once: the signals go to different workflows, so their order does not
// matter, and an event heard by several playbooks (every playbook with an
// exit_when rule hears every event) then waits for the slowest signal
// rather than their sum. Each is attempted even when another fails; the
// error returned is that of the first failing playbook in sorted order,
// and the client's retry signals them all again (a journey drops an
// event it has seen by its ID).
func (d *EventDispatcher) signal(ctx context.Context, playbooks []string, customerID string, ev rules.Event) error {
	errs := make([]error, len(playbooks))
	var wg sync.WaitGroup
	for i, name := range playbooks {
		if i == len(playbooks)-1 { // the last one on this goroutine
			errs[i] = d.journeys.Signal(ctx, name, customerID, ev)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.journeys.Signal(ctx, name, customerID, ev)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("dispatch %s: signal %s of %s: %w", ev.ID, playbooks[i], customerID, err)
		}
	}
	return nil
}

// listeners are the playbooks to signal with an event named name, sorted:
// the deployed ones that listen (engine.Plan.Listens), and the active
// enrollments that do. An enrollment whose version is not deployed here is
// signalled whatever it listens to: a needless signal is cheap, a missed
// one is a bug.
func (d *EventDispatcher) listeners(active []ActiveEnrollment, name string) []string {
	set := map[string]bool{}
	for _, pb := range d.plans.Names() {
		if p, ok := d.plans.Latest(pb); ok && p.Listens(name) {
			set[pb] = true
		}
	}
	for _, a := range active {
		p, ok := d.plans.Get(a.Playbook, a.Version)
		if !ok || p.Listens(name) {
			set[a.Playbook] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// triggered lists the deployed playbooks ev starts for the customer
// (engine.Plan.TriggeredBy, the decision the simulator makes too),
// loading the customer once, when the first trigger naming the event is
// met. A trigger rule that fails to evaluate is logged and counts as
// false: retrying would not change it, and it must not hold up the other
// playbooks. A failed load fails the dispatch.
func (d *EventDispatcher) triggered(ctx context.Context, customerID string, load func(context.Context) (rules.Customer, error), ev rules.Event) ([]*engine.Plan, error) {
	var out []*engine.Plan
	var c *rules.Customer
	for _, name := range d.plans.Names() {
		p, ok := d.plans.Latest(name)
		if !ok || !slices.ContainsFunc(p.Trigger.EventTriggers(), func(t engine.EventTrigger) bool { return t.Event == ev.Name }) {
			continue
		}
		if c == nil {
			loaded, err := load(ctx)
			if err != nil {
				return nil, err
			}
			c = &loaded
		}
		match, err := p.TriggeredBy(*c, ev)
		if err != nil {
			d.log.Warn("trigger rule failed; not enrolling", "playbook", p.Name, "customer", customerID, "event", ev.ID, "err", err)
			continue
		}
		if match {
			out = append(out, p)
		}
	}
	return out, nil
}

// Enroll starts a manual enrollment (POST /v1/enroll).
func (d *EventDispatcher) Enroll(ctx context.Context, playbook string, c rules.Customer, trigger rules.Event) (EnrollResult, error) {
	p, ok := d.plans.Latest(playbook)
	if !ok {
		return EnrollResult{}, fmt.Errorf("%w: %s", ErrUnknownPlaybook, playbook)
	}
	if p.Trigger.Kind != engine.TriggerManual {
		return EnrollResult{}, fmt.Errorf("%w: %s has a %s trigger", ErrNotManual, playbook, p.Trigger.Kind)
	}
	res, err := d.journeys.Enroll(ctx, p, c.ID, trigger)
	if err != nil {
		return EnrollResult{}, fmt.Errorf("enroll %s in %s: %w", c.ID, playbook, err)
	}
	return res, nil
}

var (
	_ Dispatcher         = (*EventDispatcher)(nil)
	_ CustomerDispatcher = (*EventDispatcher)(nil)
	_ Enroller           = (*EventDispatcher)(nil)
	_ Plans              = (*engine.Registry)(nil)
)
