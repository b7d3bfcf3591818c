package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/store"
)

// gatedIngester records each statement's event IDs. While gate is open
// (non-nil) a statement waits for it to close; fail decides a
// statement's error from its IDs.
type gatedIngester struct {
	mu         sync.Mutex
	statements [][]string
	inFlight   int
	most       int // statements in flight at once, at most
	gate       chan struct{}
	fail       func(ids []string) error
	// hang, when it says so for a statement's IDs, makes the statement
	// wait until its context ends.
	hang func(ids []string) bool
}

func (g *gatedIngester) IngestEvents(ctx context.Context, calls []store.EventCall) ([]store.EventOutcome, error) {
	ids := make([]string, len(calls))
	for i, c := range calls {
		ids[i] = c.Event.ID
	}
	g.mu.Lock()
	g.statements = append(g.statements, ids)
	g.inFlight++
	g.most = max(g.most, g.inFlight)
	gate, fail, hang := g.gate, g.fail, g.hang
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inFlight--
		g.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if hang != nil && hang(ids) {
		<-ctx.Done()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if fail != nil {
		if err := fail(ids); err != nil {
			return nil, err
		}
	}
	out := make([]store.EventOutcome, len(calls))
	for i, c := range calls {
		// The outcome names its call, so that a test sees each run get
		// its own outcomes back.
		out[i] = store.EventOutcome{Inserted: true, Running: []store.RunningVersion{{Playbook: c.Event.ID}}}
	}
	return out, nil
}

func (g *gatedIngester) seen() ([][]string, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.statements), g.most
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// runOf is a run of n calls whose event IDs start with prefix.
func runOf(prefix string, n int) []store.EventCall {
	calls := make([]store.EventCall, n)
	for i := range calls {
		calls[i].CustomerID = "c-" + prefix
		calls[i].Event.ID = fmt.Sprintf("%s-%d", prefix, i)
	}
	return calls
}

// queued waits until n runs wait in g's queue.
func queued(t *testing.T, g *eventGroups, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		got := len(g.queue)
		g.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d runs queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// statements waits until ing has begun n statements.
func statements(t *testing.T, ing *gatedIngester, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := ing.seen()
		if len(st) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d statements begun, want %d: %v", len(st), n, st)
		}
		time.Sleep(time.Millisecond)
	}
}

// holdFirst sends a run "first-0" and waits until its statement began;
// with ing's gate shut it holds a statement until the gate opens.
func holdFirst(t *testing.T, g *eventGroups, ing *gatedIngester) (<-chan result, []store.EventCall) {
	t.Helper()
	first := runOf("first", 1)
	r := ingestAsync(context.Background(), g, first)
	statements(t, ing, 1)
	return r, first
}

// enqueue sends runs under ctx one after the other, each once the one
// before it waits in g's queue, so that they queue in this order.
func enqueue(t *testing.T, ctx context.Context, g *eventGroups, runs ...[]store.EventCall) []<-chan result {
	t.Helper()
	g.mu.Lock()
	base := len(g.queue)
	g.mu.Unlock()
	var out []<-chan result
	for i, calls := range runs {
		out = append(out, ingestAsync(ctx, g, calls))
		queued(t, g, base+i+1)
	}
	return out
}

// result is what one IngestEvents of a group answered.
type result struct {
	out []store.EventOutcome
	err error
}

// ingestAsync starts IngestEvents for calls and answers on the channel.
func ingestAsync(ctx context.Context, g *eventGroups, calls []store.EventCall) <-chan result {
	ch := make(chan result, 1)
	go func() {
		out, err := g.IngestEvents(ctx, calls)
		ch <- result{out, err}
	}()
	return ch
}

// wantOwn checks that a run got one outcome per call, each its own.
func wantOwn(t *testing.T, name string, r result, calls []store.EventCall) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: %v", name, r.err)
	}
	if len(r.out) != len(calls) {
		t.Fatalf("%s: %d outcomes for %d calls", name, len(r.out), len(calls))
	}
	for i, o := range r.out {
		if len(o.Running) != 1 || o.Running[0].Playbook != calls[i].Event.ID {
			t.Errorf("%s: outcome %d is %+v, want the outcome of %s", name, i, o, calls[i].Event.ID)
		}
	}
}

