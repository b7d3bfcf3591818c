package main

import (
	"errors"
	"strings"
	"testing"
)

// preview prints the rendered variants and the flags; it exits 0 unless
// told --strict, and then 1 when anything is flagged.
func TestPreviewCommand(t *testing.T) {
	args := []string{"preview", "--at", "2026-01-05T09:00:00Z", "--customer", "", "--locale", "de", "--strict=false", "../../playbooks/onboarding.yaml", "welcome"}
	out, err := runRapport(t, args...)
	if err != nil || !strings.Contains(out, "subject: Welcome to the club, Ada\n") || !strings.Contains(out, `no variant for locale "de"`) {
		t.Fatalf("err %v\n%s", err, out)
	}
	args[7] = "--strict"
	out, err = runRapport(t, args...)
	var status exitStatus
	if !errors.As(err, &status) || status != 1 {
		t.Fatalf("--strict with a flag: err = %v\n%s", err, out)
	}
	args[6] = "zh"
	if out, err = runRapport(t, args...); err != nil || !strings.Contains(out, "0 flags") {
		t.Fatalf("--strict without flags: err = %v\n%s", err, out)
	}
	if _, err = runRapport(t, "preview", "--locale", "", "--strict=false", "--at", "soon", "../../playbooks/onboarding.yaml"); err == nil || !strings.Contains(err.Error(), "--at") {
		t.Errorf("bad --at: %v", err)
	}
}
