package engine

import (
	"errors"
	"strings"
	"testing"
)

const actionPaths = `playbook: milk
stage: nurture
trigger:
  events:
    - subscription_started
    - { event: payment_failed, when: "event.amount > 0" }
templates:
  hi:
    en: { text: "Hello {{ customer.name }}" }
steps:
  - id: await
    wait:
      for:
        payment_succeeded:
          - id: thanks
            send: { channel: sms, template: hi }
        subscription_cancelled:
          when: event.props.reason != "moved"
          steps:
            - exit: cancelled
        delivery_skipped: []
      timeout: 2d
    on_timeout:
      - id: remind
        send: { channel: sms, template: hi }
  - id: after
    exit: done
`

// TestWaitForSeveralEvents: each event of a wait's for gets its branch,
// an empty one goes on after the wait, and on_timeout has its own.
func TestWaitForSeveralEvents(t *testing.T) {
	p, err := Compile("milk.yaml", []byte(actionPaths))
	if err != nil {
		t.Fatal(err)
	}
	w := p.Steps[p.StepIndex["await"]].Wait
	if w.Kind != WaitEvents || len(w.Branches) != 3 || w.Timeout.Hours() != 48 {
		t.Fatalf("wait %+v", w)
	}
	want := []struct {
		event, start string
		when         bool
	}{{"payment_succeeded", "thanks", false}, {"subscription_cancelled", "exit_3", true}, {"delivery_skipped", "after", false}}
	for i, b := range w.Branches {
		if b.Event != want[i].event || p.Steps[b.Start].ID != want[i].start || (b.When != nil) != want[i].when {
			t.Errorf("branch %d: %s -> %s (when %v), want %+v", i, b.Event, p.Steps[b.Start].ID, b.When != nil, want[i])
		}
	}
	if p.Steps[w.OnTimeout].ID != "remind" || p.Steps[p.StepIndex["thanks"]].Next != p.StepIndex["after"] {
		t.Errorf("on_timeout %d, thanks goes on to %d", w.OnTimeout, p.Steps[p.StepIndex["thanks"]].Next)
	}
	if got := strings.Join(w.Events(), ","); got != "payment_succeeded,subscription_cancelled,delivery_skipped" {
		t.Errorf("events %s", got)
	}
	for _, name := range []string{"payment_succeeded", "subscription_cancelled", "delivery_skipped"} {
		if !p.Listens(name) {
			t.Errorf("the plan does not listen for %s", name)
		}
	}
	if p.Listens("subscription_started") {
		t.Error("the plan listens for its trigger event, which no wait or goal names")
	}
	var buf strings.Builder
	if err := Explain(&buf, p); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`trigger: event subscription_started or event payment_failed when [event.amount > 0]`,
		`wait for the first of: payment_succeeded -> thanks, subscription_cancelled when [event.props.reason != "moved"] -> exit_3, delivery_skipped -> after; timeout 2d -> remind`,
	} {
		if !strings.Contains(buf.String(), line) {
			t.Errorf("explain lacks %q:\n%s", line, buf.String())
		}
	}
}

// TestTriggerOnSeveralEvents: the events form lists the trigger's events,
// each with its own when; a single event is the one-item list.
func TestTriggerOnSeveralEvents(t *testing.T) {
	p, err := Compile("milk.yaml", []byte(actionPaths))
	if err != nil {
		t.Fatal(err)
	}
	ets := p.Trigger.EventTriggers()
	if p.Trigger.Kind != TriggerEvent || len(ets) != 2 || ets[0].Event != "subscription_started" || ets[0].When != nil ||
		ets[1].Event != "payment_failed" || ets[1].When == nil || ets[1].When.Source != "event.amount > 0" {
		t.Fatalf("trigger %+v", p.Trigger)
	}
	one, err := Compile("t.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if ets := one.Trigger.EventTriggers(); len(ets) != 1 || ets[0].Event != "signup" {
		t.Fatalf("single event trigger: %+v", ets)
	}
	// A pinned plan with several trigger events decodes to the same.
	pin, err := Pin(p)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodePlan(pin)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Trigger.Events) != 2 || len(back.Steps[back.StepIndex["await"]].Wait.Branches) != 3 {
		t.Fatalf("decoded %+v", back.Trigger)
	}
}

func TestActionPathErrors(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"on_event with several events", "    on_timeout:", "    on_event: [{ exit: x }]\n    on_timeout:",
			"23:5: on_event is for a wait for one event; in a wait for several, list each event's steps under for"},
		{"no timeout", "      timeout: 2d\n", "",
			"13:7: wait: waiting for events needs a timeout (e.g. timeout: 7d)"},
		{"an event twice", "        delivery_skipped: []", "        payment_succeeded: []",
			"21:9: for: payment_succeeded is listed twice; give each event one branch (use if inside it to tell cases apart)"},
		{"when beside for", "      timeout: 2d\n", "      timeout: 2d\n      when: \"true\"\n",
			"23:7: when: in a wait for several events, give each event its own when (payment_failed: { when: …, steps: [...] })"},
		{"for with event", "      timeout: 2d\n", "      timeout: 2d\n      event: purchase\n",
			"23:7: wait: for stands alone; use one of until, event, for and after_entry, not for and event"},
		{"for is a list", "      for:\n", "      for: [payment_succeeded]\n      old_for:\n",
			"13:12: for: expected the events to wait for, each with its steps (payment_succeeded: [...]), got a list"},
		{"bad branch key", "          when: event.props.reason", "          if: event.props.reason",
			"18:11: unknown key \"if\" in subscription_cancelled"},
		{"trigger event twice", "    - subscription_started\n", "    - subscription_started\n    - subscription_started\n",
			"6:7: events: subscription_started is listed twice; list each event once (one when per event)"},
		{"trigger when beside events", "  events:\n", "  when: \"true\"\n  events:\n",
			"4:3: when is only allowed with an event trigger (with events, give each event its own when)"},
		{"trigger events empty", "  events:\n    - subscription_started\n    - { event: payment_failed, when: \"event.amount > 0\" }\n", "  events: []\n",
			"4:11: events: expected a list of events, like [payment_failed, subscription_cancelled], got a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(actionPaths, tc.old, tc.new, 1)
			if src == actionPaths {
				t.Fatalf("%q not in the playbook", tc.old)
			}
			_, err := Compile("milk.yaml", []byte(src))
			var ds Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("err = %v, want diagnostics", err)
			}
			var got []string
			for _, d := range ds {
				got = append(got, strings.TrimPrefix(d.String(), "milk.yaml:"))
			}
			if !strings.Contains(strings.Join(got, "\n"), tc.want) {
				t.Errorf("diagnostics:\n%s\nwant one:\n%s", strings.Join(got, "\n"), tc.want)
			}
		})
	}
}
