package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

// Plans is the set of deployed playbooks; *engine.Registry implements it.
type Plans interface {
	Names() []string
	Latest(name string) (*engine.Plan, bool)
	Get(name, version string) (*engine.Plan, bool)
	// Triggering lists the latest plans whose trigger names the event,
	// by playbook name (engine.Registry.Triggering).
	Triggering(event string) []*engine.Plan
}

// Journeys starts and signals journeys; the Temporal implementation is
// TemporalJourneys. Both must be idempotent: Enroll starts nothing when
// the customer's enrollment of the playbook is already running (started
// false), and the journey drops a signalled event whose ID it has seen.
// Signal fails wrapping ErrNoJourney when the customer has no journey of
// the playbook running.
type Journeys interface {
	Enroll(ctx context.Context, plan *engine.Plan, customerID string, trigger rules.Event) (EnrollResult, error)
	Signal(ctx context.Context, playbook, customerID string, ev rules.Event) error
}

// ActiveEnrollment is a running enrollment of a customer: recorded as
// active in the enrollments table, or a start noted (journey_starts).
type ActiveEnrollment struct {
	Playbook string
	Version  string
	// Starting: only a start noted within store.StartGrace says so, and
	// Temporal may not have created the workflow yet.
	Starting bool
}

// Enrollments lists a customer's running enrollments and notes the
// journeys the dispatcher starts; PGStore implements it over the
// enrollments and journey_starts tables (migration 00019).
//
// ActiveEnrollments lists the enrollments recorded as active and the
// starts noted and not yet recorded. NoteStart records a start before
// the dispatcher asks for it, so that the customer's events are signalled
// to the journey before its enrollment is recorded; while the start is in
// flight (ActiveEnrollment.Starting) a signal that finds no workflow
// fails as unavailable, and the event is sent again.
// DropStartNote deletes the note of a start that did not happen because
// the journey was already running, once that journey is covered by its
// enrollment or its own note.
type Enrollments interface {
	ActiveEnrollments(ctx context.Context, customerID string) ([]ActiveEnrollment, error)
	NoteStart(ctx context.Context, s store.JourneyStart) error
	DropStartNote(ctx context.Context, s store.JourneyStart) error
}

// EventDispatcher is the real Dispatcher and Enroller.
type EventDispatcher struct {
	plans       Plans
	journeys    Journeys
	enrollments Enrollments
	log         *slog.Logger
}

// NewEventDispatcher builds the dispatcher over the deployed plans, the
// journey client and the enrollments.
func NewEventDispatcher(plans Plans, journeys Journeys, enrollments Enrollments, log *slog.Logger) *EventDispatcher {
	if log == nil {
		log = slog.Default()
	}
	return &EventDispatcher{plans: plans, journeys: journeys, enrollments: enrollments, log: log}
}

// Dispatch starts the enrollments ev triggers and signals the enrollments
// of the customer that may react to it.
//
// Signalled are the customer's running journeys (Enrollments: those
// recorded as active and those whose start was noted and is not recorded
// yet) that listen for the event (engine.Plan.Listens), or whose version
// is not deployed here (it may listen when the deployed one does not). A
// customer in no journey is signalled nothing, whatever the deployed
// playbooks listen for. A journey this very event just started is not
// signalled with its own trigger. (On a retry after a partial failure it
// may be: the journey drops the trigger event by its ID.)
//
// Trigger rules are evaluated against the customer as stored now, at the
// event's time; the audience is the journey's business. Enrollments start
// first (a journey this event starts is not signalled), each noted
// before it is asked for (start), then the signals go out concurrently
// (signal).
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
		res, err := d.start(ctx, p, customerID, ev)
		if err != nil {
			return fmt.Errorf("dispatch %s: %w", ev.ID, err)
		}
		started[p.Name] = res.Started
	}
	var targets []string
	listeners, starting := d.listeners(active, ev.Name)
	for _, name := range listeners {
		if !started[name] {
			targets = append(targets, name)
		}
	}
	return d.signal(ctx, targets, starting, customerID, ev)
}

