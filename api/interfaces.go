package api

import (
	"context"
	"errors"
	"time"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

// ErrNotFound is what a Store answers for a customer it does not have.
var ErrNotFound = errors.New("not found")

// ErrUnavailable marks a failure of a dependency (Temporal, PostgreSQL)
// that a retry may fix; the API answers it with 503 and Retry-After.
var ErrUnavailable = errors.New("dependency unavailable")

// Store is what the API keeps in the database.
type Store interface {
	// Customer returns the stored profile, or an error wrapping ErrNotFound.
	Customer(ctx context.Context, id string) (rules.Customer, error)
	// Ingest writes one call of the event API atomically (its profile
	// change, anonymous id, group and event); it fails wrapping
	// store.ErrMessageIDReused for a messageId of another user's event.
	Ingest(ctx context.Context, in store.Ingestion) (store.IngestResult, error)
	// MarkDispatched records that dispatch of the event succeeded.
	MarkDispatched(ctx context.Context, eventID string) error
}

// EventsIngester writes many calls that only store an event at once
// (store.Store.IngestEvents), one outcome per call; PGStore has it. The
// event API uses it, when its Store has it, for every run of such calls
// (a page view, a product view), alone or in a batch. The calls of one
// IngestEvents may come from several requests (eventGroups) and repeat
// an event ID, which the implementation must answer as if the calls
// came one after the other.
type EventsIngester interface {
	IngestEvents(ctx context.Context, calls []store.EventCall) ([]store.EventOutcome, error)
}

// EventsMarker records that many events' dispatch succeeded in one
// write; PGStore has it (store.Store.MarkEventsDispatched). The event
// API's marker batcher writes through it (Options.MarkEvery).
type EventsMarker interface {
	MarkEventsDispatched(ctx context.Context, eventIDs ...string) error
}

// Dispatcher hands a stored event to the journeys: it starts the
// enrollments the event triggers and signals the running enrollments of
// the customer that wait for it. It must be idempotent: a retried call
// (after a failure half-way) starts and signals nothing twice.
type Dispatcher interface {
	Dispatch(ctx context.Context, customer rules.Customer, ev rules.Event) error
}

// CustomerDispatcher is a Dispatcher that reads what it needs of the
// customer on demand (EventDispatcher.DispatchTo); the event API uses it
// when its Dispatcher has it, and saves the read of the profile for the
// events no trigger names, and of the running enrollments when Ingest
// read them in the call's transaction.
type CustomerDispatcher interface {
	DispatchTo(ctx context.Context, r Recipient, ev rules.Event) error
}

// TriggerNamer is a Dispatcher that says whether a deployed playbook's
// trigger names an event (EventDispatcher.Triggers). With it, the event
// API stores an event no trigger names, of a customer in no journey, as
// dispatched (store.EventCall.Quiet) and does not dispatch it: a page view
// of a customer in no journey costs no dispatch and no marker.
type TriggerNamer interface {
	Triggers(event string) bool
}

// Recipient is the customer an event is dispatched to.
type Recipient struct {
	ID string
	// Load reads the customer as stored now; called at most once, and
	// only when a deployed trigger names the event.
	Load func(context.Context) (rules.Customer, error)
	// Running are the customer's active enrollments when the caller has
	// read them already; nil: the dispatcher reads them.
	Running []ActiveEnrollment
}

// EnrollResult is the answer to a manual enrollment.
type EnrollResult struct {
	Started    bool   `json:"started"` // false: an enrollment was already running
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// Errors of Enroller.Enroll that the API reports as bad requests.
var (
	ErrUnknownPlaybook = errors.New("no deployed playbook of that name")
	ErrNotManual       = errors.New("playbook is not started manually")
)

// Enroller starts a manual enrollment of a customer in a playbook whose
// trigger is `manual: true`.
type Enroller interface {
	Enroll(ctx context.Context, playbook string, customer rules.Customer, trigger rules.Event) (EnrollResult, error)
}

// ErrInvalidToken is an unsubscribe token that is malformed, forged or
// expired. The page says only that the link is not valid.
var ErrInvalidToken = errors.New("invalid unsubscribe link")

// Unsubscription describes what an unsubscribe link withdraws, for the
// page shown to the customer.
type Unsubscription struct {
	Locale  string // the customer's locale, when known
	Topic   string // consent topic (marketing, surveys, …; "*" for all)
	Channel string // email, sms
}

// Unsubscriber verifies unsubscribe links and withdraws consent. Both
// methods answer an error wrapping ErrInvalidToken for a bad link.
type Unsubscriber interface {
	// Check verifies a token and describes it, changing nothing (GET).
	Check(ctx context.Context, token string, now time.Time) (Unsubscription, error)
	// Unsubscribe verifies a token and withdraws the consent it names.
	// Withdrawing twice is not an error.
	Unsubscribe(ctx context.Context, token string, now time.Time) (Unsubscription, error)
}