func TestEventGroupsShareTheNextStatement(t *testing.T) {
	ing := &gatedIngester{gate: make(chan struct{})}
	g := newEventGroups(ing, 2, discard)
	ctx := context.Background()

	// Two runs, one after the other, find a statement free each and
	// start it at once.
	a, b := runOf("a", 1), runOf("b", 2)
	ra := ingestAsync(ctx, g, a)
	statements(t, ing, 1)
	rb := ingestAsync(ctx, g, b)
	statements(t, ing, 2)
	// Three more arrive while both are busy: they wait, and the first
	// statement to finish takes them together.
	c, d, e := runOf("c", 3), runOf("d", 1), runOf("e", 2)
	rs := enqueue(t, ctx, g, c, d, e)
	close(ing.gate)

	wantOwn(t, "a", <-ra, a)
	wantOwn(t, "b", <-rb, b)
	wantOwn(t, "c", <-rs[0], c)
	wantOwn(t, "d", <-rs[1], d)
	wantOwn(t, "e", <-rs[2], e)
	statements, most := ing.seen()
	if len(statements) != 3 {
		t.Fatalf("statements %v, want a, b, then c, d and e in one", statements)
	}
	want := []string{"c-0", "c-1", "c-2", "d-0", "e-0", "e-1"}
	if !slices.Equal(statements[2], want) {
		t.Errorf("third statement %v, want %v (the queued runs in the order they came)", statements[2], want)
	}
	if most > 2 {
		t.Errorf("%d statements ran at once, limit 2", most)
	}
}

func TestEventGroupsOneAtATimeWaitsForNothing(t *testing.T) {
	ing := &gatedIngester{}
	g := newEventGroups(ing, 4, discard)
	for i := range 5 {
		calls := runOf(fmt.Sprint(i), 2)
		out, err := g.IngestEvents(context.Background(), calls)
		wantOwn(t, fmt.Sprint(i), result{out, err}, calls)
	}
	statements, _ := ing.seen()
	if len(statements) != 5 {
		t.Errorf("%d statements for 5 runs sent one after the other: %v", len(statements), statements)
	}
}

func TestEventGroupsBoundTheCallsOfAStatement(t *testing.T) {
	ing := &gatedIngester{gate: make(chan struct{})}
	g := newEventGroups(ing, 1, discard)
	r0, first := holdFirst(t, g, ing)
	// 300 + 200 fit one statement (maxGroupCalls 500); the next 1 does
	// not, and a run larger than the bound goes alone.
	runs := [][]store.EventCall{runOf("p", 300), runOf("q", 200), runOf("r", 1), runOf("s", maxGroupCalls+1)}
	rs := enqueue(t, context.Background(), g, runs...)
	close(ing.gate)
	wantOwn(t, "first", <-r0, first)
	for i, r := range rs {
		wantOwn(t, fmt.Sprint("run ", i), <-r, runs[i])
	}
	statements, _ := ing.seen()
	var sizes []int
	for _, s := range statements {
		sizes = append(sizes, len(s))
	}
	if want := []int{1, 500, 1, maxGroupCalls + 1}; !slices.Equal(sizes, want) {
		t.Errorf("statement sizes %v, want %v", sizes, want)
	}
}

func TestEventGroupsFailureOfOneRunIsItsOwn(t *testing.T) {
	ing := &gatedIngester{gate: make(chan struct{})}
	boom := errors.New("boom")
	// A statement holding run "bad" fails; alone, every other run is
	// written.
	ing.fail = func(ids []string) error {
		if slices.Contains(ids, "bad-0") {
			return boom
		}
		return nil
	}
	g := newEventGroups(ing, 1, discard)
	r0, first := holdFirst(t, g, ing)
	good1, bad, good2 := runOf("good1", 2), runOf("bad", 1), runOf("good2", 1)
	rs := enqueue(t, context.Background(), g, good1, bad, good2)
	close(ing.gate)

	wantOwn(t, "first", <-r0, first)
	wantOwn(t, "good1", <-rs[0], good1)
	wantOwn(t, "good2", <-rs[2], good2)
	if r := <-rs[1]; !errors.Is(r.err, boom) || r.out != nil {
		t.Errorf("bad run: %v, %v; want boom and no outcomes", r.out, r.err)
	}
	statements, _ := ing.seen()
	want := [][]string{{"first-0"}, {"good1-0", "good1-1", "bad-0", "good2-0"}, {"good1-0", "good1-1"}, {"bad-0"}, {"good2-0"}}
	if !slices.EqualFunc(statements, want, slices.Equal[[]string]) {
		t.Errorf("statements %v, want %v: the shared one, then each run alone", statements, want)
	}
}

