package engine

import (
	"os"
	"path/filepath"
	"testing"
)

// samplePaths lists every playbook in playbooks/, so new samples are
// tested without touching this file; the workspace file is not one.
func samplePaths(tb testing.TB) []string {
	tb.Helper()
	var paths []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join("..", "playbooks", pattern))
		if err != nil {
			tb.Fatal(err)
		}
		for _, path := range m {
			if !IsWorkspaceFile(path) {
				paths = append(paths, path)
			}
		}
	}
	if len(paths) == 0 {
		tb.Fatal("no playbooks found in ../playbooks")
	}
	return paths
}

func TestSamplesCompile(t *testing.T) {
	names := map[string]string{}
	for _, path := range samplePaths(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			p, err := CompileFile(path)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			if other, dup := names[p.Name]; dup {
				t.Errorf("playbook name %q is also used by %s", p.Name, other)
			}
			names[p.Name] = path
			if len(p.Version) != 12 {
				t.Errorf("version %q is not 12 hex characters", p.Version)
			}
			if len(p.Steps) == 0 || len(p.StepIndex) != len(p.Steps) {
				t.Errorf("steps %d, index %d", len(p.Steps), len(p.StepIndex))
			}
			src, _ := os.ReadFile(path)
			again, err := Compile(path, src)
			if err != nil || again.Version != p.Version {
				t.Errorf("recompiling gives version %v, err %v", again, err)
			}
		})
	}
}
