package playbooktest

import (
	"os"
	"strings"
	"testing"

	"github.com/rapport-crm/rapport/engine"
)

// Mistakes in a test file are reported at their line and column, every
// one of them, with a typo hint where one fits.
func TestParseDiagnostics(t *testing.T) {
	src := `playbook: winback
customer: { id: c-1, tierr: gold }
cases:
  - name: a
    events:
      - { at: 1x, event: purchase }
    expect:
      sent: [{ template: miss_you, within: 1h }]
      points: lots
  - name: a
    expect: { holdout: maybe }
  - name: b
    in_global_control: 5
    expect: {}
`
	_, err := Parse("w_test.yaml", []byte(src))
	if n := strings.Count(err.Error(), "tierr"); n != 1 {
		t.Errorf("the unknown customer key is reported %d times, want once:\n%v", n, err)
	}
	for _, want := range []string{
		`w_test.yaml:2:22: unknown key "tierr" in customer (did you mean "tier"?)`,
		"w_test.yaml:6:9: event 1: at:",
		"w_test.yaml:8:44: within: give at too",
		"w_test.yaml:9:15: points: expected a whole number",
		`w_test.yaml:10:5: two cases named "a" (the first at line 4)`,
		"w_test.yaml:11:24: holdout: expected true or false",
		"w_test.yaml:13:24: in_global_control: expected true or false",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// An expectation naming a template, channel or assignee the playbook does
// not have is refused, so it cannot pass for ever.
func TestCheckRefusesUnknownNames(t *testing.T) {
	src, err := os.ReadFile("../playbooks/winback.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := engine.Compile("winback.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse("w_test.yaml", []byte(`playbook: winback
cases:
  - name: a
    expect:
      sent: [{ template: miss_you, channel: sms }]
      not_sent: [last_chanse]
      tasks: [{ assignee: manager }]
`))
	if err != nil {
		t.Fatal(err)
	}
	err = Check(f, plan)
	for _, want := range []string{
		"w_test.yaml:5:14: sent: playbook winback sends miss_you on [email], not on sms",
		`w_test.yaml:6:18: not_sent: playbook winback sends no template last_chanse (did you mean "last_chance"?)`,
		"w_test.yaml:7:15: tasks: playbook winback has no task for manager",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// A bad value in the file's customer is reported once, where it is
// written, in plain words; not at every case that inherits it.
func TestParseCustomerValueAtItsPlace(t *testing.T) {
	src := `playbook: winback
customer:
  id: c-1
  points: lots
cases:
  - name: a
    expect: { sends: 0 }
  - name: b
    customer: { churn_risk: 1 }
    expect: { sends: 0 }
`
	_, err := Parse("w_test.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		"w_test.yaml:4:11: customer: points: expected a whole number, not text",
		"w_test.yaml:9:29: customer: churn_risk: expected true or false, not a number",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "points"); n != 1 {
		t.Errorf("points reported %d times, want once:\n%s", n, msg)
	}
}

// A bad id in the file's customer is reported once, at the id, not again
// as a missing id at every case.
func TestParseCustomerBadIDOnce(t *testing.T) {
	src := `playbook: winback
customer:
  id: [c-1]
cases:
  - name: a
    expect: { sends: 0 }
  - name: b
    expect: { sends: 0 }
`
	_, err := Parse("w_test.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "w_test.yaml:3:7: customer: id: expected text, not a list") || strings.Count(msg, "id") != 1 {
		t.Errorf("want the id reported once, at 3:7:\n%s", msg)
	}
}
