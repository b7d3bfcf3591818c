package scan

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

// fakeStore holds customers in id order and one deployed playbook, and
// counts how often each customer was read.
type fakeStore struct {
	src       []byte
	customers []rules.Customer
	history   map[string]store.EntryHistory

	mu      sync.Mutex
	reads   map[string]int
	notes   map[string]bool // customer/trigger of the noted starts
	dropped []string        // customers whose start notes were dropped
	// noteErr, when set, fails the noteCalls+1st NoteStarts call on.
	noteErr   error
	noteCalls int
}

// noteCount is how many starts have been noted.
func (f *fakeStore) noteCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.notes)
}

func (f *fakeStore) ActivePlaybook(_ context.Context, name string) (store.DeployedPlaybook, bool, error) {
	if f.src == nil {
		return store.DeployedPlaybook{}, false, nil
	}
	return store.DeployedPlaybook{Name: name, Source: f.src, Active: true}, true, nil
}

// EachCandidate cannot run SQL: every customer of the partition is a
// candidate (kept by inPart), and the scan's Go check decides, which it
// does only for a predicate that is not exact (segmentGoSrc).
func (f *fakeStore) EachCandidate(_ context.Context, q store.CandidateQuery, fn func(rules.Customer) error) error {
	if q.Where.Exact {
		return errors.New("fakeStore cannot run an exact predicate: the scan would take every customer for a match (use segmentGoSrc)")
	}
	if err := q.Partition.Check(); err != nil {
		return err
	}
	f.mu.Lock()
	if f.reads == nil {
		f.reads = map[string]int{}
	}
	var page []rules.Customer
	for i := sort.Search(len(f.customers), func(i int) bool { return f.customers[i].ID > q.AfterID }); i < len(f.customers) && len(page) < q.Limit; i++ {
		if c := f.customers[i]; inPart(c.ID, q.Partition) {
			page = append(page, c)
			f.reads[c.ID]++
		}
	}
	f.mu.Unlock()
	for _, c := range page {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeStore) TimeZones(context.Context, string) ([]string, error) { return nil, nil }

// NoteStarts records the notes; a start must be noted before it is
// asked for (fakeStore.started checks).
func (f *fakeStore) NoteStarts(_ context.Context, starts ...store.JourneyStart) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noteErr != nil {
		if f.noteCalls == 0 {
			return f.noteErr
		}
		f.noteCalls--
	}
	if f.notes == nil {
		f.notes = map[string]bool{}
	}
	for _, s := range starts {
		f.notes[s.CustomerID+"/"+s.TriggerID] = true
	}
	return nil
}

// DropStartNotes records the dropped notes.
func (f *fakeStore) DropStartNotes(_ context.Context, starts ...store.JourneyStart) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range starts {
		f.dropped = append(f.dropped, s.CustomerID)
	}
	return nil
}

// noted reports whether the start of customerID by trigger was noted.
func (f *fakeStore) noted(customerID, trigger string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.notes[customerID+"/"+trigger]
}

func (f *fakeStore) EntryHistories(_ context.Context, _ string, ids []string) (map[string]store.EntryHistory, error) {
	out := map[string]store.EntryHistory{}
	for _, id := range ids {
		if h, ok := f.history[id]; ok {
			out[id] = h
		}
	}
	return out, nil
}

// segmentGoSrc is segmentSrc with a part the SQL cannot decide, so the
// scan's Go check runs (fakeStore needs it).
const segmentGoSrc = `playbook: lapsed
stage: reactivate
trigger: { every: 24h, where: "customer.days_since_last_purchase > 90 && localHour(customer.timezone) >= 0" }
templates:
  hi:
    en: { subject: "We miss you", text: "Hi" }
steps:
  - send: { channel: email, template: hi }
`

// inPart stands in for the server's hashtext in the fake store: any hash
// that spreads ids over the int4 range does (store's
// TestCustomersAfterPartitions tests the SQL).
func inPart(id string, p store.Partition) bool {
	sum := md5.Sum([]byte(id))
	h := int32(binary.BigEndian.Uint32(sum[:4]))
	lo, hi := p.Bounds()
	return lo <= h && h <= hi
}

