package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the rapport command line with args and returns stdout,
// stderr and the error Execute returned.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&errOut)
	rootCmd.SetArgs(args)
	if v, _, err := rootCmd.Find([]string{"validate"}); err == nil {
		_ = v.Flags().Set("json", "false") // flags persist between Execute calls
	}
	err := rootCmd.Execute()
	return out.String(), errOut.String(), err
}

const goodPlaybook = `playbook: good
stage: care
trigger: { manual: true }
steps:
  - exit: done
`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestValidateAllGood(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.yaml": goodPlaybook, "sub/b.yml": strings.Replace(goodPlaybook, "good", "other", 1), "notes.txt": "ignored"})
	out, _, err := run(t, "validate", dir)
	if err != nil || out != "ok: 2 playbooks valid\n" {
		t.Errorf("out %q, err %v", out, err)
	}
}

func TestValidateReportsEveryError(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml": goodPlaybook,
		"b.yaml": "playbook: b\nstage: care\ntrigger: { manual: true }\nstpes: []\n",
		"c.yaml": "playbook: c\nstage: car\ntrigger: { manual: true }\nsteps:\n  - exit: done\n",
	})
	out, _, err := run(t, "validate", dir)
	var status exitStatus
	if !errors.As(err, &status) || status != 1 {
		t.Fatalf("err = %v, want exit status 1", err)
	}
	b, c := filepath.Join(dir, "b.yaml"), filepath.Join(dir, "c.yaml")
	want := b + `:4:1: unknown key "stpes" in playbook (did you mean "steps"?)` + "\n" +
		c + `:2:8: stage: "car" is not one of onboard, nurture, loyalty, reactivate, care, service (did you mean "care"?)` + "\n"
	if out != want {
		t.Errorf("out:\n%s\nwant:\n%s", out, want)
	}

	out, _, err = run(t, "validate", "--json", b)
	if err == nil {
		t.Error("--json with errors exited 0")
	}
	var diags []map[string]any
	if err := json.Unmarshal([]byte(out), &diags); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	if len(diags) != 1 || diags[0]["file"] != b || diags[0]["line"] != 4.0 || diags[0]["col"] != 1.0 || !strings.Contains(diags[0]["message"].(string), "stpes") {
		t.Errorf("--json = %v", diags)
	}
}

func TestValidateMissingPath(t *testing.T) {
	if _, _, err := run(t, "validate", filepath.Join(t.TempDir(), "nope.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestExplainPrintsPlan(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.yaml": goodPlaybook})
	out, _, err := run(t, "explain", filepath.Join(dir, "a.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"playbook good (version ", "trigger: manual", "0 exit_1 (line 5): exit done"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
}

// TestValidateDuplicateNames: two files with the same playbook: name are
// an error on the second, naming the first file and line; a file named
// twice on the command line (its folder and itself) is one playbook.
func TestValidateDuplicateNames(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml":     "# welcome series\n" + goodPlaybook,
		"sub/b.yaml": goodPlaybook,
		"c.yaml":     strings.Replace(goodPlaybook, "good", "other", 1),
	})
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "sub", "b.yaml")
	out, errOut, err := run(t, "validate", dir)
	var status exitStatus
	if !errors.As(err, &status) || status != 1 {
		t.Fatalf("err = %v, want exit status 1", err)
	}
	want := b + `:1:11: playbook: the name "good" is already used by ` + a + `:2:11; give each playbook its own name` + "\n"
	if out != want || errOut != "1 error in 1 playbook(s)\n" {
		t.Errorf("out:\n%s\nstderr: %s\nwant:\n%s", out, errOut, want)
	}

	out, _, err = run(t, "validate", "--json", a, b)
	if err == nil {
		t.Error("--json with a duplicate name exited 0")
	}
	var diags []jsonDiagnostic
	if err := json.Unmarshal([]byte(out), &diags); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	if len(diags) != 1 || diags[0] != (jsonDiagnostic{File: b, Line: 1, Col: 11, Message: `playbook: the name "good" is already used by ` + a + `:2:11; give each playbook its own name`, Severity: "error"}) {
		t.Errorf("--json = %+v", diags)
	}

	out, _, err = run(t, "validate", a, dir+string(filepath.Separator)+".", filepath.Join(dir, "c.yaml"))
	if err == nil || strings.Count(out, "already used") != 1 {
		t.Errorf("a file given twice: err %v, out %q; want only the duplicate in sub/b.yaml", err, out)
	}
	out, _, err = run(t, "validate", a, filepath.Join(dir, ".", "a.yaml"), filepath.Join(dir, "c.yaml"))
	if err != nil || out != "ok: 2 playbooks valid\n" {
		t.Errorf("one file named twice: err %v, out %q; want it validated once", err, out)
	}
}
