package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// outcomeText is an outcome in a comparable form.
func outcomeText(o store.EventOutcome) string {
	switch {
	case errors.Is(o.Err, store.ErrMessageIDReused):
		return "reused"
	case store.IsInputError(o.Err):
		return "bad value"
	case o.Err != nil:
		return "error " + o.Err.Error()
	}
	return fmt.Sprintf("inserted=%v dispatched=%v running=%v", o.Inserted, o.Dispatched, o.Running)
}

// Each kind of call IngestEvents meets: a new customer, a known one, a
// duplicate already dispatched, another user's ID, an anonymous id tied
// to the customer and one not tied yet (whose earlier events move), an ID
// twice in the calls, and an amount too large to keep, which refuses that
// call alone.
func TestIngestEventsOutcomes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	mustCustomer(t, s, rules.Customer{ID: "known"})
	mustCustomer(t, s, rules.Customer{ID: "other"})
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	ev := func(id string) rules.Event {
		return rules.Event{ID: id, Name: "page", Time: at, Props: map[string]any{"path": "/" + id}}
	}
	// Stored before: other's event o1 (dispatched), known's k0 (dispatched),
	// anon-tied tied to known, anon-new's anonymous event a1.
	for _, in := range []store.Ingestion{
		{CustomerID: "other", Event: &rules.Event{ID: "o1", Name: "page", Time: at}},
		{CustomerID: "known", Event: &rules.Event{ID: "k0", Name: "page", Time: at}},
		{CustomerID: "known", AnonymousID: "anon-tied"},
		{AnonymousID: "anon-new", Event: &rules.Event{ID: "a1", Name: "page", Time: at.Add(-time.Hour)}},
	} {
		if _, err := s.Ingest(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkEventsDispatched(ctx, "o1", "k0"); err != nil {
		t.Fatal(err)
	}
	if err := s.NoteStarts(ctx, store.JourneyStart{CustomerID: "known", Playbook: "welcome", Version: "v2", TriggerID: "t"}); err != nil {
		t.Fatal(err)
	}
	big := ev("big")
	big.Amount = 1e15 // numeric(14,2) keeps less
	calls := []store.EventCall{
		{CustomerID: "fresh", Event: ev("f1")},                           // 0 new customer
		{CustomerID: "known", Event: ev("k1")},                           // 1
		{CustomerID: "known", Event: ev("k0")},                           // 2 stored and dispatched before
		{CustomerID: "known", Event: ev("o1")},                           // 3 other's ID
		{CustomerID: "known", AnonymousID: "anon-tied", Event: ev("k2")}, // 4
		{CustomerID: "new", AnonymousID: "anon-new", Event: ev("n1")},    // 5 ties anon-new, moves a1
		{CustomerID: "fresh", Event: ev("f1")},                           // 6 f1 again
		{CustomerID: "known", Event: big},                                // 7 bad value
		{CustomerID: "fresh", Event: ev("q1"), Quiet: true},              // 8 nobody hears it: stored as dispatched
		{CustomerID: "known", Event: ev("q2"), Quiet: true},              // 9 known runs welcome: to dispatch
	}
	out, err := s.IngestEvents(ctx, calls)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"inserted=true dispatched=false running=[]",
		"inserted=true dispatched=false running=[{welcome v2 true}]",
		"inserted=false dispatched=true running=[{welcome v2 true}]",
		"reused",
		"inserted=true dispatched=false running=[{welcome v2 true}]",
		"inserted=true dispatched=false running=[]",
		"inserted=false dispatched=false running=[]",
		"bad value",
		"inserted=true dispatched=true running=[]",
		"inserted=true dispatched=false running=[{welcome v2 true}]",
	}
	for i, o := range out {
		if got := outcomeText(o); got != want[i] {
			t.Errorf("call %d (%s): %s, want %s", i, calls[i].Event.ID, got, want[i])
		}
	}
	if got := column(t, s, `SELECT customer_id || '/' || id FROM events ORDER BY 1`); !slices.Equal(got,
		[]string{"fresh/f1", "fresh/q1", "known/k0", "known/k1", "known/k2", "known/q2", "new/a1", "new/n1", "other/o1"}) {
		t.Errorf("events: %v", got)
	}
	if got := column(t, s, `SELECT anonymous_id || '/' || customer_id FROM anonymous_ids ORDER BY 1`); !slices.Equal(got,
		[]string{"anon-new/new", "anon-tied/known"}) {
		t.Errorf("anonymous ids: %v", got)
	}
	if n := count(t, s, `SELECT count(*) FROM events WHERE id = 'big'`); n != 0 {
		t.Errorf("the refused event was stored")
	}
	if got := column(t, s, `SELECT id FROM event_ids WHERE dispatched_at IS NOT NULL ORDER BY 1`); !slices.Equal(got, []string{"a1", "k0", "o1", "q1"}) {
		t.Errorf("events marked dispatched: %v, want those before, a1 (moved as history) and the quiet q1", got)
	}
}

