package api

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/rapport-crm/rapport/store"
)

// DefaultEventStatements is Options.EventStatements when unset: how many
// statements storing events run at once before further calls wait to
// share the next one.
const DefaultEventStatements = 2

// maxGroupCalls bounds the calls a shared statement takes from the queue;
// one request's own run may be larger (a batch of up to MaxBatchItems)
// and then goes alone.
const maxGroupCalls = 500

// eventGroups lets concurrent requests share the statement that stores
// their events (group commit). At most limit statements run at once;
// runs of calls that arrive while all of them are busy wait, and the
// next statement to start takes them all. A request that finds a
// statement free starts one at once, so grouping adds no wait when calls
// come one at a time; under load one round trip and one commit serve
// many calls, where each call's statement would otherwise write and
// flush on its own.
//
// Runs in one statement come from requests in flight together, which
// have no order between them: the statement sees all of them at its
// start, as if they were sent in the order they were queued. Each run's
// outcomes are its own: a call refused for its content fails only that
// call, and when the shared statement fails otherwise, every run in it
// is written again on its own, within its own request's deadline
// (IngestEvents finds the calls already stored by their IDs), so that
// one request's failure is not another's. The shared statement runs
// until the earliest of its runs' deadlines (sharedDeadline), so that the
// others have time left to be written alone; a run whose deadline passed
// before a statement took it is not written.
type eventGroups struct {
	ing   EventsIngester
	limit int
	log   *slog.Logger

	mu      sync.Mutex
	queue   []*eventRun
	running int // statements in flight, at most limit
}

// eventRun is one request's run of calls waiting for its outcomes.
type eventRun struct {
	calls    []store.EventCall
	deadline time.Time // the request's: a statement writing the run alone ends by it
	out      []store.EventOutcome
	err      error
	done     chan struct{}
}

func newEventGroups(ing EventsIngester, limit int, log *slog.Logger) *eventGroups {
	return &eventGroups{ing: ing, limit: limit, log: log}
}

// IngestEvents queues the calls for the next statement, starting one if
// fewer than limit run, and answers their outcomes once it is written.
// When ctx ends first, it answers ctx's error at once: a run still
// queued is taken off the queue, unwritten; one a statement has taken
// may still be written, and the client's retry finds it by ID.
func (g *eventGroups) IngestEvents(ctx context.Context, calls []store.EventCall) ([]store.EventOutcome, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(applyTimeout)
	}
	r := &eventRun{calls: calls, deadline: deadline, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, r)
	if g.running < g.limit {
		g.running++
		go g.writeQueued()
	}
	g.mu.Unlock()
	select {
	case <-r.done:
		return r.out, r.err
	case <-ctx.Done():
	}
	g.mu.Lock()
	if at := slices.Index(g.queue, r); at >= 0 {
		g.queue = slices.Delete(g.queue, at, at+1)
		g.mu.Unlock()
		return nil, fmt.Errorf("ingest %d events: waiting for a statement: %w", len(calls), ctx.Err())
	}
	g.mu.Unlock()
	return nil, fmt.Errorf("ingest %d events: a statement holding them may still write them: %w", len(calls), ctx.Err())
}

// writeQueued writes what is queued, a statement at a time, until the
// queue is empty.
func (g *eventGroups) writeQueued() {
	for {
		g.mu.Lock()
		group := g.take()
		if len(group) == 0 {
			g.running--
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.write(group)
	}
}

// take removes from the queue the runs of the next statement: at least
// one, and more while they total at most maxGroupCalls calls. The caller
// holds mu.
func (g *eventGroups) take() []*eventRun {
	n, calls := 0, 0
	for n < len(g.queue) && (n == 0 || calls+len(g.queue[n].calls) <= maxGroupCalls) {
		calls += len(g.queue[n].calls)
		n++
	}
	group := slices.Clone(g.queue[:n])
	g.queue = slices.Delete(g.queue, 0, n)
	return group
}

// minShared is the least time a shared statement gets, so that a run
// with little time left does not cut it short for the others.
const minShared = 2 * time.Second

// sharedDeadline is when a shared statement of group ends: by the
// earliest deadline of its runs, so that the others have time left to be
// written alone should it fail, but not sooner than minShared from now
// nor later than the last deadline. A run whose deadline comes first is
// answered then (IngestEvents), and may still be written.
func sharedDeadline(group []*eventRun, now time.Time) time.Time {
	earliest, latest := group[0].deadline, group[0].deadline
	for _, r := range group[1:] {
		if r.deadline.Before(earliest) {
			earliest = r.deadline
		}
		if r.deadline.After(latest) {
			latest = r.deadline
		}
	}
	if floor := now.Add(minShared); earliest.Before(floor) {
		earliest = floor
	}
	if latest.Before(earliest) {
		return latest
	}
	return earliest
}

// dropExpired answers the runs of group whose deadline has passed (their
// requests have answered already) and returns the others, so that a
// late run does not fail the statement of the rest.
func (g *eventGroups) dropExpired(group []*eventRun) []*eventRun {
	now := time.Now()
	live := group[:0:0]
	for _, r := range group {
		if !now.Before(r.deadline) {
			r.err = fmt.Errorf("ingest %d events: %w before a statement took them", len(r.calls), context.DeadlineExceeded)
			continue
		}
		live = append(live, r)
	}
	return live
}

// write stores the runs of group in one statement and hands each run its
// outcomes; if that fails for other than a call's content, each run is
// written again alone. A panic fails the runs not yet answered, as it
// would have failed their requests, instead of the whole server: the
// statement runs on no request's goroutine.
func (g *eventGroups) write(group []*eventRun) {
	defer func() {
		for _, r := range group {
			close(r.done)
		}
	}()
	defer func() {
		if p := recover(); p != nil {
			g.log.Error("panic while storing events", "panic", p, "stack", string(debug.Stack()))
			for _, r := range group {
				if r.out == nil && r.err == nil {
					r.err = fmt.Errorf("ingest %d events: panic: %v", len(r.calls), p)
				}
			}
		}
	}()
	live := g.dropExpired(group)
	if len(live) > 1 {
		var all []store.EventCall
		for _, r := range live {
			all = append(all, r.calls...)
		}
		ctx, cancel := context.WithDeadline(context.Background(), sharedDeadline(live, time.Now()))
		out, err := g.ing.IngestEvents(ctx, all)
		cancel()
		if err == nil {
			for _, r := range live {
				r.out, out = out[:len(r.calls):len(r.calls)], out[len(r.calls):]
			}
			return
		}
		g.log.Warn("a shared statement storing events failed; writing each request's run alone",
			"runs", len(live), "calls", len(all), "err", err)
	}
	for _, r := range live {
		ctx, cancel := context.WithDeadline(context.Background(), r.deadline)
		r.out, r.err = g.ing.IngestEvents(ctx, r.calls)
		cancel()
	}
}
