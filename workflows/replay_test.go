package workflows

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/workflows/historytest"
)

const historiesDir = "testdata/histories"

// TestReplayHistories replays every recorded history with the current
// workflow code: a change that is not deterministic for in-flight
// enrollments fails here. Record them with
// go test ./workflows -run TestRecordHistories -record.
func TestReplayHistories(t *testing.T) {
	historytest.ReplayAll(t, historiesDir, "go test ./workflows -run TestRecordHistories -record", func(r worker.WorkflowReplayer) {
		r.RegisterWorkflowWithOptions(Journey, workflowRegisterOptions())
	}, nil)
}

// recordEdition is the edition TestRecordHistories starts its journeys
// in: the newest, whose histories are the ones not yet recorded.
var recordEdition = flag.Int("record-edition", LatestEdition, "the edition of the journeys -record starts (0: none)")

// recording is one sample run against the dev server.
type recording struct {
	name     string
	playbook string // a playbook file, or
	source   string // the playbook itself
	customer rules.Customer
	trigger  *rules.Event // default: the playbook's trigger event
	// drive sends the run its events while it runs.
	drive func(ctx context.Context, c client.Client, wfID string, w recorderWorld) error
	// alone: recorded after the others, with nothing else running (it
	// makes the activities fail).
	alone bool
}

// recorderWorld is what a recording's driver may change: the memory
// activities behind the worker.
type recorderWorld struct {
	acts       *outage
	customerID string
}

// record stores an event as the event API does before signalling it.
func (w recorderWorld) record(ev rules.Event) { w.acts.RecordEvent(w.customerID, ev) }

// outage makes every activity fail (down) or work again.
func (w recorderWorld) outage(down bool) { w.acts.down.Store(down) }

func signalAfter(d time.Duration, events ...rules.Event) func(context.Context, client.Client, string, recorderWorld) error {
	return func(ctx context.Context, c client.Client, wfID string, _ recorderWorld) error {
		time.Sleep(d)
		for _, ev := range events {
			if err := c.SignalWorkflow(ctx, wfID, "", EventSignal, ev); err != nil {
				return err
			}
			time.Sleep(300 * time.Millisecond)
		}
		return nil
	}
}

// storm sends n distinct events (and one duplicate), then stop.
func storm(n int) func(context.Context, client.Client, string, recorderWorld) error {
	return func(ctx context.Context, c client.Client, wfID string, _ recorderWorld) error {
		for i := range n {
			ev := rules.Event{ID: fmt.Sprintf("v%d", i), Name: "visit"}
			if err := c.SignalWorkflow(ctx, wfID, "", EventSignal, ev); err != nil {
				return err
			}
		}
		dup := rules.Event{ID: fmt.Sprintf("v%d", n-1), Name: "visit"}
		if err := c.SignalWorkflow(ctx, wfID, "", EventSignal, dup); err != nil {
			return err
		}
		time.Sleep(time.Second)
		return c.SignalWorkflow(ctx, wfID, "", EventSignal, rules.Event{ID: "stop-1", Name: "stop"})
	}
}

// recordings are the runs a release records: the first four of
// 2026-11-23, every sample playbook's main path and the scenarios.
func recordings(now time.Time) ([]recording, error) {
	ada := SampleCustomer(now)
	bo := rules.Customer{ID: "c-7", Name: "Bo", Email: "bo@example.com", Phone: "+4915100000007", Locale: "en", Timezone: "Europe/Berlin", Tier: "standard"}
	cy := rules.Customer{ID: "c-9", Name: "Cy", Phone: "+100", Locale: "en"}
	recs := []recording{
		{name: "fast_journey-timeout", playbook: "testdata/replay/fast_journey.yaml", customer: ada},
		{name: "fast_journey-event-goal", playbook: "testdata/replay/fast_journey.yaml", customer: bo, drive: signalAfter(2500*time.Millisecond,
			rules.Event{ID: "p-1", Name: "purchase", Amount: 80},
			rules.Event{ID: "p-1", Name: "purchase", Amount: 80},
			rules.Event{ID: "pay-1", Name: "order_paid", Amount: 80})},
		{name: "drip-five-sends", playbook: "testdata/replay/drip.yaml", customer: bo},
		{name: "storm-continue-as-new", playbook: "testdata/replay/storm.yaml", customer: cy, drive: storm(700)},
	}
	samples, err := sampleRecordings(now)
	if err != nil {
		return nil, err
	}
	return append(append(recs, samples...), scenarioRecordings(now)...), nil
}