// IngestEvents leaves the database as Ingest does call after call, and
// answers each call as Ingest would: random calls over a few customers,
// anonymous ids and message IDs, so that IDs collide, anonymous ids get
// tied half-way and customers are new, run both ways on two databases.
func TestIngestEventsAsIngestOneByOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(7, 15))
	var rounds [][]store.EventCall
	var anonymous []store.Ingestion // anonymous events and ties between the rounds
	for round := range 12 {
		var calls []store.EventCall
		for range 1 + r.IntN(25) {
			c := store.EventCall{CustomerID: fmt.Sprintf("c%d", r.IntN(6)),
				Event: rules.Event{ID: fmt.Sprintf("m%d", r.IntN(60)), Name: []string{"page", "product_viewed"}[r.IntN(2)],
					Time: at.Add(time.Duration(r.IntN(90*24)) * time.Hour), Category: "shoes", Props: map[string]any{"n": r.IntN(9)}}}
			if r.IntN(3) == 0 {
				c.AnonymousID = fmt.Sprintf("a%d", r.IntN(5))
			}
			c.Quiet = r.IntN(2) == 0
			calls = append(calls, c)
		}
		rounds = append(rounds, calls)
		anonymous = append(anonymous, store.Ingestion{AnonymousID: fmt.Sprintf("a%d", r.IntN(5)),
			Event: &rules.Event{ID: fmt.Sprintf("m%d", r.IntN(60)), Name: "page", Time: at}})
		if round%4 == 3 {
			anonymous = append(anonymous, store.Ingestion{CustomerID: fmt.Sprintf("c%d", r.IntN(6)), AnonymousID: fmt.Sprintf("a%d", r.IntN(5))})
		}
	}
	set, one := storetest.New(t), storetest.New(t)
	for i, calls := range rounds {
		got, err := set.IngestEvents(ctx, calls)
		if err != nil {
			t.Fatal(err)
		}
		for k, c := range calls {
			ev := c.Event
			res, err := one.Ingest(ctx, store.Ingestion{CustomerID: c.CustomerID, AnonymousID: c.AnonymousID, Event: &ev, ReadRunning: true})
			want := store.EventOutcome{Err: err, Inserted: res.Inserted, Running: res.Running}
			switch {
			case err == nil && !res.Inserted:
				want.Dispatched, _ = one.EventDispatched(ctx, ev.ID)
			case err == nil && c.Quiet && len(res.Running) == 0:
				// What dispatching it would do: nothing, then the marker.
				if err := one.MarkDispatched(ctx, ev.ID); err != nil {
					t.Fatal(err)
				}
				want.Dispatched = true
			}
			if outcomeText(got[k]) != outcomeText(want) {
				t.Errorf("round %d call %d %+v: %s, one by one %s", i, k, c, outcomeText(got[k]), outcomeText(want))
			}
		}
		// Between rounds, the same anonymous calls on both, and some
		// events marked dispatched.
		for _, st := range []*store.Store{set, one} {
			for _, in := range anonymous[:i+1] {
				if _, err := st.Ingest(ctx, in); err != nil && !errors.Is(err, store.ErrMessageIDReused) {
					t.Fatal(err)
				}
			}
			if err := st.MarkEventsDispatched(ctx, fmt.Sprintf("m%d", i*5)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, q := range []string{
		`SELECT customer_id || '/' || id || '/' || name || '/' || time || '/' || props::text FROM events ORDER BY 1`,
		`SELECT customer_id || '/' || id || '/' || time || '/' || (dispatched_at IS NOT NULL) FROM event_ids ORDER BY 1`,
		`SELECT id FROM customers ORDER BY 1`,
		`SELECT anonymous_id || '/' || coalesce(customer_id, '') FROM anonymous_ids ORDER BY 1`,
		`SELECT anonymous_id || '/' || id FROM anonymous_events ORDER BY 1`,
	} {
		if a, b := column(t, set, q), column(t, one, q); !slices.Equal(a, b) {
			t.Errorf("%s\nIngestEvents: %v\nIngest:       %v", q, a, b)
		}
	}
	if n := count(t, set, `SELECT count(*) FROM events`); n < 50 {
		t.Errorf("only %d events stored: the calls collide too much to test much", n)
	}
}

// Two customers sending the same messageId at once: one stores the event,
// the other is refused as a reused messageId, whichever path (one
// statement for a run, Ingest for one call) and whatever the timing. A
// call that lost the race must not take the winner's event for a
// duplicate of its own, which the API would dispatch to its journeys and
// mark as dispatched.
func TestSameMessageIDRacedByTwoCustomers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	warmPool(t, s, 4)
	for _, id := range []string{"u1", "u2"} {
		mustCustomer(t, s, rules.Customer{ID: id})
	}
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for i := range 100 {
		id := fmt.Sprintf("race-%d", i)
		results := make([]string, 2)
		start := make(chan struct{})
		done := make(chan struct{})
		for k, who := range []string{"u1", "u2"} {
			go func() {
				defer func() { done <- struct{}{} }()
				<-start
				ev := rules.Event{ID: id, Name: "page", Time: at}
				if i%2 == 0 {
					out, err := s.IngestEvents(ctx, []store.EventCall{{CustomerID: who, Event: ev}})
					if err != nil {
						results[k] = "error " + err.Error()
						return
					}
					results[k] = outcomeText(out[0])
					return
				}
				res, err := s.Ingest(ctx, store.Ingestion{CustomerID: who, Event: &ev, ReadRunning: true})
				results[k] = outcomeText(store.EventOutcome{Err: err, Inserted: res.Inserted, Running: res.Running})
			}()
		}
		close(start)
		<-done
		<-done
		slices.Sort(results)
		if want := []string{"inserted=true dispatched=false running=[]", "reused"}; !slices.Equal(results, want) {
			t.Fatalf("%s raced by u1 and u2: %v, want %v", id, results, want)
		}
	}
}