func TestEventGroupsRunLeavesTheQueueWhenItsContextEnds(t *testing.T) {
	ing := &gatedIngester{gate: make(chan struct{})}
	g := newEventGroups(ing, 1, discard)
	r0, first := holdFirst(t, g, ing)
	ctx, cancel := context.WithCancel(context.Background())
	gone := enqueue(t, ctx, g, runOf("gone", 1))[0]
	cancel()
	if r := <-gone; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("run whose context ended: %v, want context.Canceled", r.err)
	}
	queued(t, g, 0)
	close(ing.gate)
	wantOwn(t, "first", <-r0, first)
	// The next run starts a statement of its own: nothing was left over.
	next := runOf("next", 1)
	out, err := g.IngestEvents(context.Background(), next)
	wantOwn(t, "next", result{out, err}, next)
	statements, _ := ing.seen()
	if want := [][]string{{"first-0"}, {"next-0"}}; !slices.EqualFunc(statements, want, slices.Equal[[]string]) {
		t.Errorf("statements %v, want %v: the run that left was never written", statements, want)
	}
}

func TestEventGroupsPanicFailsItsRunsNotTheServer(t *testing.T) {
	ing := &gatedIngester{fail: func(ids []string) error {
		if slices.Contains(ids, "bad-0") {
			panic("store bug")
		}
		return nil
	}}
	g := newEventGroups(ing, 1, discard)
	if out, err := g.IngestEvents(context.Background(), runOf("bad", 1)); err == nil || out != nil {
		t.Fatalf("run that panicked: %v, %v; want an error", out, err)
	}
	// The statement slot was given back: the next run is written.
	next := runOf("next", 2)
	out, err := g.IngestEvents(context.Background(), next)
	wantOwn(t, "next", result{out, err}, next)
}

