package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func runRapport(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&out)
	rootCmd.SetArgs(args)
	err := rootCmd.Execute()
	return out.String(), err
}

// The command prints what workflows.Simulate prints (its golden files are
// checked in the workflows package), with the flags wired up.
func TestSimulateCommand(t *testing.T) {
	got, err := runRapport(t, "simulate", "../../playbooks/winback.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../workflows/testdata/simulate/winback.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("output differs from the golden file:\n%s", got)
	}
	got, err = runRapport(t, "simulate", "--json", "--events", "../../workflows/testdata/simulate/winback.events.yaml",
		"--start", "2026-03-01T00:00:00Z", "../../playbooks/winback.yaml")
	if err != nil || !strings.Contains(got, `"at":"2026-03-01T00:00:00Z"`) || !strings.Contains(got, `"converted":true`) || !strings.Contains(got, `"outcome":"exited","reason":"won_back"`) {
		t.Fatalf("--json --events --start: %v\n%s", err, got)
	}
}

func TestSimulateCommandBadInput(t *testing.T) {
	if _, err := runRapport(t, "simulate", "--start", "tomorrow", "../../playbooks/winback.yaml"); err == nil || !strings.Contains(err.Error(), "--start") {
		t.Errorf("bad --start: err = %v", err)
	}
	if _, err := runRapport(t, "simulate", "--start", "2026-01-05T09:00:00Z", "--customer", "missing.json", "../../playbooks/winback.yaml"); err == nil || !strings.Contains(err.Error(), "--customer") {
		t.Errorf("missing customer file: err = %v", err)
	}
}
