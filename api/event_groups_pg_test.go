package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/store"
)

// heldPGStore is PGStore whose first IngestEvents waits for held to
// close, and which records how many calls each IngestEvents carried.
type heldPGStore struct {
	PGStore
	held chan struct{}

	mu    sync.Mutex
	sizes []int
}

func (s *heldPGStore) IngestEvents(ctx context.Context, calls []store.EventCall) ([]store.EventOutcome, error) {
	s.mu.Lock()
	s.sizes = append(s.sizes, len(calls))
	first := len(s.sizes) == 1
	s.mu.Unlock()
	if first {
		<-s.held
	}
	return s.PGStore.IngestEvents(ctx, calls)
}

// TestPGConcurrentCallsShareAStatement sends page and product views
// while the only statement allowed is busy: they are written together
// in the next one, each answered as if alone — a messageId another
// user's call took first is 409 and leaves no row, a repeat of one's own
// is stored once — and every event is stored and dispatched to its
// customer.
func TestPGConcurrentCallsShareAStatement(t *testing.T) {
	h, st, held, groups, first := heldHarness(t)

	type call struct{ path, body string }
	var calls []call
	for i := 1; i <= 12; i++ {
		calls = append(calls, call{"/v1/track", fmt.Sprintf(`{"userId":"c%d","messageId":"m-%d","event":"Product Viewed","properties":{"sku":"T-%d"}}`, i%4+1, i, i)})
	}
	calls = append(calls,
		call{"/v1/page", `{"userId":"c9","messageId":"m-3","name":"Pricing"}`},                      // m-3 is c4's
		call{"/v1/track", `{"userId":"c2","messageId":"m-5","event":"Product Viewed"}`},             // c2's own m-5 again
		call{"/v1/page", `{"userId":"c1","anonymousId":"anon-1","messageId":"m-13","name":"Cart"}`}, // an anonymous id to tie: Ingest's path
	)
	codes := make([]int, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() { codes[i] = h.do("POST", c.path, c.body).Code })
	}
	queued(t, groups, len(calls))
	close(held.held)
	wg.Wait()
	if code := <-first; code != http.StatusOK {
		t.Errorf("first call: %d", code)
	}

	held.mu.Lock()
	sizes := slices.Clone(held.sizes)
	held.mu.Unlock()
	if want := []int{1, len(calls)}; !slices.Equal(sizes, want) {
		t.Errorf("statements of %v calls, want %v: the calls that waited share one", sizes, want)
	}
	// m-3 went to whichever of c4 and c9 was queued first; the other is
	// refused.
	c4, c9 := codes[2], codes[12]
	if !(c4 == 200 && c9 == http.StatusConflict || c4 == http.StatusConflict && c9 == 200) {
		t.Errorf("m-3: c4 answered %d, c9 %d; want one 200 and one 409", c4, c9)
	}
	for i, code := range codes {
		if i != 2 && i != 12 && code != http.StatusOK {
			t.Errorf("call %d (%s): %d", i, calls[i].body, code)
		}
	}

	ctx := context.Background()
	rows, err := st.Pool().Query(ctx, `SELECT e.id, e.customer_id, i.dispatched_at IS NOT NULL FROM events e JOIN event_ids i USING (id) ORDER BY e.id`)
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]string{}
	for rows.Next() {
		var id, owner string
		var dispatched bool
		if err := rows.Scan(&id, &owner, &dispatched); err != nil {
			t.Fatal(err)
		}
		owners[id] = owner
		if !dispatched {
			t.Errorf("event %s of %s is not marked dispatched", id, owner)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(owners) != 14 {
		t.Errorf("%d events stored, want m-0 … m-13 once each: %v", len(owners), owners)
	}
	for i := 1; i <= 12; i++ {
		want := fmt.Sprintf("c%d", i%4+1)
		if i == 3 && c9 == 200 {
			want = "c9"
		}
		if got := owners[fmt.Sprintf("m-%d", i)]; got != want {
			t.Errorf("m-%d belongs to %q, want %q", i, got, want)
		}
	}
	if owners["m-13"] != "c1" || owners["m-0"] != "c0" {
		t.Errorf("m-13 belongs to %q and m-0 to %q, want c1 and c0", owners["m-13"], owners["m-0"])
	}
	var tied string
	if err := st.Pool().QueryRow(ctx, `SELECT customer_id FROM anonymous_ids WHERE anonymous_id = 'anon-1'`).Scan(&tied); err != nil || tied != "c1" {
		t.Errorf("anon-1 tied to %q (%v), want c1", tied, err)
	}

	dispatched := map[string]string{}
	for _, d := range h.disp.dispatched() {
		dispatched[d.Event.ID] = d.Customer.ID
	}
	for id, owner := range owners {
		if dispatched[id] != owner {
			t.Errorf("event %s dispatched to %q, want its owner %q", id, dispatched[id], owner)
		}
	}
}

// heldHarness is pgHarness with one statement at a time, whose first
// statement is held: it sends a page view of c0 (m-0) and returns once
// that call's statement began; first answers its status.
func heldHarness(t *testing.T, edit ...func(*Options)) (*harness, *store.Store, *heldPGStore, *eventGroups, <-chan int) {
	t.Helper()
	held := &heldPGStore{held: make(chan struct{})}
	h, st := pgHarness(t, append(edit, func(o *Options) {
		held.PGStore = o.Store.(PGStore)
		o.Store, o.EventStatements = held, 1
	})...)
	first := make(chan int, 1)
	go func() { first <- h.do("POST", "/v1/page", `{"userId":"c0","messageId":"m-0","name":"Home"}`).Code }()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		held.mu.Lock()
		n := len(held.sizes)
		held.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first call's statement did not begin")
		}
	}
	return h, st, held, h.srv.events.(*eventGroups), first
}