// seed makes n customers c0000…; every fifth one lapsed 120 days before now.
func seed(n int, now time.Time) []rules.Customer {
	cs := make([]rules.Customer, n)
	for i := range cs {
		last := now.AddDate(0, 0, -10)
		if i%5 == 0 {
			last = now.AddDate(0, 0, -120)
		}
		cs[i] = rules.Customer{ID: fmt.Sprintf("c%05d", i), LastPurchaseAt: last}
	}
	return cs
}

// recorder is a StartFunc that remembers who it started and how many
// starts ran at once.
type recorder struct {
	mu             sync.Mutex
	started        map[string]rules.Event
	inFlight, peak atomic.Int32
	alreadyRunning map[string]bool
	// notes, when set, is the store every start must have been noted in
	// before it is asked for; unnoted lists those that were not, and
	// lead is the most starts noted and not yet asked for, seen by a
	// start.
	notes   *fakeStore
	unnoted []string
	asked   int
	lead    int
}

func (r *recorder) start(_ context.Context, _ *engine.Plan, id string, ev rules.Event) (bool, error) {
	n := r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	for {
		p := r.peak.Load()
		if n <= p || r.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.notes != nil {
		if !r.notes.noted(id, ev.ID) {
			r.unnoted = append(r.unnoted, id)
		}
		r.asked++
		r.lead = max(r.lead, r.notes.noteCount()-r.asked)
	}
	if r.alreadyRunning[id] {
		return false, nil
	}
	r.started[id] = ev
	return true, nil
}

func TestScanPageStartsMatchesWithinBounds(t *testing.T) {
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	fs := &fakeStore{src: []byte(segmentGoSrc), customers: seed(500, now), history: map[string]store.EntryHistory{
		"c00000": {Any: true, Last: &now}, // enrolled by this scan already (retried page)
	}}
	rec := &recorder{started: map[string]rules.Event{}, alreadyRunning: map[string]bool{"c00005": true}, notes: fs}
	a := &Activities{Store: fs, Start: rec.start, Concurrency: 7}
	res, err := a.ScanPage(context.Background(), PageRequest{Playbook: "lapsed", Now: now, Limit: 600})
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{Pages: 1, Scanned: 500, Matched: 100, Skipped: 1, Started: 98, Running: 1}
	if res.Counts != want || !res.Done || res.NextID != "c00499" {
		t.Fatalf("page result %+v, want counts %+v, done, next c00499", res, want)
	}
	if p := rec.peak.Load(); p > 7 || p < 2 {
		t.Errorf("peak concurrent starts %d, want between 2 and the bound 7", p)
	}
	if ev, ok := rec.started["c00010"]; !ok || ev.Name != "segment" || !ev.Time.Equal(now) {
		t.Errorf("c00010 trigger event %+v (started %v), want segment at scan time", ev, ok)
	}
	// Every start was noted before it was asked for, and only the note of
	// the start that found its journey running was dropped.
	if len(rec.unnoted) != 0 {
		t.Errorf("starts asked for before they were noted: %v", rec.unnoted)
	}
	// Notes are written a chunk (here the bound, 7) at a time, just
	// before their starts: never more than a chunk and the starts in
	// flight ahead.
	if rec.lead > 2*7 {
		t.Errorf("a start saw %d starts noted and not yet asked for, want at most 14 (the page's 99 were noted at once?)", rec.lead)
	}
	if !slices.Equal(fs.dropped, []string{"c00005"}) {
		t.Errorf("dropped start notes of %v, want those of c00005 only", fs.dropped)
	}
}

// TestScanPageFailsWhenANoteFails: a note that fails after some of the
// page's starts were asked for fails the page call with its error once
// those starts have finished; no start is asked for unnoted, none after
// the failure, and no note is dropped (the retried page notes again).
func TestScanPageFailsWhenANoteFails(t *testing.T) {
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	errNote := errors.New("notes unavailable")
	fs := &fakeStore{src: []byte(segmentGoSrc), customers: seed(500, now), noteErr: errNote, noteCalls: 2}
	rec := &recorder{started: map[string]rules.Event{}, notes: fs}
	a := &Activities{Store: fs, Start: rec.start, Concurrency: 7}
	_, err := a.ScanPage(context.Background(), PageRequest{Playbook: "lapsed", Now: now, Limit: 600})
	if !errors.Is(err, errNote) {
		t.Fatalf("page call error %v, want the note's", err)
	}
	if len(rec.started) != 14 || len(rec.unnoted) != 0 || rec.inFlight.Load() != 0 || len(fs.dropped) != 0 {
		t.Errorf("%d starts asked for (%d unnoted, %d still in flight), %d notes dropped; want the two noted chunks of 7 started and finished, none dropped",
			len(rec.started), len(rec.unnoted), rec.inFlight.Load(), len(fs.dropped))
	}
}

// TestScanPageReadsSeveralPagesPerCall: one call reads Pages keyset pages
// and stops there, not done, with the cursor after the last one.
func TestScanPageReadsSeveralPagesPerCall(t *testing.T) {
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	fs := &fakeStore{src: []byte(segmentGoSrc), customers: seed(500, now)}
	rec := &recorder{started: map[string]rules.Event{}}
	a := &Activities{Store: fs, Start: rec.start}
	res, err := a.ScanPage(context.Background(), PageRequest{Playbook: "lapsed", Now: now, AfterID: "c00099", Limit: 100, Pages: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{Pages: 3, Scanned: 300, Matched: 60, Started: 60}
	if res.Counts != want || res.Done || res.NextID != "c00399" || len(rec.started) != 60 {
		t.Fatalf("result %+v with %d starts, want counts %+v, not done, next c00399", res, len(rec.started), want)
	}
	if _, ok := rec.started["c00095"]; ok {
		t.Error("started a customer before the cursor")
	}
}

func TestScanPageInactivePlaybook(t *testing.T) {
	a := &Activities{Store: &fakeStore{}, Start: func(context.Context, *engine.Plan, string, rules.Event) (bool, error) {
		return false, errors.New("must not start")
	}}
	res, err := a.ScanPage(context.Background(), PageRequest{Playbook: "gone", Limit: 10})
	if err != nil || !res.Inactive || !res.Done {
		t.Fatalf("undeployed playbook: %+v, %v; want inactive and done", res, err)
	}
}

// TestWorkflowPagesAndContinuesAsNew runs the workflow over 27,345
// customers in pages of 50: it must stop after CallsPerRun calls of
// PagesPerCall pages (25,000 customers) with a continue-as-new carrying the
// cursor, the counts and the pinned scan time.
func TestWorkflowPagesAndContinuesAsNew(t *testing.T) {
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	fs := &fakeStore{src: []byte(segmentGoSrc), customers: seed(27345, now)}
	rec := &recorder{started: map[string]rules.Event{}}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(now)
	env.RegisterWorkflowWithOptions(Workflow, workflow.RegisterOptions{Name: WorkflowName})
	env.RegisterActivity(&Activities{Store: fs, Start: rec.start})
	env.ExecuteWorkflow(WorkflowName, Input{Playbook: "lapsed", PageSize: 50, Partitions: 1})
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("workflow ended with %v, want continue-as-new", err)
	}
	var next Input
	if err := converterFor(can, &next); err != nil {
		t.Fatal(err)
	}
	if next.Partitions != 1 {
		t.Errorf("continued with %d partitions, want the one it started with", next.Partitions)
	}
	if next.AfterID != "c24999" || next.Counts.Pages != CallsPerRun*PagesPerCall || next.Counts.Scanned != 25000 || next.Counts.Started != 5000 {
		t.Errorf("continued with %+v, want cursor c24999 after 500 pages, 25000 scanned, 5000 started", next)
	}
	if !next.Now.Equal(now) {
		t.Errorf("scan time %v not carried over (want %v)", next.Now, now)
	}

	// The next run finishes the last 2,345 customers.
	env = s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Workflow, workflow.RegisterOptions{Name: WorkflowName})
	env.RegisterActivity(&Activities{Store: fs, Start: rec.start})
	env.ExecuteWorkflow(WorkflowName, next)
	var res Result
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Scanned != 27345 || res.Started != 5469 || len(rec.started) != 5469 {
		t.Errorf("final %+v with %d distinct starts, want 27345 scanned and 5469 started", res, len(rec.started))
	}
}

func converterFor(can *workflow.ContinueAsNewError, into *Input) error {
	if can.Input == nil || len(can.Input.Payloads) != 1 {
		return fmt.Errorf("continue-as-new input: %v", can.Input)
	}
	return defaultConverter.FromPayload(can.Input.Payloads[0], into)
}

var defaultConverter = converter.GetDefaultDataConverter()
