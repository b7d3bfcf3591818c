package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateUsesWorkspace checks that validate reads the directory's
// rapport.yaml as the declaration, not as a playbook, and checks the
// playbooks against it.
func TestValidateUsesWorkspace(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"rapport.yaml": "attrs:\n  balance: number\nevents:\n  purchase: {}\n",
		"a.yaml":       "playbook: a\nstage: care\ntrigger: { event: purchase }\nexit_when: customer.attrs.balanse > 3\nsteps:\n  - exit: done\n",
	})
	out, _, err := run(t, "validate", dir)
	want := filepath.Join(dir, "a.yaml") + `:4:27: exit_when: customer.attrs.balanse is not declared in ` + filepath.Join(dir, "rapport.yaml") + ` (did you mean "balance"?)`
	if err == nil || strings.TrimSpace(out) != want {
		t.Errorf("validate: err %v, output\n%s\nwant\n%s", err, out, want)
	}
}

// TestValidateReportsWorkspaceErrors checks that a bad declaration is
// reported at its place, and that a good one with a fitting playbook
// validates.
func TestValidateReportsWorkspaceErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"rapport.yaml": "attrs:\n  balance: numbr\n",
		"a.yaml":       goodPlaybook,
	})
	out, _, err := run(t, "validate", dir)
	want := filepath.Join(dir, "rapport.yaml") + `:2:12: balance: "numbr" is not one of text, number, boolean, date (did you mean "number"?)`
	if err == nil || strings.TrimSpace(out) != want {
		t.Errorf("validate: err %v, output\n%s\nwant\n%s", err, out, want)
	}
	good := writeFiles(t, map[string]string{"rapport.yaml": "attrs:\n  balance: number\n", "a.yaml": goodPlaybook})
	if out, _, err := run(t, "validate", good); err != nil || !strings.Contains(out, "ok: 1 playbook valid") {
		t.Errorf("good workspace: err %v, output %s", err, out)
	}
}
