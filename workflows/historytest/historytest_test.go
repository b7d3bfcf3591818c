package historytest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteManifest: a release folder's manifest lists its files with
// their checksums, reads back as written, and is never overwritten.
func TestWriteManifest(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{"a-run1.json": "{}", "measurements.txt": "a: 1 run"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := WriteManifest(dir, []string{"a-run1.json", "measurements.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := FileSum(filepath.Join(dir, ManifestName)); got != sum {
		t.Fatalf("returned sum %s, file %s", sum, got)
	}
	entries, err := ReadManifest(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := FileSum(filepath.Join(dir, "a-run1.json"))
	if len(entries) != 2 || entries["a-run1.json"] != want {
		t.Fatalf("entries %v", entries)
	}
	if _, err := WriteManifest(dir, []string{"a-run1.json"}); err == nil {
		t.Fatal("a second manifest overwrote the first")
	}
}

// spy records what a check reports instead of failing the test.
type spy struct {
	testing.TB
	errs []string
}

func (s *spy) Helper() {}
func (s *spy) Errorf(format string, args ...any) {
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}
func (s *spy) Fatal(args ...any) { s.errs = append(s.errs, fmt.Sprint(args...)) }

// CheckAppendOnly passes a corpus as recorded and fails, naming the file,
// on a modified history, a deleted one, an unlisted one and a manifest
// that is not the one pinned.
func TestCheckAppendOnly(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "2026-12-01")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a-run1.json", "b-run1.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(`{"events":[]}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := WriteManifest(dir, []string{"a-run1.json", "b-run1.json"})
	if err != nil {
		t.Fatal(err)
	}
	pins := map[string]string{"2026-12-01": sum}
	check := func() []string {
		s := &spy{TB: t}
		CheckAppendOnly(s, root, pins, "record")
		return s.errs
	}
	if errs := check(); len(errs) != 0 {
		t.Fatalf("intact corpus: %v", errs)
	}
	for _, c := range []struct {
		name   string
		change func() error
		want   string
	}{
		{"modified", func() error { return os.WriteFile(filepath.Join(dir, "a-run1.json"), []byte(`{}`), 0o644) }, "a-run1.json was modified"},
		{"deleted", func() error { return os.Remove(filepath.Join(dir, "b-run1.json")) }, "b-run1.json is in a manifest but was deleted"},
		{"unlisted", func() error { return os.WriteFile(filepath.Join(dir, "c-run1.json"), []byte(`{}`), 0o644) }, "c-run1.json is in no manifest"},
		{"manifest", func() error { pins["2026-12-01"] = "0"; return nil }, "SHA256SUMS changed"},
	} {
		if err := c.change(); err != nil {
			t.Fatal(err)
		}
		errs := check()
		if !strings.Contains(strings.Join(errs, "\n"), c.want) {
			t.Errorf("%s: errors %q, want one saying %q", c.name, errs, c.want)
		}
	}
}