// namingDispatcher is fakeDispatcher with only the named events in a
// trigger (TriggerNamer).
type namingDispatcher struct {
	*fakeDispatcher
	triggers []string
}

func (d namingDispatcher) Triggers(event string) bool { return slices.Contains(d.triggers, event) }

// TestPGSharedStatementStoresQuietEventsAsDispatched: page views of
// customers in no journey, from several requests in one statement, are
// stored as dispatched and go to no journey, while a signup (a trigger)
// in the same statement is dispatched.
func TestPGSharedStatementStoresQuietEventsAsDispatched(t *testing.T) {
	h, st, held, groups, first := heldHarness(t, func(o *Options) {
		o.Dispatcher = namingDispatcher{o.Dispatcher.(*fakeDispatcher), []string{"signup"}}
	})
	bodies := []string{`{"userId":"c7","messageId":"s-7","event":"Signup"}`}
	for i := 1; i <= 6; i++ {
		bodies = append(bodies, fmt.Sprintf(`{"userId":"c%d","messageId":"p-%d","event":"Product Viewed"}`, i, i))
	}
	codes := make([]int, len(bodies))
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Go(func() { codes[i] = h.do("POST", "/v1/track", b).Code })
	}
	queued(t, groups, len(bodies))
	close(held.held)
	wg.Wait()
	if code := <-first; code != http.StatusOK {
		t.Errorf("first call: %d", code)
	}
	for i, code := range codes {
		if code != http.StatusOK {
			t.Errorf("%s: %d", bodies[i], code)
		}
	}
	held.mu.Lock()
	sizes := slices.Clone(held.sizes)
	held.mu.Unlock()
	if want := []int{1, len(bodies)}; !slices.Equal(sizes, want) {
		t.Errorf("statements of %v calls, want %v", sizes, want)
	}
	var stored, settled int
	if err := st.Pool().QueryRow(context.Background(),
		`SELECT count(*), count(*) FILTER (WHERE dispatched_at IS NOT NULL) FROM event_ids`).Scan(&stored, &settled); err != nil {
		t.Fatal(err)
	}
	if stored != len(bodies)+1 || settled != stored {
		t.Errorf("%d events stored, %d marked dispatched; want %d, all", stored, settled, len(bodies)+1)
	}
	var sent []string
	for _, d := range h.disp.dispatched() {
		sent = append(sent, d.Customer.ID+":"+d.Event.ID)
	}
	if !slices.Equal(sent, []string{"c7:s-7"}) {
		t.Errorf("dispatched %v; want only c7's signup: the page and product views had nowhere to go", sent)
	}
}
