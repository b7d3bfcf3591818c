package workflows_test

import (
	"slices"
	"testing"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
)

const severalEvents = `
  - id: await
    wait:
      for:
        payment_succeeded:
          - id: thanks
            send: { channel: email, template: hi }
        subscription_cancelled:
          when: event.props.reason != "moved"
          steps:
            - exit: cancelled
        delivery_skipped: []
      timeout: 5d
    on_timeout:
      - id: nudge
        send: { channel: sms, template: ping }
  - id: after
    update: { add_tags: [after] }
`

// TestWaitForSeveralEvents: the first event that arrives (and whose rule
// holds) chooses the branch; an event whose rule fails is ignored and the
// wait goes on; an empty branch goes on after the wait; no event in time
// runs on_timeout. The step record names the event.
func TestWaitForSeveralEvents(t *testing.T) {
	plan := playbook(t, "", severalEvents)
	moved := SimEvent{At: day, Event: rules.Event{ID: "x1", Name: "subscription_cancelled", Props: map[string]any{"reason": "moved"}}}
	for _, tc := range []struct {
		name     string
		events   []SimEvent
		status   activities.Status
		reason   string
		line     string
		sent     []string
		branch   string
		tagAfter bool
	}{
		{"payment", []SimEvent{moved, ev(2*day, "payment_succeeded", "p1")}, activities.StatusCompleted, "",
			"+48h0m0s await wait → payment_succeeded", []string{"hi"}, "payment_succeeded", true},
		{"cancelled", []SimEvent{{At: day, Event: rules.Event{ID: "x2", Name: "subscription_cancelled", Props: map[string]any{"reason": "price"}}}},
			activities.StatusExited, "cancelled", "+24h0m0s await wait → subscription_cancelled", nil, "subscription_cancelled", false},
		{"empty branch", []SimEvent{ev(3*day, "delivery_skipped", "d1")}, activities.StatusCompleted, "",
			"+72h0m0s await wait → delivery_skipped", nil, "delivery_skipped", true},
		{"timeout", []SimEvent{moved, ev(6*day, "payment_succeeded", "late")}, activities.StatusCompleted, "",
			"+120h0m0s await wait → timeout", []string{"ping"}, "timeout", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := simulate(t, plan, SimOptions{Events: tc.events})
			wantOutcome(t, r, tc.status, tc.reason)
			wantLine(t, r, "+0s await wait first of payment_succeeded, subscription_cancelled, delivery_skipped (timeout 5d)")
			wantLine(t, r, tc.line)
			msgs := r.Memory.Messages()
			if len(msgs) != len(tc.sent) {
				t.Fatalf("messages %+v, want %v", msgs, tc.sent)
			}
			for i, m := range msgs {
				if m.Template != tc.sent[i] {
					t.Errorf("message %d: %s, want %s", i, m.Template, tc.sent[i])
				}
			}
			var branch string
			for _, s := range r.Memory.Steps() {
				if s.StepID == "await" {
					branch = s.Branch
				}
			}
			if branch != tc.branch {
				t.Errorf("step record of await: branch %q, want %q", branch, tc.branch)
			}
			c, _ := r.Memory.Customer("c1")
			if got := slices.Contains(c.Tags, "after"); got != tc.tagAfter {
				t.Errorf("tag after: %v, want %v (tags %v)", got, tc.tagAfter, c.Tags)
			}
		})
	}
}

// TestResultCountsWhatBecameOfEachMessage: the journey's counters say
// what became of each send — sent, or suppressed with the reason — not
// just how many send steps ran.
func TestResultCountsWhatBecameOfEachMessage(t *testing.T) {
	plan := playbook(t, "", "  - send: { channel: email, template: hi }\n  - send: { channel: sms, template: ping }\n  - send: { channel: sms, template: ping }\n")
	c := customer("c1")
	c.Email = ""
	r := simulate(t, plan, SimOptions{Customer: c})
	got := r.Final.Counters.Messages
	if r.Final.Counters.Sends != 3 || got["sent"] != 2 || got["suppressed (no_address)"] != 1 || len(got) != 2 {
		t.Fatalf("sends %d, messages %v; want 3 sends: sent 2, suppressed (no_address) 1", r.Final.Counters.Sends, got)
	}
}
