package api

import (
	"context"
	"time"

	"github.com/rapport-crm/rapport/store"
)

// PendingEvent is a stored event whose dispatch has not succeeded.
type PendingEvent = store.PendingEvent

// PendingLister finds stored events whose dispatch never succeeded;
// PGStore implements it.
type PendingLister interface {
	UndispatchedEvents(ctx context.Context, after, before time.Time, limit int) ([]PendingEvent, error)
}

// redispatchBatch bounds the events one Redispatch pass handles.
const redispatchBatch = 500

// Redispatch dispatches stored events that are still undispatched minAge
// after they were received: their call failed (503) and the client never
// retried. Events older than maxAge are left alone, because starting a
// journey for something that happened long ago would surprise more than
// it helps. A retry racing with this is harmless: starts are idempotent
// and journeys drop duplicate events by ID. It stops at the first
// failure, which the next pass retries, and returns how many it
// dispatched. Pending dispatch markers are written first, so only
// markers a failed write left behind (logged) cause a redispatch.
func (s *Server) Redispatch(ctx context.Context, pending PendingLister, minAge, maxAge time.Duration) (int, error) {
	s.flushMarkers(ctx)
	now := s.opts.Now()
	events, err := pending.UndispatchedEvents(ctx, now.Add(-maxAge), now.Add(-minAge), redispatchBatch)
	if err != nil {
		return 0, err
	}
	for i, p := range events {
		if err := s.dispatch(ctx, p.CustomerID, p.Event); err != nil {
			return i, err
		}
		s.opts.Logger.Info("redispatched an event its client did not retry", "customer", p.CustomerID, "event", p.Event.Name, "message_id", p.Event.ID)
	}
	return len(events), nil
}
