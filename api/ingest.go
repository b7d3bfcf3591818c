package api

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"go.temporal.io/api/serviceerror"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

// applyTimeout bounds the work done for one call once it is read. The work
// runs detached from the request context: a client that hangs up after its
// event was stored must not leave the event half dispatched.
const applyTimeout = 15 * time.Second

// success is Segment's answer shape, which its libraries expect, with
// the batch's per-item errors.
type success struct {
	Success bool `json:"success"`
	// Calls is the number of batch items applied.
	Calls int `json:"calls,omitempty"`
	// Rejected and Errors are the batch items not applied, each with the
	// status it would have answered alone.
	Rejected int         `json:"rejected,omitempty"`
	Errors   []itemError `json:"errors,omitempty"`
}

// handleCall serves /v1/identify, /v1/track, /v1/page, /v1/screen,
// /v1/group and /v1/alias.
func (s *Server) handleCall(typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := readBody(w, r, MaxCallBytes)
		if !ok {
			return
		}
		call, err := parseCall(body, typ, "", s.limits())
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.apply(w, r, []Call{call}, nil, nil)
	}
}

// handleBatch serves /v1/batch. A batch whose envelope is sound answers
// 200 even when some items are refused, as Segment does: the refused ones
// are listed in errors, and the others are applied. A client that does
// not retry 4xx (classic analytics-node) thus loses only the bad items;
// retrying them would not help, since each would be refused again.
func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, MaxBatchBytes)
	if !ok {
		return
	}
	calls, idx, errs, err := parseBatch(body, s.limits())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.apply(w, r, calls, idx, errs)
}

// readBody reads a body of at most limit bytes, gunzipped when it says
// Content-Encoding: gzip (as Segment's libraries may send it); the limit
// holds for the body as sent (limited) and as decompressed. Too big is 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	src := io.Reader(r.Body)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "body: Content-Encoding is gzip but the body is not gzip data")
			return nil, false
		}
		defer zr.Close()
		src = io.LimitReader(zr, limit+1)
	default:
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q is not supported (send gzip or none)", truncate(enc, 40)))
		return nil, false
	}
	body, err := io.ReadAll(src)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig) || int64(len(body)) > limit:
		writeError(w, http.StatusRequestEntityTooLarge, "body: larger than the limit of "+byteSize(limit))
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "body: could not be read: "+err.Error())
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
	return limits{now: s.opts.Now().UTC(), maxFuture: s.opts.MaxFuture, maxPast: s.opts.MaxPast,
		ws: s.opts.Workspace.Get(), commerce: s.opts.Commerce}
}

// apply writes the calls in order, each atomically, and dispatches each
// stored event, then answers. idx are the batch indexes of the calls and
// errs the batch items already refused (both nil for a single call).
// Calls that only store an event are written a run at a time
// (writeNext); their events are then dispatched each customer's in the
// calls' order, the customers side by side (dispatchRun).
//
// A call refused by the store for its content (a messageId of another
// user, a value out of range) is a 4xx: alone it is the answer, in a batch
// it joins errs and the next item goes on. Once one dispatch fails, the
// customer's later events of its run and every later run are still
// written (an accepted event is never lost) but not dispatched; the
// answer is 503 and the client's retry dispatches them. Any other store
// failure answers 503 or 500 at once; the items written before it stay
// written, and a retry finds them by messageId.
func (s *Server) apply(w http.ResponseWriter, r *http.Request, calls []Call, idx []int, errs []itemError) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), applyTimeout)
	defer cancel()
	batch := idx != nil || errs != nil
	var dispatchErr error
	applied := 0
	for i := 0; i < len(calls); {
		results := s.writeNext(ctx, calls[i:])
		var jobs []written // the run's stored events still to dispatch
		for k, res := range results {
			at, call := i+k, calls[i+k]
			path := ""
			if batch {
				path = fmt.Sprintf("batch[%d]", idx[at])
			}
			if res.err != nil {
				status, msg, refused := refusal(res.err, path, call)
				if refused && batch {
					errs = append(errs, itemError{Index: idx[at], Status: status, Error: msg})
					continue
				}
				if dispatchErr == nil {
					s.dispatchRun(ctx, jobs) // as far as it was written
				}
				if refused {
					writeError(w, status, msg)
				} else {
					s.fail(w, "store", at, len(calls), res.err)
				}
				return
			}
			applied++
			if res.pending != nil {
				jobs = append(jobs, res)
			}
		}
		if dispatchErr == nil {
			dispatchErr = s.dispatchRun(ctx, jobs)
		}
		i += len(results)
	}
	if dispatchErr != nil {
		s.fail(w, "dispatch", -1, len(calls), dispatchErr)
		return
	}
	answer := success{Success: true}
	if batch {
		slices.SortFunc(errs, func(a, b itemError) int { return a.Index - b.Index })
		answer.Calls, answer.Rejected, answer.Errors = applied, len(errs), errs
	}
	writeJSON(w, http.StatusOK, answer)
}

