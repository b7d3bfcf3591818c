package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// EventCall is a call of the event API that only stores an event of a
// known customer: a page view, a product view, any track whose event
// changes no metric, carrying no profile change and no group. Most
// calls are such, and IngestEvents writes many of them in one statement.
type EventCall struct {
	CustomerID  string // required
	AnonymousID string // "" or the caller's anonymousId, tied to CustomerID if not yet
	Event       rules.Event
	// Quiet says that no deployed playbook's trigger names the event: if
	// the customer runs no journey either (RunningVersions lists none),
	// dispatching it would do nothing, and it is stored as dispatched.
	Quiet bool
}

// EventOutcome is what IngestEvents did with one call.
type EventOutcome struct {
	// Err refuses the call, which changed nothing: ErrMessageIDReused,
	// or an input error (IsInputError) for a value PostgreSQL cannot keep.
	Err error
	// Inserted is true when the event is new.
	Inserted bool
	// Dispatched is true when the event needs no dispatch: it was
	// stored before and its dispatch succeeded then, or it is Quiet and
	// its customer runs no journey, and it was stored as dispatched.
	Dispatched bool
	// Running are the customer's running playbook versions, as
	// RunningVersions lists them.
	Running []RunningVersion
}

// ingestEventsSQL writes the calls ($1…$12, one array element each) whose
// event ID is free or the same customer's, whose anonymous id is none or
// tied to the customer already, and which no anonymous visitor's event
// holds, a quiet event of a customer in no journey as dispatched; it
// answers, for every call in order, who owns its ID, whether it took the
// call, whether the event needs no dispatch, whether it inserted the
// event, and the customer's running versions as before the statement. Everything it reads is as of
// the statement's start, and it writes all or nothing.
//
// Each insert takes its rows in key order (customers by id, event ids by
// id), so two such statements racing for the same new keys wait for each
// other rather than deadlock. (PostgreSQL does not say in which order it
// runs the statement's inserts; a deadlock with an Ingest of the same new
// customer and ID is possible, detected, and answered 5xx, which clients
// retry.)
var ingestEventsSQL = `
WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
		$6::float8[], $7::text[], $8::text[], $9::text[], $10::float8[], $11::text[], $12::bool[])
		WITH ORDINALITY AS i (id, customer_id, anonymous_id, name, time, amount, currency, order_id, category, score, props, quiet, n)
), checked AS (
	SELECT i.*, coalesce(o.customer_id, '') AS owner, o.dispatched_at IS NOT NULL AS dispatched,
		NOT EXISTS (SELECT 1 FROM anonymous_events a WHERE a.id = i.id)
		AND (i.anonymous_id = '' OR EXISTS (SELECT 1 FROM anonymous_ids t
			WHERE t.anonymous_id = i.anonymous_id AND t.customer_id = i.customer_id)) AS plain,
		coalesce(r.playbooks, '{}') AS playbooks, coalesce(r.versions, '{}') AS versions, coalesce(r.starting, '{}') AS starting
	FROM input i LEFT JOIN event_ids o ON o.id = i.id
	LEFT JOIN LATERAL (
		SELECT array_agg(playbook ORDER BY playbook, version) AS playbooks, array_agg(version ORDER BY playbook, version) AS versions,
			array_agg(starting ORDER BY playbook, version) AS starting
		FROM (` + runningOf("i.customer_id") + `) r
	) r ON true
), taken AS (
	SELECT * FROM checked WHERE plain AND owner IN ('', customer_id)
), new_customers AS (
	INSERT INTO customers (id) SELECT DISTINCT customer_id FROM taken ORDER BY customer_id
	ON CONFLICT (id) DO NOTHING
), ids AS (
	INSERT INTO event_ids (id, customer_id, time, dispatched_at)
	SELECT id, customer_id, time, CASE WHEN quiet AND cardinality(playbooks) = 0 THEN now() END FROM taken ORDER BY id
	ON CONFLICT (id) DO NOTHING RETURNING id, dispatched_at IS NOT NULL AS settled
), stored AS (
	INSERT INTO events (id, customer_id, name, time, amount, currency, order_id, category, score, props)
	SELECT t.id, t.customer_id, t.name, t.time, t.amount, t.currency, t.order_id, t.category, t.score, t.props::jsonb
	FROM taken t JOIN ids USING (id)
)
SELECT c.owner, c.plain, coalesce(ids.settled, c.dispatched), ids.id IS NOT NULL, c.playbooks, c.versions, c.starting
FROM checked c LEFT JOIN ids ON ids.id = c.id
ORDER BY c.n`