// signal sends ev to the journeys of customerID in playbooks, all at
// once: the signals go to different workflows, so their order does not
// matter, and an event heard by several playbooks (every playbook with an
// exit_when rule hears every event) then waits for the slowest signal
// rather than their sum. Each is attempted even when another fails; the
// error returned is that of the first failing playbook in sorted order,
// and the client's retry signals them all again (a journey drops an
// event it has seen by its ID).
//
// A journey that does not run (ErrNoJourney) has nobody left to tell,
// unless only a start in flight vouches for it (starting): then its
// workflow may not exist yet, and the signal fails as unavailable, so
// that the client sends the event again once it does.
func (d *EventDispatcher) signal(ctx context.Context, playbooks []string, starting map[string]bool, customerID string, ev rules.Event) error {
	errs := make([]error, len(playbooks))
	send := func(i int) {
		err := d.journeys.Signal(ctx, playbooks[i], customerID, ev)
		switch {
		case errors.Is(err, ErrNoJourney) && starting[playbooks[i]]:
			err = fmt.Errorf("%w: the journey is being started: %w", ErrUnavailable, err)
		case errors.Is(err, ErrNoJourney):
			err = nil
		}
		errs[i] = err
	}
	var wg sync.WaitGroup
	for i := range playbooks {
		if i == len(playbooks)-1 { // the last one on this goroutine
			send(i)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			send(i)
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

// listeners are the playbooks to signal with an event named name,
// sorted: those of the running enrollments that listen. An enrollment
// whose version is not deployed here is signalled whatever it listens
// to: a needless signal is cheap, a missed one is a bug. starting says
// which of them only a start in flight vouches for (every entry of the
// playbook Starting).
func (d *EventDispatcher) listeners(active []ActiveEnrollment, name string) (playbooks []string, starting map[string]bool) {
	starting = map[string]bool{}
	for _, a := range active {
		p, ok := d.plans.Get(a.Playbook, a.Version)
		if ok && !p.Listens(name) {
			continue
		}
		prev, seen := starting[a.Playbook]
		starting[a.Playbook] = a.Starting && (!seen || prev)
	}
	return slices.Sorted(maps.Keys(starting)), starting
}

// start starts the journey of customerID in p with trigger ev, noting
// the start first (Enrollments.NoteStart): the journey may be running
// before it records its enrollment, and the customer's next event is
// signalled to it. A start that found the journey running already drops its
// note; failing to is logged, not returned (the note only costs a
// needless signal until Maintain deletes it).
func (d *EventDispatcher) start(ctx context.Context, p *engine.Plan, customerID string, ev rules.Event) (EnrollResult, error) {
	note := store.JourneyStart{CustomerID: customerID, Playbook: p.Name, Version: p.Version, TriggerID: ev.ID}
	if err := d.enrollments.NoteStart(ctx, note); err != nil {
		return EnrollResult{}, fmt.Errorf("enroll %s in %s: %w", customerID, p.Name, err)
	}
	res, err := d.journeys.Enroll(ctx, p, customerID, ev)
	if err != nil {
		return EnrollResult{}, fmt.Errorf("enroll %s in %s: %w", customerID, p.Name, err)
	}
	if !res.Started {
		if err := d.enrollments.DropStartNote(ctx, note); err != nil {
			d.log.Warn("could not drop the note of a start that found its journey running", "playbook", p.Name, "customer", customerID, "trigger", ev.ID, "err", err)
		}
	}
	return res, nil
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
	for _, p := range d.plans.Triggering(ev.Name) {
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

// Triggers reports whether the trigger of a deployed playbook names the
// event. When none does and the customer runs no journey, dispatching
// the event does nothing, and the event API stores it as dispatched
// without calling DispatchTo (store.EventCall.Quiet).
func (d *EventDispatcher) Triggers(event string) bool {
	return len(d.plans.Triggering(event)) > 0
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
	return d.start(ctx, p, c.ID, trigger)
}

// ErrNoJourney is what Journeys.Signal answers when the journey it
// signals does not run (it ended, or has not started yet).
var ErrNoJourney = errors.New("no journey running")

var (
	_ Dispatcher         = (*EventDispatcher)(nil)
	_ CustomerDispatcher = (*EventDispatcher)(nil)
	_ Enroller           = (*EventDispatcher)(nil)
	_ TriggerNamer       = (*EventDispatcher)(nil)
	_ Plans              = (*engine.Registry)(nil)
)
