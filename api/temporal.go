package api

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/workflows"
)

// TemporalJourneys starts and signals journeys on a Temporal server.
type TemporalJourneys struct {
	Client client.Client
}

// Enroll implements Journeys with workflows.Enroll: one workflow ID per
// customer and playbook, so a second start while one runs starts nothing.
func (t TemporalJourneys) Enroll(ctx context.Context, plan *engine.Plan, customerID string, trigger rules.Event) (EnrollResult, error) {
	run, started, err := workflows.Enroll(ctx, t.Client, plan, customerID, trigger)
	if err != nil {
		return EnrollResult{}, err
	}
	return EnrollResult{Started: started, WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

// Signal implements Journeys with workflows.SignalEvent; a workflow that
// does not run (it closed since the enrollments were read, or its start
// is still in flight) is ErrNoJourney, which the dispatcher decides about.
func (t TemporalJourneys) Signal(ctx context.Context, playbook, customerID string, ev rules.Event) error {
	err := workflows.SignalEvent(ctx, t.Client, playbook, customerID, ev)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return fmt.Errorf("%w: %w", ErrNoJourney, err)
	}
	return err
}

// NewDispatcher is the production dispatcher: the deployed plans in
// registry, journeys on Temporal through c, running enrollments from the
// store.
func NewDispatcher(c client.Client, registry *engine.Registry, st Enrollments) *EventDispatcher {
	return NewEventDispatcher(registry, TemporalJourneys{Client: c}, st, nil)
}

var _ Journeys = TemporalJourneys{}
