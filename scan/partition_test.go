package scan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

func newTestEnv(a *Activities) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Workflow, workflowRegisterOptions)
	env.RegisterWorkflowWithOptions(PartitionWorkflow, partitionRegisterOptions)
	env.RegisterActivity(a)
	return env
}

// inPartition returns the customers of part, in id order.
func inPartition(cs []rules.Customer, part store.Partition) []rules.Customer {
	var out []rules.Customer
	for _, c := range cs {
		if inPart(c.ID, part) {
			out = append(out, c)
		}
	}
	return out
}

// TestScanSplitsIntoPartitions runs a scheduled scan of 27,345 customers
// in pages of 10 with the worker's setting of 4 partitions: it starts four
// ScanPartition children, each of more than the 5,000 customers one run
// reads (so each continues as new at least once), every customer is read
// exactly once over all of them, the counts of the scan are the sums of
// the partitions' and what a single walk would count, every match is
// started once, and the schedule lag is reported once.
func TestScanSplitsIntoPartitions(t *testing.T) {
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	cs := seed(27345, now)
	perRun := CallsPerRun * PagesPerCall * 10
	for i := range 4 {
		if n := len(inPartition(cs, store.Partition{Index: i, Count: 4})); n <= perRun {
			t.Fatalf("partition %d of 4 holds %d customers; the test needs more than %d so that it continues as new", i, n, perRun)
		}
	}
	fs := &fakeStore{src: []byte(segmentGoSrc), customers: cs, history: map[string]store.EntryHistory{
		"c00000": {Any: true, Last: &now}, // refused by the re-entry pre-filter
	}}
	rec := &recorder{started: map[string]rules.Event{}, alreadyRunning: map[string]bool{"c00005": true}}
	var lags atomic.Int32
	a := &Activities{Store: fs, Start: rec.start, Partitions: 4, OnLag: func(string, time.Duration) { lags.Add(1) }}
	env := newTestEnv(a)
	env.SetStartTime(now.Add(3 * time.Second))
	if err := env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(scheduledStart.ValueSet(now))); err != nil {
		t.Fatal(err)
	}
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "rapport-scan-run/lapsed-2026-03-14T00:00:00Z"})
	runs := map[string]int{} // child workflow ID → runs started
	env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
		runs[info.WorkflowType.Name+" "+info.WorkflowExecution.ID]++
	})
	env.ExecuteWorkflow(WorkflowName, Input{Playbook: "lapsed", PageSize: 10})
	var res Result
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		id := fmt.Sprintf("ScanPartition rapport-scan-run/lapsed-2026-03-14T00:00:00Z/partition-%d-of-4", i+1)
		pages := (len(inPartition(cs, store.Partition{Index: i, Count: 4})) + 9) / 10
		if want := (pages + CallsPerRun*PagesPerCall) / (CallsPerRun * PagesPerCall); runs[id] != want {
			t.Errorf("%s ran %d times, want %d (its %d pages, continuing as new every %d)", id, runs[id], want, pages, CallsPerRun*PagesPerCall)
		}
		delete(runs, id)
	}
	if len(runs) != 0 {
		t.Errorf("unexpected children %v", runs)
	}
	for _, c := range cs {
		if n := fs.reads[c.ID]; n != 1 {
			t.Fatalf("%s read %d times, want once", c.ID, n)
		}
	}
	wantPages := 0
	for i := range 4 {
		wantPages += (len(inPartition(cs, store.Partition{Index: i, Count: 4})) + 9) / 10 // an empty last page is not counted
	}
	want := Counts{Pages: wantPages, Scanned: 27345, Matched: 5469, Skipped: 1, Started: 5467, Running: 1}
	if res.Counts != want || res.Partitions != 4 || !res.Now.Equal(now) || res.Inactive {
		t.Errorf("scan result %+v, want counts %+v over 4 partitions at %v", res, want, now)
	}
	if len(rec.started) != 5467 {
		t.Errorf("%d distinct customers started, want 5467", len(rec.started))
	}
	if ev := rec.started["c27340"]; !ev.Time.Equal(now) {
		t.Errorf("c27340 started with trigger time %v, want the scan's %v in every partition", ev.Time, now)
	}
	if n := lags.Load(); n != 1 {
		t.Errorf("schedule lag reported %d times, want once per scan", n)
	}
}