// dispatchParallel bounds the customers whose events of one run are
// dispatched at once.
const dispatchParallel = 8

// dispatchRun dispatches the stored events of a run, each customer's in
// the run's order and the customers' side by side (at most
// dispatchParallel at once): a batch of events to customers in journeys
// waits for the slowest customer's signals instead of the sum of all.
// A customer whose dispatch fails has its later events left undispatched
// (its order must hold); the others go on. It answers the first failure
// in the run's order, once every dispatch started has ended.
func (s *Server) dispatchRun(ctx context.Context, jobs []written) error {
	switch len(jobs) {
	case 0:
		return nil
	case 1:
		return s.dispatchOne(ctx, jobs[0])
	}
	var order []string
	byCustomer := map[string][]int{}
	for i, j := range jobs {
		if _, ok := byCustomer[j.who]; !ok {
			order = append(order, j.who)
		}
		byCustomer[j.who] = append(byCustomer[j.who], i)
	}
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, dispatchParallel)
	var wg sync.WaitGroup
	for _, who := range order {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			for _, i := range byCustomer[who] {
				if errs[i] = s.dispatchOne(ctx, jobs[i]); errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// dispatchOne dispatches one stored event, logging a failure.
func (s *Server) dispatchOne(ctx context.Context, j written) error {
	err := s.dispatchWith(ctx, j.who, j.pending.Event, j.pending.running)
	if err != nil {
		s.opts.Logger.Error("dispatch failed; the event is stored and the client will retry",
			"customer", j.who, "event", j.pending.Name, "message_id", j.pending.ID, "err", err)
	}
	return err
}

// refusal says whether the store refused a call for what it holds, and
// with which 4xx: 409 for a messageId another user's event has, 422 for a
// value PostgreSQL cannot keep (a revenue that overflows the lifetime
// value, …). Retrying such a call cannot help, so it is never a 5xx.
func refusal(err error, path string, call Call) (int, string, bool) {
	switch {
	case errors.Is(err, store.ErrMessageIDReused):
		return http.StatusConflict, join(path, "messageId") + ": " + strconv.Quote(call.MessageID) + " is already used by an event of another user", true
	case store.IsInputError(err):
		var pg *pgconn.PgError
		errors.As(err, &pg)
		return http.StatusUnprocessableEntity, nameOr(path, "body") + ": a value cannot be stored: " + pg.Message, true
	}
	return 0, "", false
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

// pending is a stored event still to dispatch, with the customer's
// running playbook versions when Ingest read them (nil: not read).
type pending struct {
	rules.Event
	running []ActiveEnrollment
}

// written is what writing one call did: the customer it counted for
// and the event still to dispatch (write), or why it was not written.
type written struct {
	who     string
	pending *pending
	err     error
}

// writeNext writes the first of calls and answers what it did; when the
// Store can (EventsIngester) and the first calls only store an event of
// a known customer (Call.storesOnlyEvent), it writes all those calls in
// a row at once instead (in a statement it may share with other
// requests' runs, eventGroups), answering one result per call. A failure
// that is not a refusal of one call is a single result, for the first
// call: some of the run may be written, and the client's retry finds
// them by messageId.
func (s *Server) writeNext(ctx context.Context, calls []Call) []written {
	n := 0
	for s.events != nil && n < len(calls) && calls[n].storesOnlyEvent() {
		n++
	}
	if n == 0 {
		who, p, err := s.write(ctx, calls[0])
		return []written{{who: who, pending: p, err: err}}
	}
	// An event no trigger names is quiet, unless an earlier call of the
	// run names one for the same customer: its dispatch may start a
	// journey the event must reach, which the statement cannot see.
	// Such an event also reads the customer's journeys again when it is
	// dispatched (afterTrigger).
	namer, _ := s.opts.Dispatcher.(TriggerNamer)
	triggering := map[string]bool{}
	afterTrigger := make([]bool, n)
	in := make([]store.EventCall, n)
	for k, c := range calls[:n] {
		triggers := namer == nil || namer.Triggers(c.event.Name)
		afterTrigger[k] = triggering[c.UserID]
		in[k] = store.EventCall{CustomerID: c.UserID, AnonymousID: c.AnonymousID, Event: *c.event,
			Quiet: !triggers && !afterTrigger[k]}
		triggering[c.UserID] = triggering[c.UserID] || triggers
	}
	outs, err := s.events.IngestEvents(ctx, in)
	if err != nil {
		return []written{{err: err}}
	}
	res := make([]written, n)
	for k, o := range outs {
		who := calls[k].UserID
		switch {
		case o.Err != nil:
			res[k] = written{err: o.Err}
		case o.Dispatched: // dispatched before, or nowhere to go
			res[k] = written{who: who}
		case afterTrigger[k]:
			// Read again when it is dispatched: the dispatch of an
			// earlier call of the customer may start a journey this
			// event must reach.
			res[k] = written{who: who, pending: &pending{Event: *calls[k].event}}
		default:
			res[k] = written{who: who, pending: &pending{Event: *calls[k].event, running: activeEnrollments(o.Running)}}
		}
	}
	return res
}

// storesOnlyEvent says whether the call only stores an event of a known
// customer (store.EventCall): a track, page or screen call with a
// userId, no context.traits and an event that changes no metric.
func (c Call) storesOnlyEvent() bool {
	return c.event != nil && c.UserID != "" && c.profile == nil && c.effect == "" && c.GroupID == ""
}

// write stores one call in one transaction. It returns the customer the
// call counted for ("" for an anonymous visitor) and, for an event, the
// event when it still needs dispatching (nil when it was dispatched
// before, or has no customer to go to), with the customer's running
// versions read in the same transaction.
func (s *Server) write(ctx context.Context, call Call) (string, *pending, error) {
	in := store.Ingestion{CustomerID: call.UserID, AnonymousID: call.AnonymousID, Profile: call.profile,
		Event: call.event, Effect: call.effect, GroupID: call.GroupID, ReadRunning: call.event != nil}
	if call.Type == "group" {
		in.GroupTraits = call.Traits
	}
	if call.UserID == "" {
		in.AnonymousTraits = withoutNulls(call.ContextTraits)
		if call.Type == "identify" {
			in.AnonymousTraits = withoutNulls(call.Traits)
		}
	}
	res, err := s.opts.Store.Ingest(ctx, in)
	if err != nil || call.event == nil || res.CustomerID == "" {
		return res.CustomerID, nil, err
	}
	if res.Dispatched {
		return res.CustomerID, nil, nil // a repeated call: done before
	}
	p := &pending{Event: *call.event}
	if res.Running != nil {
		p.running = activeEnrollments(res.Running)
	}
	return res.CustomerID, p, nil
}

// withoutNulls drops the null traits of an anonymous visitor: there is
// nothing stored yet for them to clear.
func withoutNulls(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if v != nil {
			out[k] = v
		}
	}
	return out
}

// dispatch hands a stored event to the journeys with the customer as
// stored now, then marks it dispatched (queued for the marker batcher
// when Options.MarkEvery is set).
func (s *Server) dispatch(ctx context.Context, customerID string, ev rules.Event) error {
	return s.dispatchWith(ctx, customerID, ev, nil)
}

// dispatchWith is dispatch with the customer's running versions when the
// caller read them already (nil: the dispatcher reads them). A
// CustomerDispatcher reads the customer only if a trigger needs the
// profile.
func (s *Server) dispatchWith(ctx context.Context, customerID string, ev rules.Event, running []ActiveEnrollment) error {
	load := func(ctx context.Context) (rules.Customer, error) { return s.opts.Store.Customer(ctx, customerID) }
	var err error
	if d, ok := s.opts.Dispatcher.(CustomerDispatcher); ok {
		err = d.DispatchTo(ctx, Recipient{ID: customerID, Load: load, Running: running}, ev)
	} else {
		var c rules.Customer
		if c, err = load(ctx); err == nil {
			err = s.opts.Dispatcher.Dispatch(ctx, c, ev)
		}
	}
	if err != nil {
		return err
	}
	if s.eventMarkers != nil {
		s.eventMarkers.Add(ctx, ev.ID)
		return nil
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
