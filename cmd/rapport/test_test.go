package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// runTestCmd runs `rapport test` with fresh flags and returns its output
// with the timings replaced by T, so it can be compared line by line.
func runTestCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newTestCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return regexp.MustCompile(`\d+\.\d\ds`).ReplaceAllString(out.String(), "T"), err
}

// A passing and a deliberately failing case: the failure names each
// expectation that did not hold at its line, with want and got; the exit
// status is 1.
func TestTestCommand(t *testing.T) {
	got, err := runTestCmd(t, "-v", "testdata/ptest")
	var status exitStatus
	if !errors.As(err, &status) || status != 1 {
		t.Fatalf("err = %v, want exit status 1\n%s", err, got)
	}
	want := `--- PASS: thanks/thanked at once (T)
--- FAIL: thanks/wrong on purpose (T)
    thanks_test.yaml:13: sent: want thanks on email at +1d (within 1h), got thanks on email at +0s
        messages: +0s thanks (email)
    thanks_test.yaml:14: points: want a net change of +40, got +50 (entries [50])
    thanks_test.yaml:15: outcome: want exited, got completed
FAIL	testdata/ptest/tests/thanks_test.yaml	T
FAIL
`
	if got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

// --run picks the passing case only: the command passes, printing only
// the file's ok line.
func TestTestCommandPasses(t *testing.T) {
	got, err := runTestCmd(t, "--run", "thanked", "testdata/ptest/tests/thanks_test.yaml")
	if err != nil || got != "ok  \ttestdata/ptest/tests/thanks_test.yaml\tT\n" {
		t.Errorf("err = %v, output:\n%s", err, got)
	}
}

// --json prints one object per case with its failures at their lines.
func TestTestCommandJSON(t *testing.T) {
	got, err := runTestCmd(t, "--json", "testdata/ptest")
	if err == nil {
		t.Fatalf("a failing case passed:\n%s", got)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per case, got:\n%s", got)
	}
	var c struct {
		Case     string
		Pass     bool
		Failures []struct{ Line int }
	}
	if err := json.Unmarshal([]byte(lines[1]), &c); err != nil {
		t.Fatal(err)
	}
	if c.Case != "wrong on purpose" || c.Pass || len(c.Failures) != 3 || c.Failures[0].Line != 13 {
		t.Errorf("second case: %+v", c)
	}
}

// A test file that does not parse fails with file:line:col diagnostics
// (a typo gets a hint) and does not run.
func TestTestCommandBadFile(t *testing.T) {
	got, err := runTestCmd(t, "testdata/ptest_bad/tests/thanks_test.yaml")
	if err == nil {
		t.Fatalf("a bad file passed:\n%s", got)
	}
	for _, want := range []string{
		`testdata/ptest_bad/tests/thanks_test.yaml:6:7: unknown key "not_snet" in expect (did you mean "not_sent"?)`,
		`testdata/ptest_bad/tests/thanks_test.yaml:7:16: outcome: "exitted" is not one of`,
		"FAIL\ttestdata/ptest_bad/tests/thanks_test.yaml [setup failed]",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// Every sample playbook's tests pass: `make test` runs them through go test.
func TestSamplePlaybookTests(t *testing.T) {
	if got, err := runTestCmd(t, "../../playbooks"); err != nil {
		t.Errorf("rapport test playbooks: %v\n%s", err, got)
	}
}