// TestPartitionContinuesAsNewWithItsCursor: a partition's run stops after
// CallsPerRun calls and continues as new with its partition, its cursor
// (the last customer of its own that it read), its counts and the scan
// time, and without the schedule time (the lag is reported once); the
// next run reads the rest of the partition and nothing outside it.
func TestPartitionContinuesAsNewWithItsCursor(t *testing.T) {
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	cs := seed(27345, now)
	part := store.Partition{Index: 2, Count: 4}
	mine := inPartition(cs, part)
	fs := &fakeStore{src: []byte(segmentGoSrc), customers: cs}
	rec := &recorder{started: map[string]rules.Event{}}
	a := &Activities{Store: fs, Start: rec.start}
	env := newTestEnv(a)
	env.ExecuteWorkflow(PartitionWorkflowName, PartitionInput{Playbook: "lapsed", Now: now, Partition: part, PageSize: 10, ScheduledAt: now})
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("partition ended with %v, want continue-as-new", err)
	}
	var next PartitionInput
	if err := defaultConverter.FromPayload(can.Input.Payloads[0], &next); err != nil {
		t.Fatal(err)
	}
	perRun := CallsPerRun * PagesPerCall * 10
	if next.Partition != part || next.AfterID != mine[perRun-1].ID || next.Counts.Scanned != perRun || next.Counts.Pages != CallsPerRun*PagesPerCall ||
		!next.Now.Equal(now) || !next.ScheduledAt.IsZero() || next.PageSize != 10 {
		t.Errorf("continued with %+v, want partition %+v, cursor %s after %d customers, the scan time and no schedule time", next, part, mine[perRun-1].ID, perRun)
	}

	env = newTestEnv(a)
	env.ExecuteWorkflow(PartitionWorkflowName, next)
	var res Result
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	matches := 0
	for _, c := range mine {
		if c.LastPurchaseAt.Before(now.AddDate(0, 0, -90)) {
			matches++
		}
	}
	if res.Scanned != len(mine) || res.Started != matches || len(rec.started) != matches {
		t.Errorf("partition result %+v with %d starts, want %d scanned and %d started", res.Counts, len(rec.started), len(mine), matches)
	}
	for id := range rec.started {
		if !inPart(id, part) {
			t.Errorf("started %s, which is outside partition %+v", id, part)
		}
	}
	for _, c := range mine {
		if fs.reads[c.ID] != 1 {
			t.Fatalf("%s read %d times over the two runs, want once", c.ID, fs.reads[c.ID])
		}
	}
}

// TestScanRecordedBeforePartitions: a scan whose history was recorded
// before the split (GetVersion answers the default version) pages through
// everyone itself, as it did, without asking for a partition count or
// starting children, whatever the worker's setting.
func TestScanRecordedBeforePartitions(t *testing.T) {
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	fs := &fakeStore{src: []byte(segmentGoSrc), customers: seed(2000, now)}
	rec := &recorder{started: map[string]rules.Event{}}
	env := newTestEnv(&Activities{Store: fs, Start: rec.start, Partitions: 8})
	env.SetStartTime(now)
	env.OnGetVersion(partitionsChange, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
		t.Errorf("started child %s", info.WorkflowExecution.ID)
	})
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		t.Errorf("ran local activity %s", info.ActivityType.Name)
	})
	env.ExecuteWorkflow(WorkflowName, Input{Playbook: "lapsed", PageSize: 50})
	var res Result
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Scanned != 2000 || res.Started != 400 || res.Pages != 40 || res.Partitions != 0 {
		t.Errorf("result %+v, want 2000 scanned in 40 pages of one walk, 400 started", res)
	}
}

// TestScanPartitionFailureIsReported: a partition whose page fails for
// good fails the scan with an error naming it, after the other partitions
// have finished (what they started stays started).
func TestScanPartitionFailureIsReported(t *testing.T) {
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	cs := seed(400, now)
	fs := &failingStore{fakeStore: &fakeStore{src: []byte(segmentGoSrc), customers: cs}, fail: store.Partition{Index: 1, Count: 3}}
	rec := &recorder{started: map[string]rules.Event{}}
	env := newTestEnv(&Activities{Store: fs, Start: rec.start})
	env.ExecuteWorkflow(WorkflowName, Input{Playbook: "lapsed", Partitions: 3})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "scan lapsed partition 2 of 3") || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("scan error %v, want one naming partition 2 of 3 and the cause", err)
	}
	for _, i := range []int{0, 2} {
		for _, c := range inPartition(cs, store.Partition{Index: i, Count: 3}) {
			if _, ok := rec.started[c.ID]; !ok && c.LastPurchaseAt.Before(now.AddDate(0, 0, -90)) {
				t.Errorf("%s of partition %d was not started", c.ID, i+1)
			}
		}
	}
}