func TestEventGroupsTakenRunAnswersWhenItsContextEnds(t *testing.T) {
	ing := &gatedIngester{gate: make(chan struct{})}
	g := newEventGroups(ing, 1, discard)
	ctx, cancel := context.WithCancel(context.Background())
	held := ingestAsync(ctx, g, runOf("held", 1))
	statements(t, ing, 1)
	cancel()
	select {
	case r := <-held:
		if !errors.Is(r.err, context.Canceled) || r.out != nil {
			t.Errorf("run whose context ended in its statement: %v, %v; want context.Canceled", r.out, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a run whose context ended waited for its statement")
	}
	close(ing.gate)
	next := runOf("next", 1)
	out, err := g.IngestEvents(context.Background(), next)
	wantOwn(t, "next", result{out, err}, next)
}

func TestEventGroupsPanicAfterSomeRunsWereWrittenAlone(t *testing.T) {
	ing := &gatedIngester{gate: make(chan struct{})}
	boom := errors.New("boom")
	ing.fail = func(ids []string) error {
		switch {
		case len(ids) > 1 && slices.Contains(ids, "bad-0"):
			return boom // the shared statement
		case slices.Equal(ids, []string{"bad-0"}):
			panic("store bug") // bad alone, after good alone
		}
		return nil
	}
	g := newEventGroups(ing, 1, discard)
	r0, first := holdFirst(t, g, ing)
	good, bad := runOf("good", 2), runOf("bad", 1)
	rs := enqueue(t, context.Background(), g, good, bad)
	close(ing.gate)
	wantOwn(t, "first", <-r0, first)
	wantOwn(t, "good", <-rs[0], good)
	if r := <-rs[1]; r.err == nil || r.out != nil {
		t.Errorf("bad run: %v, %v; want the panic as its error", r.out, r.err)
	}
}

func TestEventGroupsSharedStatementEndsByTheEarliestDeadline(t *testing.T) {
	ing := &gatedIngester{gate: make(chan struct{}), hang: func(ids []string) bool { return len(ids) > 1 }}
	g := newEventGroups(ing, 1, discard)
	r0, first := holdFirst(t, g, ing)
	// The shared statement hangs (a lock wait, say) until the earliest
	// deadline of its runs; each run is then written alone, within its
	// own deadline, and only the run whose time is up fails.
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	long, cancelLong := context.WithTimeout(context.Background(), time.Minute)
	defer cancelLong()
	a, b, c := runOf("a", 1), runOf("short", 1), runOf("c", 1)
	ra := enqueue(t, long, g, a)[0]
	rb := enqueue(t, short, g, b)[0]
	rc := enqueue(t, long, g, c)[0]
	close(ing.gate)
	wantOwn(t, "first", <-r0, first)
	wantOwn(t, "a", <-ra, a)
	wantOwn(t, "c", <-rc, c)
	if r := <-rb; !errors.Is(r.err, context.DeadlineExceeded) {
		t.Errorf("run whose deadline passed: %v, %v; want DeadlineExceeded", r.out, r.err)
	}
	got, _ := ing.seen()
	if len(got) < 2 || !slices.Equal(got[1], []string{"a-0", "short-0", "c-0"}) {
		t.Fatalf("statements %v: want the shared one second", got)
	}
	alone := got[2:]
	if !slices.ContainsFunc(alone, func(ids []string) bool { return slices.Equal(ids, []string{"a-0"}) }) ||
		!slices.ContainsFunc(alone, func(ids []string) bool { return slices.Equal(ids, []string{"c-0"}) }) {
		t.Errorf("statements after the shared one %v: want a and c written alone", alone)
	}
}

func TestSharedDeadline(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	runs := func(in ...time.Duration) []*eventRun {
		var out []*eventRun
		for _, d := range in {
			out = append(out, &eventRun{deadline: now.Add(d)})
		}
		return out
	}
	for _, c := range []struct {
		name string
		in   []time.Duration
		want time.Duration
	}{
		{"the earliest", []time.Duration{15 * time.Second, 9 * time.Second, 12 * time.Second}, 9 * time.Second},
		{"no sooner than minShared", []time.Duration{15 * time.Second, 100 * time.Millisecond}, minShared},
		{"no later than the last", []time.Duration{time.Second, 1500 * time.Millisecond}, 1500 * time.Millisecond},
	} {
		if got := sharedDeadline(runs(c.in...), now).Sub(now); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestEventGroupsDoNotWriteARunWhoseDeadlinePassed(t *testing.T) {
	ing := &gatedIngester{}
	g := newEventGroups(ing, 1, discard)
	late := &eventRun{calls: runOf("late", 1), deadline: time.Now().Add(-time.Second), done: make(chan struct{})}
	a := &eventRun{calls: runOf("a", 1), deadline: time.Now().Add(time.Minute), done: make(chan struct{})}
	b := &eventRun{calls: runOf("b", 2), deadline: time.Now().Add(time.Minute), done: make(chan struct{})}
	g.write([]*eventRun{a, late, b})
	for _, r := range []*eventRun{a, late, b} {
		select {
		case <-r.done:
		default:
			t.Fatalf("run %s not answered", r.calls[0].Event.ID)
		}
	}
	wantOwn(t, "a", result{a.out, a.err}, a.calls)
	wantOwn(t, "b", result{b.out, b.err}, b.calls)
	if !errors.Is(late.err, context.DeadlineExceeded) || late.out != nil {
		t.Errorf("late run: %v, %v; want DeadlineExceeded", late.out, late.err)
	}
	if got, _ := ing.seen(); !slices.EqualFunc(got, [][]string{{"a-0", "b-0", "b-1"}}, slices.Equal[[]string]) {
		t.Errorf("statements %v, want a and b together, without the late run", got)
	}
}
