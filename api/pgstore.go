package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

// PGStore adapts *store.Store to the API's Store, Enrollments and
// PendingLister. The SQL is the store's; PGStore only maps its answers
// to the API's types and errors.
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

// ActiveEnrollments implements Enrollments: the enrollments recorded as
// active and the starts noted (store.Store.RunningVersions).
func (p PGStore) ActiveEnrollments(ctx context.Context, customerID string) ([]ActiveEnrollment, error) {
	running, err := p.RunningVersions(ctx, customerID)
	if err != nil {
		return nil, err
	}
	return activeEnrollments(running), nil
}

// NoteStart implements Enrollments with store.Store.NoteStarts.
func (p PGStore) NoteStart(ctx context.Context, s store.JourneyStart) error {
	return p.NoteStarts(ctx, s)
}

// DropStartNote implements Enrollments with store.Store.DropStartNotes.
func (p PGStore) DropStartNote(ctx context.Context, s store.JourneyStart) error {
	return p.DropStartNotes(ctx, s)
}

// activeEnrollments maps the store's running versions to the API's type;
// none read is an empty list, not nil.
func activeEnrollments(running []store.RunningVersion) []ActiveEnrollment {
	out := make([]ActiveEnrollment, len(running))
	for i, r := range running {
		out[i] = ActiveEnrollment{Playbook: r.Playbook, Version: r.Version, Starting: r.Starting}
	}
	return out
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
	_ Store         = PGStore{}
	_ Enrollments   = PGStore{}
	_ PendingLister = PGStore{}
	_ EventsMarker  = PGStore{}
)
