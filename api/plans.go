package api

import (
	"context"
	"sync/atomic"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/store"
)

// LivePlans is a Plans whose registry can be swapped while the server
// runs, so a deploy (or undeploy) takes effect without a restart. Each
// call reads one registry snapshot; the zero value has no plans.
type LivePlans struct {
	reg atomic.Pointer[engine.Registry]
}

// Set replaces the plans.
func (l *LivePlans) Set(r *engine.Registry) { l.reg.Store(r) }

func (l *LivePlans) current() *engine.Registry {
	if r := l.reg.Load(); r != nil {
		return r
	}
	return engine.NewRegistry()
}

// Names implements Plans.
func (l *LivePlans) Names() []string { return l.current().Names() }

// Latest implements Plans.
func (l *LivePlans) Latest(name string) (*engine.Plan, bool) { return l.current().Latest(name) }

// Triggering implements Plans.
func (l *LivePlans) Triggering(event string) []*engine.Plan { return l.current().Triggering(event) }

// Get implements Plans.
func (l *LivePlans) Get(name, version string) (*engine.Plan, bool) {
	return l.current().Get(name, version)
}

// Reload reads the deployed playbooks from st and swaps them in. It
// returns the playbooks that failed to compile (left out); on a database
// error the current plans stay.
func (l *LivePlans) Reload(ctx context.Context, st *store.Store) ([]error, error) {
	reg, bad, err := LoadRegistry(ctx, st)
	if err != nil {
		return nil, err
	}
	l.Set(reg)
	return bad, nil
}

var _ Plans = (*LivePlans)(nil)