// IngestEvents stores the events of calls, each as Ingest would with
// ReadRunning, and answers an outcome per call, in order. The calls that
// need nothing but the event written (nearly all) go in one statement:
// one round trip and one commit for the lot, where Ingest takes a
// transaction of four round trips per call. The others — an anonymous id
// not tied to the customer yet (Ingest ties it and moves its events),
// an ID an anonymous visitor's event holds, an ID that comes again
// later in calls — then go through Ingest one by one, in order. Should
// the statement fail on a value (an amount too large to keep), every call
// goes through Ingest, so that only the bad one is refused.
//
// A call refused for its content has its outcome's Err set and changed
// nothing. Any other failure is returned: if the statement failed, none
// of its calls were written; if a call through Ingest failed, the
// statement's calls and the calls before it were (a retry finds them by
// ID).
func (s *Store) IngestEvents(ctx context.Context, calls []EventCall) ([]EventOutcome, error) {
	calls = slices.Clone(calls) // ingestEventSet fills in missing times
	out := make([]EventOutcome, len(calls))
	slow := make([]bool, len(calls))
	seen := make(map[string]bool, len(calls))
	var set []int // indexes of the calls in the statement
	for i, c := range calls {
		if c.CustomerID == "" {
			return nil, fmt.Errorf("ingest events: call %d (event %s) names no customer", i, c.Event.ID)
		}
		if seen[c.Event.ID] {
			slow[i] = true
			continue
		}
		seen[c.Event.ID] = true
		set = append(set, i)
	}
	if len(set) > 0 {
		err := s.ingestEventSet(ctx, calls, set, out, slow)
		if IsInputError(err) {
			for _, i := range set {
				slow[i] = true
			}
		} else if err != nil {
			return nil, err
		}
	}
	for i, c := range calls {
		if slow[i] {
			out[i] = s.ingestOneEvent(ctx, c)
			if out[i].Err != nil && !refused(out[i].Err) {
				return nil, out[i].Err
			}
		}
	}
	return out, nil
}

// ingestEventSet runs ingestEventsSQL for the calls at set, filling in
// their outcomes and marking slow those the statement left for Ingest.
func (s *Store) ingestEventSet(ctx context.Context, calls []EventCall, set []int, out []EventOutcome, slow []bool) error {
	n := len(set)
	var (
		quiet                                                               = make([]bool, n)
		ids, customers, anons, names, currencies, orders, categories, props = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		times                                                               = make([]time.Time, n)
		amounts, scores                                                     = make([]float64, n), make([]float64, n)
	)
	for k, i := range set {
		c := calls[i]
		ev := c.Event
		ev.Time = orNow(ev.Time)
		calls[i].Event.Time = ev.Time // the same time if the call goes through Ingest
		p := ev.Props
		if p == nil {
			p = map[string]any{}
		}
		b, err := json.Marshal(p)
		if err != nil {
			return permanent("event %s: properties: %v", ev.ID, err)
		}
		ids[k], customers[k], anons[k], names[k], times[k] = ev.ID, c.CustomerID, c.AnonymousID, ev.Name, ev.Time
		amounts[k], currencies[k], orders[k], categories[k], scores[k], props[k] = ev.Amount, ev.Currency, ev.OrderID, ev.Category, ev.Score, string(b)
		quiet[k] = c.Quiet
	}
	return s.withEventMonths(ctx, times, func() error {
		rows, err := s.pool.Query(ctx, ingestEventsSQL, ids, customers, anons, names, times, amounts, currencies, orders, categories, scores, props, quiet)
		if err != nil {
			return fmt.Errorf("ingest %d events (first %s): %w", n, ids[0], err)
		}
		defer rows.Close()
		k := 0
		for rows.Next() {
			var (
				owner                      string
				plain, dispatched, created bool
				playbooks, versions        []string
				starting                   []bool
			)
			if err := rows.Scan(&owner, &plain, &dispatched, &created, &playbooks, &versions, &starting); err != nil {
				return fmt.Errorf("ingest %d events (first %s): %w", n, ids[0], err)
			}
			i := set[k]
			k++
			switch {
			case !plain, owner == "" && !created:
				// Left for Ingest, or stored by a call that raced this
				// statement for the ID: Ingest reads whose it is.
				slow[i] = true
			case owner != "" && owner != calls[i].CustomerID:
				out[i] = EventOutcome{Err: ErrMessageIDReused}
			default:
				out[i] = EventOutcome{Inserted: created, Dispatched: dispatched, Running: running(playbooks, versions, starting)}
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("ingest %d events (first %s): %w", n, ids[0], err)
		}
		if k != n {
			return fmt.Errorf("ingest %d events (first %s): %d outcomes", n, ids[0], k)
		}
		return nil
	})
}

// running zips the playbooks, versions and starting flags a statement
// aggregated.
func running(playbooks, versions []string, starting []bool) []RunningVersion {
	out := make([]RunningVersion, len(playbooks))
	for i := range playbooks {
		out[i] = RunningVersion{Playbook: playbooks[i], Version: versions[i], Starting: starting[i]}
	}
	return out
}

// ingestOneEvent is one call through Ingest, as IngestEvents answers it.
func (s *Store) ingestOneEvent(ctx context.Context, c EventCall) EventOutcome {
	ev := c.Event
	res, err := s.Ingest(ctx, Ingestion{CustomerID: c.CustomerID, AnonymousID: c.AnonymousID, Event: &ev, ReadRunning: true})
	if err != nil {
		return EventOutcome{Err: err}
	}
	o := EventOutcome{Inserted: res.Inserted, Dispatched: res.Dispatched, Running: res.Running}
	if res.Inserted && c.Quiet && len(res.Running) == 0 {
		if err := s.MarkDispatched(ctx, ev.ID); err != nil {
			return EventOutcome{Err: err}
		}
		o.Dispatched = true
	}
	return o
}

// refused says whether err refuses a call for its content (a 4xx), as
// opposed to a failure a retry may fix.
func refused(err error) bool {
	return errors.Is(err, ErrMessageIDReused) || IsInputError(err)
}
