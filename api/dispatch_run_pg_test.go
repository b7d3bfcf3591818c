package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/rapport-crm/rapport/rules"
)

// overlapDispatcher records each customer's dispatched events in order
// and how many dispatches ran at once. Each dispatch waits, up to a
// second, for want dispatches to be in flight together, so that
// dispatches sent one after the other show as one at a time. fail
// decides an event's failure.
type overlapDispatcher struct {
	want int
	fail func(ev rules.Event) error

	mu       sync.Mutex
	inFlight int
	most     int
	seen     map[string][]string // customer → event IDs, in dispatch order
}

func (d *overlapDispatcher) Dispatch(_ context.Context, c rules.Customer, ev rules.Event) error {
	d.mu.Lock()
	d.inFlight++
	d.most = max(d.most, d.inFlight)
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.inFlight--
		d.mu.Unlock()
	}()
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		d.mu.Lock()
		enough := d.most >= d.want
		d.mu.Unlock()
		if enough {
			break
		}
	}
	if d.fail != nil {
		if err := d.fail(ev); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = map[string][]string{}
	}
	d.seen[c.ID] = append(d.seen[c.ID], ev.ID)
	return nil
}

// interleavedBatch is a /v1/batch of two product views of each of four
// customers, c1…c4, interleaved: a run of event-only calls.
func interleavedBatch() string {
	var items []string
	for round := 1; round <= 2; round++ {
		for c := 1; c <= 4; c++ {
			items = append(items, fmt.Sprintf(`{"type":"track","userId":"c%d","messageId":"c%d-%d","event":"Product Viewed"}`, c, c, round))
		}
	}
	return `{"batch":[` + strings.Join(items, ",") + `]}`
}

// TestPGBatchDispatchesCustomersSideBySide: the events of a run go to
// several customers at once, each customer's in the batch's order.
func TestPGBatchDispatchesCustomersSideBySide(t *testing.T) {
	d := &overlapDispatcher{want: 4}
	h, _ := pgHarness(t, func(o *Options) { o.Dispatcher = d })
	if rec := h.do("POST", "/v1/batch", interleavedBatch()); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if d.most < 4 {
		t.Errorf("at most %d dispatches at once, want the four customers' side by side", d.most)
	}
	for c := 1; c <= 4; c++ {
		who := fmt.Sprintf("c%d", c)
		if want := []string{who + "-1", who + "-2"}; !slices.Equal(d.seen[who], want) {
			t.Errorf("%s's events dispatched %v, want %v in the batch's order", who, d.seen[who], want)
		}
	}
}

// TestPGBatchDispatchFailureStopsOnlyThatCustomer: when one customer's
// dispatch fails, its later event is stored but not dispatched, the other
// customers' are dispatched, and the answer is 503 so that the client
// sends the batch again.
func TestPGBatchDispatchFailureStopsOnlyThatCustomer(t *testing.T) {
	d := &overlapDispatcher{want: 4, fail: func(ev rules.Event) error {
		if ev.ID == "c2-1" {
			return serviceerror.NewUnavailable("temporal down")
		}
		return nil
	}}
	h, st := pgHarness(t, func(o *Options) { o.Dispatcher = d })
	if rec := h.do("POST", "/v1/batch", interleavedBatch()); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", rec.Code, rec.Body)
	}
	for c := 1; c <= 4; c++ {
		who := fmt.Sprintf("c%d", c)
		want := []string{who + "-1", who + "-2"}
		if c == 2 {
			want = nil
		}
		if !slices.Equal(d.seen[who], want) {
			t.Errorf("%s's events dispatched %v, want %v", who, d.seen[who], want)
		}
	}
	var stored, marked int
	if err := st.Pool().QueryRow(context.Background(),
		`SELECT count(*), count(*) FILTER (WHERE dispatched_at IS NOT NULL) FROM event_ids`).Scan(&stored, &marked); err != nil {
		t.Fatal(err)
	}
	if stored != 8 || marked != 6 {
		t.Errorf("%d events stored, %d marked dispatched; want 8 and 6 (c2's two left for the retry)", stored, marked)
	}
}