// failingStore fails every read of one partition with an error that is
// not retried.
type failingStore struct {
	*fakeStore
	fail store.Partition
}

func (f *failingStore) EachCandidate(ctx context.Context, q store.CandidateQuery, fn func(rules.Customer) error) error {
	if q.Partition == f.fail {
		return temporal.NewNonRetryableApplicationError("disk on fire", "test", nil)
	}
	return f.fakeStore.EachCandidate(ctx, q, fn)
}

func TestPartitionsFromEnv(t *testing.T) {
	for v, want := range map[string]int{"": DefaultPartitions, "1": 1, "16": 16, " 8 ": 8, "256": 256} {
		t.Setenv("RAPPORT_SCAN_PARTITIONS", v)
		if n, err := PartitionsFromEnv(); n != want || err != nil {
			t.Errorf("RAPPORT_SCAN_PARTITIONS=%q: %d, %v; want %d", v, n, err, want)
		}
	}
	for _, v := range []string{"0", "-2", "257", "four", "4.5"} {
		t.Setenv("RAPPORT_SCAN_PARTITIONS", v)
		if _, err := PartitionsFromEnv(); err == nil || !strings.Contains(err.Error(), "RAPPORT_SCAN_PARTITIONS") || !strings.Contains(err.Error(), v) {
			t.Errorf("RAPPORT_SCAN_PARTITIONS=%q: %v, want an error naming the variable and the value", v, err)
		}
	}
}

// scanOnce runs one ScanPage call with a short heartbeat timeout and no
// retries.
func scanOnce(ctx workflow.Context, r PageRequest) (PageResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute, HeartbeatTimeout: 300 * time.Millisecond,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var a *Activities
	var res PageResult
	err := workflow.ExecuteActivity(ctx, a.ScanPage, r).Get(ctx, &res)
	return res, err
}

// TestScanPageHeartbeatsWhileItStarts: a page whose matches take longer
// to start than the heartbeat timeout (a slow Temporal: starting 500
// enrollments at 17 a second on a loaded machine took 30 s against the
// scan's 1-minute timeout) still completes: every start counts as a sign
// of life. Before, the call timed out and its retry found what it had
// started already running (seen in bench part e: 249 started, 1,722
// "running" of 2,000).
func TestScanPageHeartbeatsWhileItStarts(t *testing.T) {
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	fs := &fakeStore{src: []byte(segmentGoSrc), customers: seed(100, now)} // 20 match
	slow := func(context.Context, *engine.Plan, string, rules.Event) (bool, error) {
		time.Sleep(60 * time.Millisecond)
		return true, nil
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(scanOnce)
	env.RegisterActivity(&Activities{Store: fs, Start: slow, Concurrency: 1})
	env.ExecuteWorkflow(scanOnce, PageRequest{Playbook: "lapsed", Now: now, Limit: 500})
	var res PageResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatalf("a page that starts 20 enrollments in 1.2 s with a 300 ms heartbeat timeout: %v", err)
	}
	if res.Started != 20 || !res.Done {
		t.Errorf("result %+v, want 20 started and done", res)
	}
}

// TestStartsAreBoundedAcrossPages: the pages of several partitions running
// on one worker together never have more than Concurrency starts in
// flight (it was a bound per page, so four partitions made four times as
// many, and a slow server timed them out).
func TestStartsAreBoundedAcrossPages(t *testing.T) {
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	fs := &fakeStore{src: []byte(segmentGoSrc), customers: seed(2000, now)}
	rec := &recorder{started: map[string]rules.Event{}}
	a := &Activities{Store: fs, Start: rec.start, Concurrency: 6}
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			_, err := a.ScanPage(context.Background(), PageRequest{Playbook: "lapsed", Now: now, Limit: 1000, Partition: store.Partition{Index: i, Count: 4}})
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.started) != 400 {
		t.Errorf("%d started, want the 400 matches", len(rec.started))
	}
	if p := rec.peak.Load(); p > 6 || p < 2 {
		t.Errorf("peak concurrent starts over four pages %d, want between 2 and the bound 6", p)
	}
}
