package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

// fakeMarks records each marker statement the batcher writes.
type fakeMarks struct {
	mu    sync.Mutex
	calls [][]string
	fail  int // the next fail writes fail
}

func (f *fakeMarks) write(_ context.Context, ids ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return errors.New("connection refused")
	}
	f.calls = append(f.calls, append([]string(nil), ids...))
	return nil
}

func (f *fakeMarks) statements() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.calls...)
}

func newTestBatcher(t *testing.T, f *fakeMarks, every time.Duration) (*markerBatcher, *bytes.Buffer) {
	var logs bytes.Buffer
	b := newMarkerBatcher(f.write, every, slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { b.Close(context.Background()) })
	return b, &logs
}

func TestMarkerBatcherWritesManyInOneStatement(t *testing.T) {
	f := &fakeMarks{}
	b, _ := newTestBatcher(t, f, time.Hour)
	for i := range 10 {
		b.Add(context.Background(), fmt.Sprint("ev", i))
	}
	b.Flush(context.Background())
	if s := f.statements(); len(s) != 1 || len(s[0]) != 10 || s[0][9] != "ev9" {
		t.Fatalf("statements %v, want one of the 10 IDs", s)
	}
	b.Flush(context.Background())
	if s := f.statements(); len(s) != 1 {
		t.Errorf("an empty flush wrote %v", s[1:])
	}
}

func TestMarkerBatcherWritesOnTickAndFullBatch(t *testing.T) {
	f := &fakeMarks{}
	b, _ := newTestBatcher(t, f, time.Hour)
	ids := make([]string, markerBatch)
	for i := range ids {
		ids[i] = fmt.Sprint("ev", i)
	}
	b.Add(context.Background(), ids...)
	waitFor(t, func() bool { return len(f.statements()) == 1 })

	f2 := &fakeMarks{}
	b2, _ := newTestBatcher(t, f2, 5*time.Millisecond)
	b2.Add(context.Background(), "ev")
	waitFor(t, func() bool { return len(f2.statements()) == 1 })
}

func TestMarkerBatcherFlushesOnClose(t *testing.T) {
	f := &fakeMarks{}
	b, _ := newTestBatcher(t, f, time.Hour)
	b.Add(context.Background(), "a", "b")
	b.Close(context.Background())
	if s := f.statements(); len(s) != 1 || strings.Join(s[0], ",") != "a,b" {
		t.Fatalf("statements after Close %v, want [a b]", s)
	}
	b.Add(context.Background(), "late") // a call finishing after Close
	if s := f.statements(); len(s) != 2 || s[1][0] != "late" {
		t.Fatalf("a marker added after Close was not written at once: %v", s)
	}
}

func TestMarkerBatcherRetriesAFailedWrite(t *testing.T) {
	f := &fakeMarks{fail: 1}
	b, logs := newTestBatcher(t, f, time.Hour)
	b.Add(context.Background(), "a")
	b.Flush(context.Background())
	b.Add(context.Background(), "b")
	b.Flush(context.Background())
	if s := f.statements(); len(s) != 1 || strings.Join(s[0], ",") != "a,b" {
		t.Fatalf("statements %v, want the failed a retried with b", s)
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("the failure was not logged: %s", logs)
	}
}

