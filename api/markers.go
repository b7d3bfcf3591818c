package api

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// markerBatch bounds the IDs one marker statement carries: when this many
// are pending the batcher writes at once instead of waiting for its tick.
const markerBatch = 256

// maxPendingMarkers bounds the markers kept for another attempt after a
// failed write; past it they are dropped (and logged), since the
// redispatch sweeper hands those events on again and journeys drop them
// by ID — memory must not grow without end while the database is down.
const maxPendingMarkers = 16 * markerBatch

// markerBatcher writes the dispatch markers of provider events off the
// request path: a webhook call would otherwise wait for a second round
// trip after its dispatch. It collects the IDs of dispatched events and
// writes them in one statement every interval, or as soon as markerBatch
// are pending. Markers still in memory when the process dies are lost;
// the sweeper redispatches those events, which is harmless (journeys drop
// a duplicate event by ID), so nothing accepted is lost.
type markerBatcher struct {
	write func(ctx context.Context, ids ...string) error
	log   *slog.Logger

	mu      sync.Mutex
	pending []string
	closed  bool

	// flushMu serialises writes, so Flush returns only after every
	// marker added before it is written, including one a tick took.
	flushMu sync.Mutex
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// newMarkerBatcher starts the batcher's loop; Close stops it.
func newMarkerBatcher(write func(ctx context.Context, ids ...string) error, every time.Duration, log *slog.Logger) *markerBatcher {
	b := &markerBatcher{write: write, log: log,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop(every)
	return b
}

// Add queues the markers of dispatched events. After Close it writes
// them at once, so a call finishing late loses nothing.
func (b *markerBatcher) Add(ctx context.Context, ids ...string) {
	if len(ids) == 0 {
		return
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.writeNow(ctx, ids)
		return
	}
	b.pending = append(b.pending, ids...)
	full := len(b.pending) >= markerBatch
	b.mu.Unlock()
	if full {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// Flush writes every pending marker and returns once they are written
// (or the write failed and was logged).
func (b *markerBatcher) Flush(ctx context.Context) {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	ids := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(ids) > 0 {
		b.writeNow(ctx, ids)
	}
}

// writeNow writes ids in one statement. On failure it keeps them for the
// next attempt while they fit under maxPendingMarkers; beyond that they
// are left to the redispatch sweeper.
func (b *markerBatcher) writeNow(ctx context.Context, ids []string) {
	err := b.write(ctx, ids...)
	if err == nil {
		return
	}
	b.mu.Lock()
	keep := !b.closed && len(b.pending)+len(ids) <= maxPendingMarkers
	if keep {
		b.pending = append(ids, b.pending...)
	}
	b.mu.Unlock()
	if keep {
		b.log.Warn("dispatch markers not written; retrying", "events", len(ids), "err", err)
		return
	}
	b.log.Warn("dispatch markers not written; the redispatch sweeper will hand these events on again", "events", len(ids), "err", err)
}

// loop flushes every interval and whenever Add finds a full batch.
func (b *markerBatcher) loop(every time.Duration) {
	defer close(b.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		case <-b.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
		b.Flush(ctx)
		cancel()
	}
}

// Close stops the loop and writes what is pending; later Adds write at
// once. rapport serve calls it (through Server.Close) after the HTTP
// server has finished its calls in flight.
func (b *markerBatcher) Close(ctx context.Context) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	<-b.done
	b.Flush(ctx)
}
