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

// The manifest itself only grows: its first manifestLines lines are
// pinned here by their checksum, so deleting a history together with its
// manifest line fails too. A release that records new histories may move
// the pin forward (more lines, the new sum), never back.
const (
	manifestLines = 37
	manifestSum   = "e9f3e1f0ade9035f0f37155b887f1bc7cf93ecc9b3739c1ae490707410d4a81d"
)

// manifestName is the checksum list of the recorded histories, in the
// format of sha256sum (so `cd workflows/testdata/histories && sha256sum -c
// SHA256SUMS` checks it too).
const manifestName = "SHA256SUMS"

// TestHistoryCorpusIsAppendOnly holds the recorded histories to their
// manifest: a history that was modified or deleted fails here, and so does
// a new file that was not added to the manifest. Running journeys are a
// contract; the corpus that stands for them only grows.
func TestHistoryCorpusIsAppendOnly(t *testing.T) {
	listed, err := readManifest(filepath.Join(historiesDir, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	onDisk := map[string]bool{}
	err = filepath.WalkDir(historiesDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(historiesDir, path)
		if rel != manifestName {
			onDisk[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range sortedKeys(listed) {
		if !onDisk[name] {
			t.Errorf("%s is in %s but was deleted: recorded histories are never deleted", name, manifestName)
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
			t.Errorf("%s is not in %s: add new recordings with go test ./workflows -run TestRecordHistories -record", name, manifestName)
		}
	}
	if len(listed) == 0 {
		t.Fatal("the manifest lists no history")
	}
	data, err := os.ReadFile(filepath.Join(historiesDir, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) < manifestLines {
		t.Fatalf("%s has %d lines, fewer than the %d pinned: lines were deleted", manifestName, len(lines), manifestLines)
	}
	sum := sha256.Sum256([]byte(strings.Join(lines[:manifestLines], "")))
	if got := hex.EncodeToString(sum[:]); got != manifestSum {
		t.Fatalf("the first %d lines of %s changed (sha256 %s, pinned %s): the manifest only grows", manifestLines, manifestName, got, manifestSum)
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

// appendManifest adds name with its checksum to the manifest.
func appendManifest(dir, name string) error {
	sum, err := fileSum(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, manifestName), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "%s  %s\n", sum, filepath.ToSlash(name)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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