func TestMarkerBatcherLeavesToTheSweeperWhatCannotWait(t *testing.T) {
	f := &fakeMarks{fail: 1}
	b, logs := newTestBatcher(t, f, time.Hour)
	b.Add(context.Background(), "a")
	b.Close(context.Background()) // the last write fails: nothing is kept
	if s := f.statements(); len(s) != 0 {
		t.Fatalf("statements %v", s)
	}
	if !strings.Contains(logs.String(), "redispatch sweeper") {
		t.Errorf("the dropped markers were not logged: %s", logs)
	}
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

// With the batcher on, a SendGrid call answers before its markers are
// written; they are written within the interval, and a redispatch pass
// flushes first, so it does not redispatch events dispatched moments ago.
func TestFeedbackMarkersBatched(t *testing.T) {
	f := newFeedbackHarness(t, func(o *FeedbackOptions) { o.MarkEvery = time.Hour })
	t.Cleanup(func() { f.srv.Close(context.Background()) })
	f.seedMessage("e1/mail/1", "c1", "example@test.com", "14c5d75ce93.dfd.64b469@ismtpd-555")
	f.postSendGrid(readTestdata(t, "sendgrid_events.json"))
	marked := `SELECT count(*) FROM events e JOIN event_ids i ON i.id = e.id WHERE e.name LIKE 'message_%' AND i.dispatched_at IS NOT NULL`
	if n := f.count(marked); n != 0 {
		t.Fatalf("%d markers written on the request path, want 0", n)
	}
	ctx := context.Background()
	if _, err := f.st.Pool().Exec(ctx, `UPDATE event_ids SET received_at = $1`, testNow.Add(-5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := f.srv.Redispatch(ctx, PGStore{f.st}, time.Minute, 24*time.Hour); err != nil || n != 0 {
		t.Fatalf("redispatched %d (err %v), want 0: the pending markers were not flushed first", n, err)
	}
	if n := f.count(marked); n != 4 {
		t.Errorf("%d markers after the pass, want 4", n)
	}
}

func TestFeedbackMarkersEventuallyWritten(t *testing.T) {
	f := newFeedbackHarness(t, func(o *FeedbackOptions) { o.MarkEvery = 5 * time.Millisecond })
	t.Cleanup(func() { f.srv.Close(context.Background()) })
	f.seedMessage("e1/mail/1", "c1", "example@test.com", "14c5d75ce93.dfd.64b469@ismtpd-555")
	f.postSendGrid(readTestdata(t, "sendgrid_events.json"))
	waitFor(t, func() bool {
		return f.count(`SELECT count(*) FROM events e JOIN event_ids i ON i.id = e.id WHERE e.name LIKE 'message_%' AND i.dispatched_at IS NOT NULL`) == 4
	})
}

func (f *feedbackHarness) postSendGrid(body string) {
	f.t.Helper()
	rec := f.post(SendGridPath, body, "application/json", "X-Twilio-Email-Event-Webhook-Signature", f.sendGridSign(body, "1513299569"),
		"X-Twilio-Email-Event-Webhook-Timestamp", "1513299569")
	if rec.Code != http.StatusOK {
		f.t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}

// With Options.MarkEvery the event API answers before an event's
// dispatch marker is written; the batcher writes it within the interval,
// a redispatch pass flushes first, and a retry before the write only
// dispatches the event again.
func TestEventMarkersBatched(t *testing.T) {
	h, st := pgHarness(t, func(o *Options) { o.MarkEvery = time.Hour })
	t.Cleanup(func() { h.srv.Close(context.Background()) })
	ctx := context.Background()
	marked := func() int {
		var n int
		if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM event_ids WHERE dispatched_at IS NOT NULL`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	call := `{"userId":"c1","name":"Tea","messageId":"p1","timestamp":"2026-03-01T08:00:00Z"}`
	if rec := h.do("POST", "/v1/page", call); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if n := marked(); n != 0 {
		t.Fatalf("%d markers written on the request path, want 0", n)
	}
	if rec := h.do("POST", "/v1/page", call); rec.Code != 200 || len(h.disp.calls) != 2 {
		t.Fatalf("retry before the marker: status %d, %d dispatches, want 200 and 2 (journeys drop the second by ID)", rec.Code, len(h.disp.calls))
	}
	if _, err := st.Pool().Exec(ctx, `UPDATE event_ids SET received_at = $1`, testNow.Add(-5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := h.srv.Redispatch(ctx, PGStore{st}, time.Minute, 24*time.Hour); err != nil || n != 0 {
		t.Fatalf("redispatched %d (err %v), want 0: the pending markers were not flushed first", n, err)
	}
	if n := marked(); n != 1 {
		t.Errorf("%d markers after the pass, want 1", n)
	}
	if rec := h.do("POST", "/v1/page", call); rec.Code != 200 || len(h.disp.calls) != 2 {
		t.Errorf("retry after the marker: status %d, %d dispatches, want 200 and still 2", rec.Code, len(h.disp.calls))
	}
}

func TestEventMarkersEventuallyWritten(t *testing.T) {
	h, st := pgHarness(t, func(o *Options) { o.MarkEvery = 5 * time.Millisecond })
	t.Cleanup(func() { h.srv.Close(context.Background()) })
	for i := range 3 {
		if rec := h.do("POST", "/v1/track", fmt.Sprintf(`{"userId":"c1","event":"Product Viewed","messageId":"v%d"}`, i)); rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	waitFor(t, func() bool {
		var n int
		_ = st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM event_ids WHERE dispatched_at IS NOT NULL`).Scan(&n)
		return n == 3
	})
}

// A Store that cannot mark events in batches refuses MarkEvery.
func TestEventMarkersNeedEventsMarker(t *testing.T) {
	_, err := NewServer(Options{APIKey: testKey, Store: newMemStore(), Dispatcher: &fakeDispatcher{}, MarkEvery: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "EventsMarker") {
		t.Fatalf("error %v, want one naming EventsMarker", err)
	}
}

// The event API hands the dispatcher the running enrollments Ingest read
// in the call's transaction, noted starts included: no second read, a
// customer in no journey is signalled nothing, a journey whose start is
// noted but not recorded is signalled, and an enrollment of an
// undeployed version is still signalled.
func TestPGDispatchUsesRunningReadByIngest(t *testing.T) {
	reg := engine.NewRegistry()
	quiet := compile(t, "quiet", "trigger: { manual: true }\nexit_when: customer.attrs.stop == true", "")
	reg.Add(quiet)
	j := &fakeJourneys{}
	en := &countingEnrollments{fakeEnrollments: enrollmentsOf(nil)}
	h, st := pgHarness(t, func(o *Options) { o.Dispatcher = NewEventDispatcher(reg, j, en, o.Logger) })
	if rec := h.do("POST", "/v1/page", `{"userId":"c1","messageId":"p1"}`); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if len(j.signals) != 0 {
		t.Fatalf("signals %v for a customer in no journey, want none", j.signals)
	}
	_, err := st.Pool().Exec(context.Background(), `INSERT INTO enrollments (id, workflow_id, playbook, version, customer_id, status, started_at)
		VALUES ('n1', 'rapport/retired/c1', 'retired', 'abc', 'c1', 'active', now())`)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.NoteStarts(context.Background(), store.JourneyStart{CustomerID: "c1", Playbook: "quiet", Version: quiet.Version, TriggerID: "manual-1"}); err != nil {
		t.Fatal(err)
	}
	if rec := h.do("POST", "/v1/page", `{"userId":"c1","messageId":"p2"}`); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	slices.Sort(j.signals)
	want := []string{"quiet/c1/p2", "retired/c1/p2"}
	if en.reads != 0 || !slices.Equal(j.signals, want) {
		t.Errorf("enrollment reads %d, signals %v; want 0 and %v", en.reads, j.signals, want)
	}
}

// A batch's events are written a run at a time, but an event still
// reaches the journey an earlier event of the same batch started: the
// signup starts welcome, and the profile_completed after it (for the
// same customer, in the same run) is signalled to it, while another
// customer's event is not. Events stored before and dispatched are not
// dispatched again.
func TestPGBatchEventReachesJourneyStartedEarlierInBatch(t *testing.T) {
	reg := engine.NewRegistry()
	reg.Add(compile(t, "welcome", "trigger: { event: signup }", "  - wait: { event: profile_completed, timeout: 3d }\n"))
	j := &fakeJourneys{}
	en := enrollmentsOf(nil)
	h, st := pgHarness(t, func(o *Options) { o.Dispatcher = NewEventDispatcher(reg, j, en, o.Logger) })
	body := `{"batch":[
		{"type":"track","userId":"c1","event":"signup","messageId":"b1"},
		{"type":"track","userId":"c2","event":"Profile Completed","messageId":"b2"},
		{"type":"track","userId":"c1","event":"Profile Completed","messageId":"b3"},
		{"type":"page","userId":"c1","name":"Home","messageId":"b4"}]}`
	for try := range 2 {
		if rec := h.do("POST", "/v1/batch", body); rec.Code != 200 {
			t.Fatalf("try %d: status %d: %s", try, rec.Code, rec.Body)
		}
		waitFor(t, func() bool {
			var n int
			_ = st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM event_ids WHERE dispatched_at IS NOT NULL`).Scan(&n)
			return n == 4
		})
	}
	if want := []string{"welcome/c1/b1"}; !slices.Equal(j.enrolls, want) {
		t.Errorf("enrolls %v, want %v (the second try dispatches nothing again)", j.enrolls, want)
	}
	if want := []string{"welcome/c1/b3"}; !slices.Equal(j.signals, want) {
		t.Errorf("signals %v, want %v", j.signals, want)
	}
}

// countingDispatcher counts the events the API hands the dispatcher.
type countingDispatcher struct {
	*EventDispatcher
	mu    sync.Mutex
	calls []string
}

func (c *countingDispatcher) DispatchTo(ctx context.Context, r Recipient, ev rules.Event) error {
	c.mu.Lock()
	c.calls = append(c.calls, ev.ID)
	c.mu.Unlock()
	return c.EventDispatcher.DispatchTo(ctx, r, ev)
}

// An event no deployed trigger names, of a customer in no journey, is
// stored as dispatched and never handed to the dispatcher; once the
// customer is being started in a journey, their events are dispatched
// again, and an event a trigger names always is.
func TestPGQuietEventIsStoredDispatched(t *testing.T) {
	reg := engine.NewRegistry()
	reg.Add(compile(t, "welcome", "trigger: { event: signup }", "  - wait: { event: profile_completed, timeout: 3d }\n"))
	reg.Add(compile(t, "quiet", "trigger: { manual: true }\nexit_when: customer.attrs.stop == true", ""))
	j := &fakeJourneys{}
	d := &countingDispatcher{}
	h, st := pgHarness(t, func(o *Options) {
		d.EventDispatcher = NewEventDispatcher(reg, j, PGStore{o.Store.(PGStore).Store}, o.Logger)
		o.Dispatcher = d
	})
	for _, call := range []string{
		`{"type":"page","userId":"c1","name":"Home","messageId":"p1"}`,     // nobody hears it
		`{"type":"track","userId":"c1","event":"signup","messageId":"s1"}`, // starts welcome (noted)
		`{"type":"page","userId":"c1","name":"Home","messageId":"p2"}`,     // c1 is being started in welcome
		`{"type":"page","userId":"c2","name":"Home","messageId":"p3"}`,     // nobody hears it
	} {
		if rec := h.do("POST", "/v1/batch", `{"batch":[`+call+`]}`); rec.Code != 200 {
			t.Fatalf("%s: status %d: %s", call, rec.Code, rec.Body)
		}
	}
	if want := []string{"s1", "p2"}; !slices.Equal(d.calls, want) {
		t.Errorf("dispatched %v, want %v", d.calls, want)
	}
	if want := []string{"welcome/c1/s1"}; !slices.Equal(j.enrolls, want) || len(j.signals) != 0 {
		t.Errorf("enrolls %v signals %v, want %v and none (welcome does not hear pages)", j.enrolls, j.signals, want)
	}
	var undispatched int
	if err := st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM event_ids WHERE dispatched_at IS NULL`).Scan(&undispatched); err != nil || undispatched != 0 {
		t.Errorf("%d events not marked dispatched (%v), want none", undispatched, err)
	}
}
