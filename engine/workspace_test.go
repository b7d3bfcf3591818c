package engine

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rapport-crm/rapport/rules"
)

// testWorkspace is the declaration the typed cases compile against.
const testWorkspace = `attrs:
  balance: number
  favourite_category: text
events:
  purchase: { props: { sku: text, quantity: number } }
  signup: {}
  survey_answered:
    props: { quantity: text }
`

// diagLines formats err's diagnostics as "line:col: message".
func diagLines(t *testing.T, err error) []string {
	t.Helper()
	var ds Diagnostics
	if err != nil && !errors.As(err, &ds) {
		t.Fatalf("error %v is not Diagnostics", err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, strings.TrimPrefix(d.String(), d.File+":"))
	}
	return out
}

// TestTypedPlaybooks checks rules and event names against a declaration:
// each case lists every diagnostic, with its position.
func TestTypedPlaybooks(t *testing.T) {
	ws, err := ParseWorkspace("rapport.yaml", []byte(testWorkspace))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, src string
		want      []string
	}{
		{"unknown attr with did-you-mean", `playbook: t
stage: nurture
trigger: { event: purchase }
exit_when: customer.attrs.favourte_category == "shoes"
steps:
  - exit: done
`, []string{`4:27: exit_when: customer.attrs.favourte_category is not declared in rapport.yaml (did you mean "favourite_category"?)`}},
		{"type mismatch", `playbook: t
stage: nurture
trigger: { event: purchase }
entry:
  audience: customer.attrs.favourite_category > 3
steps:
  - exit: done
`, []string{`5:47: audience: customer.attrs.favourite_category is text; compare it with text, like customer.attrs.favourite_category > "3" (types as declared in rapport.yaml)`}},
		{"unknown prop of the trigger event", `playbook: t
stage: nurture
trigger:
  event: purchase
  when: event.props.skus == "A1"
steps:
  - exit: done
`, []string{`5:21: when: event.props.skus is not declared for the event purchase in rapport.yaml (did you mean "sku"?)`}},
		{"a wait's when reads the waited event's props", `playbook: t
stage: nurture
trigger: { event: signup }
steps:
  - wait: { event: survey_answered, timeout: 3d, when: event.props.quantity > 2 }
`, []string{`5:77: when: event.props.quantity is text; compare it with text, like event.props.quantity > "2" (types as declared in rapport.yaml)`}},
		{"unknown event names", `playbook: t
stage: nurture
trigger: { event: purchse }
goal: { event: refund, within: 7d }
steps:
  - wait: { event: survey_answerd, timeout: 3d }
`, []string{
			`3:19: event: event "purchse" is not declared in rapport.yaml (did you mean "purchase"?)`,
			`4:16: event: event "refund" is not declared in rapport.yaml; add it under events:`,
			`6:20: event: event "survey_answerd" is not declared in rapport.yaml (did you mean "survey_answered"?)`,
		}},
		{"elsewhere, props of any declared event", `playbook: t
stage: nurture
trigger: { event: purchase }
steps:
  - if: event.props.sku == "A1" and event.props.colour == "red"
    then: [ { exit: done } ]
  - update: { set: { attrs.balanse: "1" } }
`, []string{
			`5:49: if: event.props.colour is not declared for any event in rapport.yaml; declare it under the event's props: with its type`,
			`7:22: set: attrs.balanse is not declared in rapport.yaml (did you mean "balance"?)`,
		}},
		{"a declared number or boolean attr is set to a value of its type", `playbook: t
stage: nurture
trigger: { event: purchase }
steps:
  - update: { set: { attrs.balance: "'lots'", attrs.favourite_category: "'tea'" } }
  - update: { set: { attrs.balance: customer.attrs.balance + event.amount } }
`, []string{
			`5:38: set: attrs.balance is declared number in rapport.yaml; set it to a number, not 'lots'`,
		}},
		{"placeholders read declared data too", `playbook: t
stage: nurture
trigger: { event: purchase }
templates:
  hi:
    en: { subject: "{{ customer.attrs.favourte_category }} for you", text: "Code {{ coupon.code }}, {{ event.props.sku }}, {{ event.props.size }}" }
steps:
  - send: { channel: email, template: hi }
`, []string{
			`6:39: subject: placeholder: customer.attrs.favourte_category is not declared in rapport.yaml (did you mean "favourite_category"?)`,
			`6:139: text: placeholder: event.props.size is not declared for any event in rapport.yaml; declare it under the event's props: with its type`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Compile("t.yaml", []byte(tc.src)); err != nil {
				t.Fatalf("without a workspace the playbook must compile: %v", err)
			}
			_, err := CompileIn(ws, "t.yaml", []byte(tc.src))
			if got := diagLines(t, err); !slices.Equal(got, tc.want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// TestTypedPlaybookPlanUnchanged checks that a declaration changes
// diagnostics only: the plan of a playbook that fits it is Compile's.
func TestTypedPlaybookPlanUnchanged(t *testing.T) {
	ws, err := ParseWorkspace("rapport.yaml", []byte(testWorkspace))
	if err != nil {
		t.Fatal(err)
	}
	src := []byte("playbook: t\nstage: nurture\ntrigger: { event: purchase, when: event.props.quantity > 2 }\nsteps:\n  - exit: done\n")
	plain, err := Compile("t.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	typed, err := CompileIn(ws, "t.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if typed.Version != plain.Version || typed.Trigger.When.Source != plain.Trigger.When.Source {
		t.Errorf("typed plan differs: %+v vs %+v", typed.Trigger, plain.Trigger)
	}
}

// TestWorkspaceFileErrors checks the diagnostics of a bad declaration.
func TestWorkspaceFileErrors(t *testing.T) {
	src := `attrs:
  balance: numbr
  "first name": text
  vip: [boolean]
event:
  purchase: {}
events:
  Purchase: {}
  refund: { prop: { amount: number } }
`
	_, err := ParseWorkspace("rapport.yaml", []byte(src))
	want := []string{
		`2:12: balance: "numbr" is not one of text, number, boolean, date (did you mean "number"?)`,
		`3:3: attrs: "first name" is not a name a rule can read; use letters, digits and _ (like favourite_category)`,
		`4:8: vip: expected a string, got a list`,
		`5:1: unknown key "event" in the workspace file; it declares attrs and events (did you mean "events"?)`,
		`8:3: events: "Purchase" is not a valid event name: the event API stores it as purchase; write that`,
		`9:13: unknown key "prop" in event refund; an event declares its props (did you mean "props"?)`,
	}
	if got := diagLines(t, err); !slices.Equal(got, want) {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestWorkspaceAbsentOrEmpty checks that no file, or an empty one, declares
// nothing, so every name stays allowed.
func TestWorkspaceAbsentOrEmpty(t *testing.T) {
	ws, err := LoadWorkspace(t.TempDir())
	if ws != nil || err != nil {
		t.Fatalf("no file: got %v, %v; want nil, nil", ws, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, WorkspaceFile), []byte("# nothing yet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ws, err = LoadWorkspace(dir)
	if err != nil || ws.Attrs != nil || ws.Events != nil {
		t.Fatalf("empty file: got %+v, %v; want an empty declaration", ws, err)
	}
}

// TestSamplePlaybooksFitTheirWorkspace compiles the sample playbooks
// against playbooks/rapport.yaml, as `rapport validate playbooks/` does.
func TestSamplePlaybooksFitTheirWorkspace(t *testing.T) {
	ws, err := LoadWorkspace("../playbooks")
	if err != nil || ws == nil || ws.Attrs["balance"] != "" {
		t.Fatalf("load: %+v, %v", ws, err)
	}
	if ws.Attrs["do_not_contact"] != rules.TypeBoolean {
		t.Fatalf("do_not_contact is %q, want boolean", ws.Attrs["do_not_contact"])
	}
	files, _ := filepath.Glob("../playbooks/*.yaml")
	for _, f := range files {
		if IsWorkspaceFile(f) {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := CompileIn(ws, f, src); err != nil {
			t.Errorf("%s:\n%v", f, err)
		}
	}
}
