package main

import (
	"errors"
	"strings"
	"testing"
)

// TestDeployRefusesInvalidPlaybooks: one bad file among good ones prints
// its errors like validate and deploys nothing — the command fails before
// it connects to anything (DATABASE_URL points nowhere here).
func TestDeployRefusesInvalidPlaybooks(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none?sslmode=disable")
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
	dir := writeFiles(t, map[string]string{
		"good.yaml": goodPlaybook,
		"bad.yaml":  strings.Replace(goodPlaybook, "playbook: good", "playbook: bad\nstgae: care", 1),
	})
	out, errOut, err := run(t, "deploy", dir)
	var status exitStatus
	if !errors.As(err, &status) || status != 1 {
		t.Fatalf("deploy with a bad playbook: err %v, want exit status 1", err)
	}
	if !strings.Contains(out, "bad.yaml:2:1:") || !strings.Contains(out, "stgae") {
		t.Errorf("output %q lacks the positioned error", out)
	}
	if !strings.Contains(errOut, "nothing deployed") {
		t.Errorf("stderr %q does not say nothing was deployed", errOut)
	}
}

func TestDeployRefusesDuplicateNames(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.yaml": goodPlaybook, "b.yaml": goodPlaybook})
	out, _, err := run(t, "deploy", dir)
	if err == nil || !strings.Contains(out, `b.yaml:1:11: playbook: the name "good" is already used by `) {
		t.Errorf("duplicate playbook names: err %v, output %q", err, out)
	}
}
