package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/rules"
)

// The dispatch marker (event_ids.dispatched_at, migrations 00002 and
// 00015) says that
// a stored event reached the journeys; the event API sets it after a
// successful dispatch and redispatches events that never got it.

// EventDispatched reports whether the event's dispatch succeeded; an
// event not stored is not dispatched.
func (s *Store) EventDispatched(ctx context.Context, eventID string) (bool, error) {
	var done bool
	err := s.pool.QueryRow(ctx, `SELECT dispatched_at IS NOT NULL FROM event_ids WHERE id = $1`, eventID).Scan(&done)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read dispatch marker of event %s: %w", eventID, err)
	}
	return done, nil
}

// markDispatchedSQL sets the dispatch marker of the events whose ids are
// $1, keeping the first dispatch time. It names no condition on
// dispatched_at: with "AND dispatched_at IS NULL" PostgreSQL takes the
// partial index event_ids_undispatched, which its statistics show as
// nearly empty after a bulk load or a vacuum, and filters every
// undispatched entry for the id, so each marker costs more the more
// events wait for theirs — a backlog after a Temporal outage, or the
// markers the batcher has pending. In part ingest, with 5,000 and then
// 10,000 undispatched events in the table, the event API went from 1,276
// to 445 to 232 events/s. By id it is one probe of the primary key.
const markDispatchedSQL = `UPDATE event_ids SET dispatched_at = coalesce(dispatched_at, now()) WHERE id = ANY($1)`

// MarkDispatched records that the event's dispatch succeeded; the first
// dispatch time is kept.
func (s *Store) MarkDispatched(ctx context.Context, eventID string) error {
	_, err := s.pool.Exec(ctx, markDispatchedSQL, []string{eventID})
	if err != nil {
		return fmt.Errorf("mark event %s dispatched: %w", eventID, err)
	}
	return nil
}

// MarkEventsDispatched records that the events' dispatch succeeded, in
// one statement and without waiting for the WAL flush (asynchronous
// commit): should the database crash before the flush, the markers are
// lost and the redispatch sweeper hands the events on again, which is
// harmless (journeys drop an event they have seen by its ID, and a start
// is admitted once per trigger). The event API's marker batcher writes
// through it, saving a round trip and a disk flush per event.
func (s *Store) MarkEventsDispatched(ctx context.Context, eventIDs ...string) error {
	if len(eventIDs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SET LOCAL synchronous_commit = off`)
	b.Queue(markDispatchedSQL, eventIDs)
	b.Queue(`COMMIT`)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("mark %d events dispatched (first %s): %w", len(eventIDs), eventIDs[0], err)
	}
	return nil
}

// PendingEvent is a stored event whose dispatch has not succeeded.
type PendingEvent struct {
	CustomerID string
	Event      rules.Event
}

// UndispatchedEvents lists stored events whose dispatch never succeeded,
// received between after and before, oldest first, at most limit.
func (s *Store) UndispatchedEvents(ctx context.Context, after, before time.Time, limit int) ([]PendingEvent, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT e.customer_id, e.id, e.name, e.time, e.amount::float8, e.currency, e.order_id, e.category, e.score, e.props
		FROM (SELECT id, customer_id, time, received_at FROM event_ids
			WHERE dispatched_at IS NULL AND received_at > $1 AND received_at < $2
			ORDER BY received_at, id LIMIT $3) i
		JOIN events e ON e.customer_id = i.customer_id AND e.time = i.time AND e.id = i.id
		ORDER BY i.received_at, i.id`, after, before, limit)
	if err != nil {
		return nil, fmt.Errorf("list undispatched events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PendingEvent, error) {
		var e PendingEvent
		err := r.Scan(&e.CustomerID, &e.Event.ID, &e.Event.Name, &e.Event.Time, &e.Event.Amount, &e.Event.Currency,
			&e.Event.OrderID, &e.Event.Category, &e.Event.Score, &e.Event.Props)
		e.Event.Time = e.Event.Time.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list undispatched events: %w", err)
	}
	return out, nil
}

// RunningVersion is a playbook version a customer has an active
// enrollment in, or is being started in.
type RunningVersion struct {
	Playbook string
	Version  string
	// Starting is true when only a start noted within StartGrace says
	// so: Temporal may not have created the journey's workflow yet, and a
	// signal that finds none should be sent again rather than dropped.
	Starting bool
}

// StartGrace is how long after its note a start counts as in flight
// (RunningVersion.Starting). A start call takes milliseconds; one whose
// journey is still missing after this failed or was refused, and a
// signal to it that finds none is dropped.
const StartGrace = time.Minute

// runningOf lists the running versions of the customer whose id the SQL
// expression customer gives: those of the active enrollments and of the
// starts noted and not yet recorded (journey_starts), each with whether
// only a note younger than StartGrace says so.
func runningOf(customer string) string {
	return `
	SELECT playbook, version, bool_and(young) AS starting FROM (
		SELECT playbook, version, false AS young FROM enrollments WHERE customer_id = ` + customer + ` AND status = 'active'
		UNION ALL
		SELECT playbook, version, requested_at > now() - interval '` + strconv.Itoa(int(StartGrace.Seconds())) + ` seconds'
		FROM journey_starts WHERE customer_id = ` + customer + `
	) r GROUP BY playbook, version`
}

// runningSQL lists a customer's ($1) running playbook versions.
var runningSQL = runningOf("$1") + `
	ORDER BY playbook, version`

// RunningVersions lists the playbook versions the customer is actively
// enrolled in or being started in (NoteStarts), which the event API
// dispatches an event to besides the playbooks it triggers.
func (s *Store) RunningVersions(ctx context.Context, customerID string) ([]RunningVersion, error) {
	rows, err := s.pool.Query(ctx, runningSQL, customerID)
	if err != nil {
		return nil, fmt.Errorf("list active enrollments of %s: %w", customerID, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[RunningVersion])
	if err != nil {
		return nil, fmt.Errorf("list active enrollments of %s: %w", customerID, err)
	}
	return out, nil
}
