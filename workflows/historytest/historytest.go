// Package historytest keeps a corpus of recorded workflow histories for
// replay tests: it records the runs of a workflow from a Temporal server
// as JSON files in a new release folder, lists them with their checksums
// in the folder's manifest, and checks that the corpus only ever grows.
// The journeys' corpus (workflows/testdata/histories) and the scans'
// (scan/testdata/histories) use it. Running workflows are a contract:
// every history ever recorded must replay with the current code.
package historytest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"
)

// ManifestName is the checksum list of a folder of recorded histories, in
// the format of sha256sum (so `sha256sum -c SHA256SUMS` in its folder
// checks it too). No manifest is ever modified: a release adds its folder,
// its manifest and the manifest's pin.
const ManifestName = "SHA256SUMS"

// The flags of a test binary that records histories: -record turns a
// recording test on, -release names the new folder it writes.
var (
	record  = flag.Bool("record", false, "record workflow histories against a Temporal dev server into testdata/histories/<release>")
	release = flag.String("release", time.Now().UTC().Format("2006-01-02"), "the folder under testdata/histories that -record writes (a new one: recordings are never overwritten)")
)

// StartRecording skips t unless the test binary was given -record, and
// otherwise starts a Temporal dev server (TemporalCLI, with extraArgs,
// such as the search attributes) for the test's lifetime and creates the
// release folder under root (NewFolder). It returns the server's client,
// the folder and the release name.
func StartRecording(ctx context.Context, t *testing.T, root string, extraArgs []string) (client.Client, string, string) {
	t.Helper()
	if !*record {
		t.Skip("records histories only with -record (needs the Temporal CLI)")
	}
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  TemporalCLI(t),
		ClientOptions: &client.Options{Logger: QuietLogger()},
		ExtraArgs:     extraArgs,
		LogLevel:      "error",
	})
	if err != nil {
		t.Fatalf("start dev server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return srv.Client(), NewFolder(t, root, *release), *release
}

// QuietLogger is an SDK logger that discards everything (replays log
// every command).
func QuietLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// Files lists every recorded history (*.json) under root.
func Files(t testing.TB, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// ReplayAll replays every recorded history under root, each in a
// parallel subtest, with the workflows register registers: a change to
// them that a run in flight would not survive fails there. idOf, when
// not nil, names the workflow id a file was recorded under, for
// workflows whose commands depend on their own id (the histories do not
// hold it). record names the command that records histories.
func ReplayAll(t *testing.T, root, record string, register func(worker.WorkflowReplayer), idOf func(file string) string) {
	t.Helper()
	files := Files(t, root)
	if len(files) == 0 {
		t.Fatalf("no recorded histories in %s (%s)", root, record)
	}
	for _, f := range files {
		name, _ := filepath.Rel(root, f)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := worker.NewWorkflowReplayer()
			register(r)
			h := Read(t, f)
			var opts worker.ReplayWorkflowHistoryOptions
			if idOf != nil {
				opts.OriginalExecution = workflow.Execution{ID: idOf(filepath.Base(f))}
			}
			if err := r.ReplayWorkflowHistoryWithOptions(QuietLogger(), h, opts); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}

// Read reads one recorded history.
func Read(t testing.TB, file string) *historypb.History {
	t.Helper()
	r, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h, err := client.HistoryFromJSON(r, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	return h
}

// NewFolder creates root/release for a recording and refuses one that
// exists: recorded histories are never overwritten.
func NewFolder(t testing.TB, root, release string) string {
	t.Helper()
	dir := filepath.Join(root, release)
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("%s exists: recordings are never overwritten; record into a new folder with -release NAME", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TemporalCLI is the Temporal CLI that recordings start a dev server
// with: $TEMPORAL_CLI, else temporal on the PATH, else ~/go/bin/temporal.
func TemporalCLI(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("TEMPORAL_CLI"); p != "" {
		return p
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, "go", "bin", "temporal")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no Temporal CLI (set TEMPORAL_CLI): %v", err)
	}
	return p
}

// SaveHistories writes the history of run runID of workflow wfID, and of
// every run it continued as, into dir as <name>-run<N>.json, and returns
// their lengths in events and the file names.
func SaveHistories(ctx context.Context, c client.Client, dir, name, wfID, runID string) ([]int, []string, error) {
	var sizes []int
	var files []string
	for i := 1; runID != ""; i++ {
		var h historypb.History
		it := c.GetWorkflowHistory(ctx, wfID, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				return nil, nil, fmt.Errorf("history of %s: %w", wfID, err)
			}
			h.Events = append(h.Events, e)
		}
		data, err := protojson.Marshal(&h)
		if err != nil {
			return nil, nil, err
		}
		file := fmt.Sprintf("%s-run%d.json", name, i)
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			return nil, nil, err
		}
		sizes, files = append(sizes, len(h.Events)), append(files, file)
		runID = ""
		if last := h.Events[len(h.Events)-1]; last.GetWorkflowExecutionContinuedAsNewEventAttributes() != nil {
			runID = last.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
		}
	}
	return sizes, files, nil
}

// ReadManifest reads "sum  path" lines into path → sum.
func ReadManifest(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read history manifest: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			return nil, fmt.Errorf("%s:%d: want \"<sha256>  <path>\", got %q", path, n, sc.Text())
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s:%d: %s is listed twice", path, n, name)
		}
		out[name] = sum
	}
	return out, sc.Err()
}

// WriteManifest writes the manifest of a new release folder, listing
// names (relative to dir) with their checksums, and returns its checksum
// to pin. It refuses to overwrite a manifest.
func WriteManifest(dir string, names []string) (string, error) {
	var b strings.Builder
	for _, name := range names {
		sum, err := FileSum(filepath.Join(dir, name))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, filepath.ToSlash(name))
	}
	f, err := os.OpenFile(filepath.Join(dir, ManifestName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return FileSum(filepath.Join(dir, ManifestName))
}

// FileSum is the hex sha256 of a file.
func FileSum(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// CheckAppendOnly holds the histories under root to their manifests: a
// history that was modified or deleted fails, and so does a new file that
// no manifest lists, or a manifest that is not the one pinned in pins (by
// folder relative to root, "" for root itself). record is the command
// that adds recordings, named in the failure of an unlisted file.
func CheckAppendOnly(t testing.TB, root string, pins map[string]string, record string) {
	t.Helper()
	listed := map[string]string{} // path under root → sum
	onDisk := map[string]bool{}
	manifests := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if filepath.Base(rel) != ManifestName {
			onDisk[rel] = true
			return nil
		}
		folder := strings.TrimSuffix(strings.TrimSuffix(rel, ManifestName), "/")
		manifests[folder] = true
		sum, err := FileSum(path)
		if err != nil {
			return err
		}
		if pin, ok := pins[folder]; !ok {
			t.Errorf("%s is not pinned: add %q: %q to the manifest pins", rel, folder, sum)
		} else if sum != pin {
			t.Errorf("%s changed (sha256 %s, pinned %s): manifests, like the histories, are never modified", rel, sum, pin)
		}
		entries, err := ReadManifest(path)
		if err != nil {
			return err
		}
		for name, sum := range entries {
			if folder != "" {
				name = folder + "/" + name
			}
			if _, dup := listed[name]; dup {
				t.Errorf("%s is listed by two manifests", name)
			}
			listed[name] = sum
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, folder := range sortedKeys(pins) {
		if !manifests[folder] {
			t.Errorf("the manifest of %q was deleted: manifests are never deleted", folder)
		}
	}
	for _, name := range sortedKeys(listed) {
		if !onDisk[name] {
			t.Errorf("%s is in a manifest but was deleted: recorded histories are never deleted", name)
			continue
		}
		if sum, err := FileSum(filepath.Join(root, name)); err != nil {
			t.Error(err)
		} else if sum != listed[name] {
			t.Errorf("%s was modified (sha256 %s, recorded %s): recorded histories are never modified, only added", name, sum, listed[name])
		}
	}
	for _, name := range sortedKeys(onDisk) {
		if _, ok := listed[name]; !ok {
			t.Errorf("%s is in no manifest: add new recordings with %s", name, record)
		}
	}
	if len(listed) == 0 {
		t.Fatal("the manifests list no history")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