// TestRecordHistories runs the samples on a real dev server (the Temporal
// CLI at $TEMPORAL_CLI or ~/go/bin/temporal) with the memory activities on
// a real worker, and stores every run's history as JSON in a new release
// folder, testdata/histories/<release>/, with the history sizes in
// measurements.txt there, and lists every file in the folder's own
// manifest (written once), whose checksum it logs to be pinned in
// manifestPins. It refuses to write into a folder that exists: recorded
// histories are only added. The journeys start in -record-edition
// (TestMain clears RAPPORT_JOURNEY_EDITION for every other test).
func TestRecordHistories(t *testing.T) {
	t.Setenv(EditionEnv, strconv.Itoa(*recordEdition))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, dir, release := historytest.StartRecording(ctx, t, historiesDir, SearchAttributeFlags())
	var report strings.Builder
	report.WriteString("# History events per enrollment, recorded against a Temporal dev server\n# sample: runs, events per run, send steps, events per send step\n")
	recs, err := recordings(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	acts := &outage{Memory: activities.NewMemory()}
	w := worker.New(c, TaskQueue, worker.Options{})
	Register(w, acts)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// Together, then those that must run alone; each keeps its place in
	// the report.
	results := make([]recorded, len(recs))
	for _, alone := range []bool{false, true} {
		var wg sync.WaitGroup
		for i, rec := range recs {
			if rec.alone != alone {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = recordOne(ctx, c, acts, dir, rec)
			}()
			if alone {
				wg.Wait()
			}
		}
		wg.Wait()
	}
	var written []string
	for _, r := range results {
		if r.err != nil {
			t.Error(r.err)
			continue
		}
		report.WriteString(r.line + "\n")
		written = append(written, r.files...)
		t.Log(r.line)
	}
	if err := os.WriteFile(filepath.Join(dir, "measurements.txt"), []byte(report.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := historytest.WriteManifest(dir, append(written, "measurements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pin the new manifest: add %q: %q to manifestPins in corpus_test.go", release, sum)
}

// recorded is what recordOne made of one recording.
type recorded struct {
	line  string   // the measurement line
	files []string // the history files written
	err   error
}

// recordOne runs one recording to its end and saves the history of each
// run in dir.
func recordOne(ctx context.Context, c client.Client, acts *outage, dir string, rec recording) recorded {
	fail := func(format string, args ...any) recorded {
		return recorded{err: fmt.Errorf(rec.name+": "+format, args...)}
	}
	plan, err := rec.compile()
	if err != nil {
		return fail("%v", err)
	}
	acts.Put(rec.customer)
	trigger := rules.Event{ID: "t-" + rec.name, Name: plan.Trigger.Event}
	if rec.trigger != nil {
		trigger = *rec.trigger
		trigger.ID = "t-" + rec.name
	}
	run, started, err := Enroll(ctx, c, plan, rec.customer.ID, trigger)
	if err != nil || !started {
		return fail("enroll: started=%v %v", started, err)
	}
	if _, again, err := Enroll(ctx, c, plan, rec.customer.ID, rules.Event{Name: plan.Trigger.Event}); err != nil {
		return fail("a second enrollment: %v", err)
	} else if again {
		// A journey that ends in its first workflow task (eager start) may
		// have closed before the second start, which the workflow ID then
		// allows (the re-entry policy decides, in RecordStart). Only a
		// second start while the first runs is wrong.
		d, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
		if err != nil || d.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return fail("a second enrollment started while one runs (%v)", err)
		}
	}
	firstRunID := run.GetRunID() // Get follows continue-as-new and moves it on
	if rec.drive != nil {
		if err := rec.drive(ctx, c, run.GetID(), recorderWorld{acts: acts, customerID: rec.customer.ID}); err != nil {
			return fail("%v", err)
		}
	}
	var res JourneyResult
	if err := run.Get(ctx, &res); err != nil {
		return fail("%v", err)
	}
	sizes, files, err := historytest.SaveHistories(ctx, c, dir, rec.name, run.GetID(), firstRunID)
	if err != nil {
		return fail("%v", err)
	}
	total := 0
	for _, n := range sizes {
		total += n
	}
	perSend := "n/a"
	if res.Counters.Sends > 0 {
		perSend = fmt.Sprintf("%.1f", float64(total)/float64(res.Counters.Sends))
	}
	line := fmt.Sprintf("%s: outcome %s (%s), %d run(s), events per run %v (total %d), %d steps, %d send step(s), %s events per send step (whole history / sends)",
		rec.name, res.Status, res.Reason, len(sizes), sizes, total, res.Counters.Steps, res.Counters.Sends, perSend)
	return recorded{line: line, files: files}
}
