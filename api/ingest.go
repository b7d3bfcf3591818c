package api

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/rapport-crm/rapport/rules"
)

// applyTimeout bounds the work done for one call once it is read. The work
// runs detached from the request context: a client that hangs up after its
// event was stored must not leave the event half dispatched.
const applyTimeout = 15 * time.Second

// success is Segment's answer shape, which its libraries expect.
type success struct {
	Success bool `json:"success"`
	Calls   int  `json:"calls,omitempty"` // batch: number of calls applied
}

func (s *Server) handleIdentify(w http.ResponseWriter, r *http.Request) {
	s.handleCall(w, r, "identify")
}

func (s *Server) handleTrack(w http.ResponseWriter, r *http.Request) { s.handleCall(w, r, "track") }

// handleCall serves /v1/identify and /v1/track.
func (s *Server) handleCall(w http.ResponseWriter, r *http.Request, typ string) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	call, err := parseCall(body, typ, "", s.limits())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.apply(w, r, []Call{call}, false)
}

// handleBatch serves /v1/batch: every item is validated before any is
// applied, so one bad item rejects the batch and nothing is written.
func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	calls, err := parseBatch(body, s.limits())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.apply(w, r, calls, true)
}

// readBody reads a size-limited body, answering 413 when it is too big.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "body: larger than the limit of "+byteSize(tooBig.Limit))
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "body: could not be read")
		return nil, false
	}
	return body, true
}

func byteSize(n int64) string {
	if n%1024 == 0 {
		return strconv.FormatInt(n/1024, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

func (s *Server) limits() limits {
	return limits{now: s.opts.Now().UTC(), maxFuture: s.opts.MaxFuture, maxPast: s.opts.MaxPast, ws: s.opts.Workspace.Get()}
}

// apply writes the calls in order and dispatches each stored event, then
// answers. Once one dispatch fails the remaining calls are still written
// (an accepted event is never lost) but not dispatched; the answer is 503
// and the client's retry dispatches them.
func (s *Server) apply(w http.ResponseWriter, r *http.Request, calls []Call, batch bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), applyTimeout)
	defer cancel()
	var dispatchErr error
	for i, call := range calls {
		pending, err := s.write(ctx, call)
		if err != nil {
			s.fail(w, "store", i, len(calls), err)
			return
		}
		if pending == nil || dispatchErr != nil {
			continue
		}
		dispatchErr = s.dispatch(ctx, call.UserID, *pending)
		if dispatchErr != nil {
			s.opts.Logger.Error("dispatch failed; the event is stored and the client will retry",
				"customer", call.UserID, "event", pending.Name, "message_id", pending.ID, "err", dispatchErr)
		}
	}
	if dispatchErr != nil {
		s.fail(w, "dispatch", -1, len(calls), dispatchErr)
		return
	}
	answer := success{Success: true}
	if batch {
		answer.Calls = len(calls)
	}
	writeJSON(w, http.StatusOK, answer)
}

// fail answers a server-side failure: 503 with Retry-After when a retry
// may help, 500 otherwise. Neither loses anything: stored events are kept
// and Segment clients retry both.
func (s *Server) fail(w http.ResponseWriter, stage string, index, n int, err error) {
	if IsUnavailable(err) {
		s.writeUnavailable(w, stage+" temporarily unavailable; retry the same call")
		return
	}
	s.opts.Logger.Error("api call failed", "stage", stage, "index", index, "calls", n, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error while handling the call; retry the same call")
}

// write stores one call. For a track it returns the stored event when it
// still needs dispatching, nil when it was fully dispatched before.
func (s *Server) write(ctx context.Context, call Call) (*rules.Event, error) {
	if call.Type == "identify" {
		return nil, s.identify(ctx, call)
	}
	inserted, err := s.opts.Store.InsertEvent(ctx, call.UserID, call.event)
	if err != nil {
		return nil, err
	}
	if !inserted {
		done, err := s.opts.Store.EventDispatched(ctx, call.event.ID)
		if err != nil || done {
			return nil, err
		}
	}
	ev := call.event
	return &ev, nil
}

// identify merges the traits into the stored profile. The stored record
// is read only to fill in what it does not know yet (withDefaults); the
// store merges the update, so concurrent changes to other fields (a
// purchase updating the metrics) are not overwritten.
func (s *Server) identify(ctx context.Context, call Call) error {
	u := call.profile
	stored, err := s.opts.Store.Customer(ctx, call.UserID)
	switch {
	case errors.Is(err, ErrNotFound):
		u.withDefaults(nil, call)
	case err != nil:
		return err
	default:
		u.withDefaults(&stored, call)
	}
	if err := s.opts.Store.UpsertCustomer(ctx, u.Set); err != nil {
		return err
	}
	if len(u.Clear) == 0 {
		return nil
	}
	return s.opts.Store.ClearFields(ctx, call.UserID, u.Clear)
}

// dispatch hands a stored event to the journeys with the customer as
// stored now, then marks it dispatched.
func (s *Server) dispatch(ctx context.Context, customerID string, ev rules.Event) error {
	c, err := s.opts.Store.Customer(ctx, customerID)
	if err != nil {
		return err
	}
	if err := s.opts.Dispatcher.Dispatch(ctx, c, ev); err != nil {
		return err
	}
	return s.opts.Store.MarkDispatched(ctx, ev.ID)
}

// IsUnavailable reports whether err is a dependency outage a retry may
// fix: ErrUnavailable, Temporal's Unavailable, DeadlineExceeded or
// ResourceExhausted (the namespace's rate limit, which a burst of scan
// starts can hit), a timeout, or a network error.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	var exhausted *serviceerror.ResourceExhausted
	var netErr net.Error
	return errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &unavailable) || errors.As(err, &deadline) || errors.As(err, &exhausted) ||
		errors.As(err, &netErr)
}
