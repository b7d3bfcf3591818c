package scan

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/workflows"
	"github.com/rapport-crm/rapport/workflows/historytest"
)

const historiesDir = "testdata/histories"

// manifestPins are the sha256 of every manifest of the scans' corpus, by
// folder. TestRecordScanHistories prints the line to add here.
var manifestPins = map[string]string{
	// The first scan histories: split into 3 partitions (one continued as
	// new), one walk through everyone continued as new, a playbook not
	// deployed; recorded with the scan-partitions gate at version 1.
	"2026-11-26": "f6444932716b3a2c12c1e7bbf0025e9914a6b5a202eeddf5dddaf6784ac2238a",
}

// TestReplayScanHistories replays every recorded scan history (the scan,
// its partitions, and the runs they continued as) with the current code:
// a change to the scan workflows that a scan in flight would not survive
// fails here. Record them with
// go test ./scan -run TestRecordScanHistories -record.
func TestReplayScanHistories(t *testing.T) {
	// A scan names its partitions after its own workflow id: the replay
	// must run under the id it was recorded with.
	historytest.ReplayAll(t, historiesDir, "go test ./scan -run TestRecordScanHistories -record", func(r worker.WorkflowReplayer) {
		r.RegisterWorkflowWithOptions(Workflow, workflowRegisterOptions)
		r.RegisterWorkflowWithOptions(PartitionWorkflow, partitionRegisterOptions)
	}, recordedID)
}

// recordIDPrefix starts the workflow id of every recorded scan.
const recordIDPrefix = "rapport-scan-record/"

// recordedID is the workflow id a history file was recorded under:
// scan-split-run1.json was rapport-scan-record/scan-split, and
// scan-split-partition-1-of-3-run2.json its child
// rapport-scan-record/scan-split/partition-1-of-3.
func recordedID(file string) string {
	name := strings.TrimSuffix(file, ".json")
	name = name[:strings.LastIndex(name, "-run")]
	if i := strings.Index(name, "-partition-"); i >= 0 {
		name = name[:i] + "/" + name[i+1:]
	}
	return recordIDPrefix + name
}

// TestScanHistoryCorpusIsAppendOnly: recorded scan histories are never
// modified or deleted, only added (historytest.CheckAppendOnly).
func TestScanHistoryCorpusIsAppendOnly(t *testing.T) {
	historytest.CheckAppendOnly(t, historiesDir, manifestPins, "go test ./scan -run TestRecordScanHistories -record")
}

// scanRecording is one scan run against the dev server.
type scanRecording struct {
	name       string
	src        []byte // the deployed playbook; nil: none deployed
	customers  int
	partitions int // Input.Partitions
	pageSize   int
}

// scanRecordings cover the workflow's paths: split into partitions, one
// of which continues as new; one walk through everyone continuing as new
// (Partitions 1, as scans ran before partitions); a playbook that is not
// deployed.
var scanRecordings = []scanRecording{
	{name: "scan-split", src: []byte(segmentGoSrc), customers: 1800, partitions: 3, pageSize: 1},
	{name: "scan-one-walk", src: []byte(segmentGoSrc), customers: 600, partitions: 1, pageSize: 1},
	{name: "scan-inactive", customers: 10, partitions: 2, pageSize: 5},
}

// TestRecordScanHistories runs scanRecordings on a real dev server (the
// Temporal CLI at $TEMPORAL_CLI, on the PATH or ~/go/bin/temporal) with
// the test's fake store and start function on a real worker, and stores
// the history of every run of the scan and of its partitions in a new
// release folder, testdata/histories/<release>/, with a manifest whose
// checksum it logs to be pinned in manifestPins. It refuses a folder that
// exists: recorded histories are only added.
func TestRecordScanHistories(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, dir, release := historytest.StartRecording(ctx, t, historiesDir, workflows.SearchAttributeFlags())
	var written, report []string
	for _, rec := range scanRecordings {
		files, line, err := recordScan(ctx, c, dir, rec)
		if err != nil {
			t.Fatalf("%s: %v", rec.name, err)
		}
		written, report = append(written, files...), append(report, line)
		t.Log(line)
	}
	sum, err := historytest.WriteManifest(dir, written)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded:\n%s\npin the new manifest: add %q: %q to manifestPins in scan/replay_test.go", strings.Join(report, "\n"), release, sum)
}

// recordScan runs one scan to its end on its own task queue and saves the
// histories of the scan and of each partition it split into.
func recordScan(ctx context.Context, c client.Client, dir string, rec scanRecording) ([]string, string, error) {
	now := time.Now().UTC()
	fs := &fakeStore{src: rec.src, customers: seed(rec.customers, now)}
	starts := &recorder{started: map[string]rules.Event{}}
	queue := "rapport-scan-record-" + rec.name
	w := worker.New(c, queue, worker.Options{})
	Register(w, &Activities{Store: fs, Start: starts.start})
	if err := w.Start(); err != nil {
		return nil, "", err
	}
	defer w.Stop()
	id := recordIDPrefix + rec.name
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue, WorkflowExecutionTimeout: 5 * time.Minute},
		WorkflowName, Input{Playbook: "lapsed", Partitions: rec.partitions, PageSize: rec.pageSize})
	if err != nil {
		return nil, "", err
	}
	firstRun := run.GetRunID()
	var res Result
	if err := run.Get(ctx, &res); err != nil {
		return nil, "", err
	}
	_, files, err := historytest.SaveHistories(ctx, c, dir, rec.name, id, firstRun)
	if err != nil {
		return nil, "", err
	}
	// The partitions' first runs, as the scan started them (a partition
	// that continued as new has a later run under the same id).
	it := c.GetWorkflowHistory(ctx, id, firstRun, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, "", err
		}
		child := ev.GetChildWorkflowExecutionStartedEventAttributes().GetWorkflowExecution()
		if child == nil {
			continue
		}
		name := rec.name + "-" + strings.TrimPrefix(child.GetWorkflowId(), id+"/")
		_, f, err := historytest.SaveHistories(ctx, c, dir, name, child.GetWorkflowId(), child.GetRunId())
		if err != nil {
			return nil, "", err
		}
		files = append(files, f...)
	}
	line := fmt.Sprintf("%s: %d partitions, %d scanned, %d started, inactive %v, %d files", rec.name, res.Partitions, res.Scanned, res.Started, res.Inactive, len(files))
	return files, line, nil
}
