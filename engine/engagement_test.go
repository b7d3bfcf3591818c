package engine

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// engagementBase is a playbook with two send steps and a wait for an open;
// cases replace the marked lines.
const engagementBase = `playbook: t
stage: nurture
trigger: { event: signup }
templates:
  hi:
    en: { subject: "Hi", text: "Hello" }
steps:
  - id: welcome
    send: { channel: email, template: hi }
  - WAIT
  - id: again
    send: { channel: email, template: hi }
`

func compileEngagement(t *testing.T, wait string, ws *Workspace) (*Plan, []string) {
	t.Helper()
	src := strings.Replace(engagementBase, "- WAIT", wait, 1)
	p, err := CompileIn(ws, "t.yaml", []byte(src))
	var ds Diagnostics
	if err != nil && !errors.As(err, &ds) {
		t.Fatalf("error is %T: %v", err, err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, strings.TrimPrefix(d.String(), "t.yaml:"))
	}
	return p, got
}

func TestWaitOfMessage(t *testing.T) {
	p, diags := compileEngagement(t, `- wait: { event: message_opened, of: welcome, timeout: 3d }
    on_timeout:
      - if: message("welcome").status in ["sent", "delivered"]
        then: [{ exit: unopened }]`, nil)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	w := p.Steps[1].Wait
	if w.Of != "welcome" || !slices.Equal(p.Watched, []string{"welcome"}) {
		t.Errorf("of %q, watched %v; want welcome, [welcome]", w.Of, p.Watched)
	}
	for _, name := range []string{"message_opened", "message_bounced"} {
		if !p.Listens(name) {
			t.Errorf("a plan that watches a message does not listen for %s", name)
		}
	}
	if p.Listens("purchase") {
		t.Error("the plan listens for purchase")
	}
}

func TestWaitForSeveralOfMessages(t *testing.T) {
	p, diags := compileEngagement(t, `- wait:
      for:
        message_opened: { of: welcome, steps: [{ exit: opened }] }
        message_bounced: { of: welcome, when: event.props.bounce == "hard", steps: [{ exit: bounced }] }
        purchase: []
      timeout: 3d`, nil)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	var ofs []string
	for _, b := range p.Steps[1].Wait.Branches {
		ofs = append(ofs, b.Event+":"+b.Of)
	}
	if want := []string{"message_opened:welcome", "message_bounced:welcome", "purchase:"}; !slices.Equal(ofs, want) {
		t.Errorf("branches %v, want %v", ofs, want)
	}
}

func TestPlanWithoutEngagementWatchesNothing(t *testing.T) {
	p, diags := compileEngagement(t, `- wait: { event: message_opened, timeout: 3d }`, nil)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	if p.Watched != nil || p.Steps[1].Wait.Of != "" {
		t.Errorf("watched %v, of %q; want none", p.Watched, p.Steps[1].Wait.Of)
	}
	if p.Listens("message_clicked") {
		t.Error("listens for message_clicked, which nothing waits for")
	}
}

func TestEngagementDiagnostics(t *testing.T) {
	cases := []struct {
		name, wait string
		want       []string
	}{
		{"unknown step", `- wait: { event: message_opened, of: welcom, timeout: 3d }`,
			[]string{`10:40: of: there is no step "welcom" (did you mean "welcome"?)`}},
		{"not a send", `- id: pause
    wait: { event: message_opened, of: pause, timeout: 3d }`,
			[]string{`11:40: of: step "pause" is a wait step, not a send; name the send step whose message it is`}},
		{"send after the wait", `- wait: { event: message_opened, of: again, timeout: 3d }`,
			[]string{`10:40: of: send step "again" cannot run before this wait, so the wait could never hear of its message`}},
		{"not a message event", `- wait: { event: purchase, of: welcome, timeout: 3d }`,
			[]string{`10:30: of: only a message event is about a message (message_delivered, message_opened, message_clicked, message_bounced, message_complained, message_unsubscribed); purchase is not one`}},
		{"of on a wait for a time", `- wait: { until: "09:00", of: welcome }`,
			[]string{`10:29: of is only allowed in a wait for an event`}},
		{"of on a wait for several", `- wait: { for: { message_opened: [] }, of: welcome, timeout: 3d }`,
			[]string{`10:42: of: in a wait for several events, give each message event its own of (message_opened: { of: welcome, steps: [...] })`}},
		{"message() of an unknown step", `- if: message("welcom").opened
    then: [{ exit: x }]`,
			[]string{`10:9: message(): there is no step "welcom" (did you mean "welcome"?)`}},
		{"message() of a wait", `- id: pause
    if: customer.tier == "gold" || message("pause").opened
    then: [{ exit: x }]`,
			[]string{`11:36: message(): step "pause" is an if step, not a send; name the send step whose message it is`}},
		{"message() with no literal id", `- if: message(customer.name).opened
    then: [{ exit: x }]`,
			[]string{`10:9: if: message() takes the id of a send step in quotes, like message("welcome")`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, got := compileEngagement(t, tc.wait, nil)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("diagnostics:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
		})
	}
}

func TestMessageIsNotReadInTriggersOrTemplates(t *testing.T) {
	src := `playbook: t
stage: nurture
trigger: { event: signup, when: message("hi").opened }
templates:
  hi:
    en: { subject: "Hi", text: "Hello {{ message('hi').status }}" }
steps:
  - id: hi
    send: { channel: email, template: hi }
`
	_, err := Compile("t.yaml", []byte(src))
	want := []string{
		`t.yaml:3:33: when: message() is not available here: a trigger's rules decide whether a journey starts, before it has sent anything`,
		`t.yaml:6:42: text: placeholder: message() is not available in a template; branch on it with an if step and send another template`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("err:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

func TestMessageEventsAreBuiltIntoTheWorkspace(t *testing.T) {
	ws, err := ParseWorkspace("rapport.yaml", []byte("events:\n  signup: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, diags := compileEngagement(t, `- wait: { event: message_clicked, of: welcome, when: 'event.props.url != ""', timeout: 3d }`, ws)
	if len(diags) > 0 {
		t.Errorf("a declared workspace refuses a message event: %v", diags)
	}
	_, diags = compileEngagement(t, `- wait: { event: message_clicked, of: welcome, when: "event.props.ur == 1", timeout: 3d }`, ws)
	if len(diags) != 1 || !strings.Contains(diags[0], "event.props.ur is not declared for the event message_clicked") {
		t.Errorf("a misspelt message event prop: %v", diags)
	}
}
