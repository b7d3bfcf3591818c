package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

// PGStore adapts *store.Store to the API's Store and EnrollmentLister.
// The few queries only the API needs (the dispatch marker of migration
// 00002, active enrollments of a customer, clearing fields) live here.
type PGStore struct {
	*store.Store
}

// Customer implements Store; store.Store answers a missing customer with
// its only permanent error, which becomes ErrNotFound.
func (p PGStore) Customer(ctx context.Context, id string) (rules.Customer, error) {
	c, err := p.Store.Customer(ctx, id)
	if errors.Is(err, activities.ErrPermanent) {
		return c, fmt.Errorf("customer %s: %w", id, ErrNotFound)
	}
	return c, err
}

// EventDispatched implements Store.
func (p PGStore) EventDispatched(ctx context.Context, eventID string) (bool, error) {
	var done bool
	err := p.Pool().QueryRow(ctx, `SELECT dispatched_at IS NOT NULL FROM events WHERE id = $1`, eventID).Scan(&done)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read dispatch marker of event %s: %w", eventID, err)
	}
	return done, nil
}

// MarkDispatched implements Store; the first dispatch time is kept.
func (p PGStore) MarkDispatched(ctx context.Context, eventID string) error {
	_, err := p.Pool().Exec(ctx, `UPDATE events SET dispatched_at = now() WHERE id = $1 AND dispatched_at IS NULL`, eventID)
	if err != nil {
		return fmt.Errorf("mark event %s dispatched: %w", eventID, err)
	}
	return nil
}

// ActiveEnrollments implements EnrollmentLister.
func (p PGStore) ActiveEnrollments(ctx context.Context, customerID string) ([]ActiveEnrollment, error) {
	rows, err := p.Pool().Query(ctx, `SELECT DISTINCT playbook, version FROM enrollments
		WHERE customer_id = $1 AND status = 'active' ORDER BY playbook, version`, customerID)
	if err != nil {
		return nil, fmt.Errorf("list active enrollments of %s: %w", customerID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ActiveEnrollment, error) {
		var a ActiveEnrollment
		return a, r.Scan(&a.Playbook, &a.Version)
	})
	if err != nil {
		return nil, fmt.Errorf("list active enrollments of %s: %w", customerID, err)
	}
	return out, nil
}

// LoadRegistry compiles every deployed playbook into a registry. A stored
// version that no longer compiles (the language changed under it) is
// reported and left out rather than stopping the server.
func LoadRegistry(ctx context.Context, st *store.Store) (*engine.Registry, []error, error) {
	deployed, err := st.DeployedPlaybooks(ctx)
	if err != nil {
		return nil, nil, err
	}
	reg := engine.NewRegistry()
	var bad []error
	for _, d := range deployed {
		p, err := engine.CompileCached(d.Source)
		if err != nil {
			bad = append(bad, fmt.Errorf("deployed playbook %s@%s: %w", d.Name, d.Version, err))
			continue
		}
		reg.Add(p)
	}
	return reg, bad, nil
}

var (
	_ Store            = PGStore{}
	_ EnrollmentLister = PGStore{}
)

// UndispatchedEvents implements PendingLister: stored events whose
// dispatch never succeeded, received between after and before, oldest
// first.
func (p PGStore) UndispatchedEvents(ctx context.Context, after, before time.Time, limit int) ([]PendingEvent, error) {
	rows, err := p.Pool().Query(ctx, `SELECT customer_id, id, name, time, amount::float8, currency, order_id, category, score, props
		FROM events WHERE dispatched_at IS NULL AND received_at > $1 AND received_at < $2
		ORDER BY received_at, id LIMIT $3`, after, before, limit)
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

var _ PendingLister = PGStore{}
