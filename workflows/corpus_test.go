package workflows

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// manifestName is the checksum list of recorded histories, in the format
// of sha256sum (so `sha256sum -c SHA256SUMS` in its folder checks it too).
// The one at the top of testdata/histories lists every file recorded up to
// 2026-11-25, by paths relative to that folder; each release folder
// recorded since has its own, written once with the folder, by paths
// relative to the folder. No manifest is ever modified: a release adds its
// folder, its manifest and the manifest's pin below.
const manifestName = "SHA256SUMS"

// manifestPins are the sha256 of every manifest, by folder ("" for the top
// one): deleting a history together with its manifest line, or a manifest
// whole, fails. TestRecordHistories prints the line to add here.
var manifestPins = map[string]string{
	"": "e9f3e1f0ade9035f0f37155b887f1bc7cf93ecc9b3739c1ae490707410d4a81d",
	// Goals that measure (RecordConversion), waits for several events,
	// triggers on several events; milk_delivery and car_care.
	"2026-11-26": "d8b7ac66a51e64bc9faf59a4bc5523c867a7329c236c18f42987387d6099e0b5",
	// Engagement waits (message_opened of a send, message()), the samples
	// on the e-commerce spec names, welcome_resend.
	"2026-11-26-engagement": "b43feb4295010be22af602dbb1d86f830105c9ec8b131ebf509a75c1915fad29",
	// Masked recipients in send summaries (GetVersion masked-recipient),
	// after the payload codec; recorded on a loaded machine, where the
	// outage scenario's enrollment timed out and was not recorded.
	"2026-11-26-privacy": "c2cb5b35149e978ddd6a370500d60b8cc4be55aa92d05be5433ff2efae812d06",
}

// TestHistoryCorpusIsAppendOnly holds the recorded histories to their
// manifests: a history that was modified or deleted fails here, and so
// does a new file that no manifest lists, or a manifest that is not the one
// pinned. Running journeys are a contract; the corpus that stands for them
// only grows.
func TestHistoryCorpusIsAppendOnly(t *testing.T) {
	listed := map[string]string{} // path under historiesDir → sum
	onDisk := map[string]bool{}
	manifests := map[string]bool{}
	err := filepath.WalkDir(historiesDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(historiesDir, path)
		rel = filepath.ToSlash(rel)
		if filepath.Base(rel) != manifestName {
			onDisk[rel] = true
			return nil
		}
		folder := strings.TrimSuffix(strings.TrimSuffix(rel, manifestName), "/")
		manifests[folder] = true
		sum, err := fileSum(path)
		if err != nil {
			return err
		}
		if pin, ok := manifestPins[folder]; !ok {
			t.Errorf("%s is not pinned: add %q: %q to manifestPins", rel, folder, sum)
		} else if sum != pin {
			t.Errorf("%s changed (sha256 %s, pinned %s): manifests, like the histories, are never modified", rel, sum, pin)
		}
		entries, err := readManifest(path)
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
	for _, folder := range sortedKeys(manifestPins) {
		if !manifests[folder] {
			t.Errorf("the manifest of %q was deleted: manifests are never deleted", folder)
		}
	}
	for _, name := range sortedKeys(listed) {
		if !onDisk[name] {
			t.Errorf("%s is in a manifest but was deleted: recorded histories are never deleted", name)
			continue
		}
		if sum, err := fileSum(filepath.Join(historiesDir, name)); err != nil {
			t.Error(err)
		} else if sum != listed[name] {
			t.Errorf("%s was modified (sha256 %s, recorded %s): recorded histories are never modified, only added", name, sum, listed[name])
		}
	}
	for _, name := range sortedKeys(onDisk) {
		if _, ok := listed[name]; !ok {
			t.Errorf("%s is in no manifest: add new recordings with go test ./workflows -run TestRecordHistories -record", name)
		}
	}
	if len(listed) == 0 {
		t.Fatal("the manifests list no history")
	}
}

// readManifest reads "sum  path" lines into path → sum.
func readManifest(path string) (map[string]string, error) {
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

// writeManifest writes the manifest of a new release folder, listing
// names (relative to dir) with their checksums, and returns its checksum
// for manifestPins. It refuses to overwrite a manifest.
func writeManifest(dir string, names []string) (string, error) {
	var b strings.Builder
	for _, name := range names {
		sum, err := fileSum(filepath.Join(dir, name))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, filepath.ToSlash(name))
	}
	f, err := os.OpenFile(filepath.Join(dir, manifestName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
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
	return fileSum(filepath.Join(dir, manifestName))
}

func fileSum(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestWriteManifest: a release folder's manifest lists its files with
// their checksums, reads back as written, and is never overwritten.
func TestWriteManifest(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{"a-run1.json": "{}", "measurements.txt": "a: 1 run"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := writeManifest(dir, []string{"a-run1.json", "measurements.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := fileSum(filepath.Join(dir, manifestName)); got != sum {
		t.Fatalf("returned sum %s, file %s", sum, got)
	}
	entries, err := readManifest(filepath.Join(dir, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := fileSum(filepath.Join(dir, "a-run1.json"))
	if len(entries) != 2 || entries["a-run1.json"] != want {
		t.Fatalf("entries %v", entries)
	}
	if _, err := writeManifest(dir, []string{"a-run1.json"}); err == nil {
		t.Fatal("a second manifest overwrote the first")
	}
}
