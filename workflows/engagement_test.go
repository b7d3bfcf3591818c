package workflows_test

import (
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
	. "github.com/rapport-crm/rapport/workflows"
)

const engagementSteps = `
  - id: welcome
    send: { channel: email, template: hi }
  - id: await
    wait: { event: message_opened, of: welcome, timeout: 3d }
    on_event:
      - id: opened
        update: { add_tags: [opened] }
    on_timeout:
      - id: unopened
        if: message("welcome").status in ["sent", "delivered"]
        then:
          - id: resend
            send: { channel: sms, template: ping }
`

// messageEvent is a provider's report name about the message of send step
// of, a day into the simulation; props given override those the simulator
// fills in.
func messageEvent(name, of string, props map[string]any) SimEvent {
	return SimEvent{At: day, Event: rules.Event{ID: name + "-" + of, Name: name, Props: props}, Of: of}
}

func TestWaitOfMessageTakesItsOwnOpen(t *testing.T) {
	r := simulate(t, playbook(t, "", engagementSteps), SimOptions{Events: []SimEvent{messageEvent("message_opened", "welcome", nil)}})
	wantLine(t, r, "+0s await wait event message_opened of welcome (timeout 3d)")
	wantLine(t, r, "+24h0m0s await wait → event")
	wantLine(t, r, "+24h0m0s opened update +opened")
	if m := r.Final.Messages["welcome"]; m.Status != "opened" || !m.Opened || !m.Delivered {
		t.Errorf("message(welcome) = %+v, want opened", m)
	}
}

func TestWaitOfMessageIgnoresOtherMessages(t *testing.T) {
	// An open of another enrollment's message, of another step, and a
	// delivery do not end the wait; the message was delivered, not
	// opened, so the resend goes out.
	events := []SimEvent{
		messageEvent("message_opened", "welcome", map[string]any{"enrollment_id": "another-enrollment"}),
		messageEvent("message_opened", "resend", nil),
		messageEvent("message_delivered", "welcome", nil),
	}
	events[1].Event.Props = map[string]any{"step_id": "welcome", "enrollment_id": "x"}
	r := simulate(t, playbook(t, "", engagementSteps), SimOptions{Events: events})
	wantLine(t, r, "+72h0m0s await wait → timeout")
	wantLine(t, r, "+72h0m0s unopened if → then")
	wantLine(t, r, "+72h0m0s resend send sms ping (locale en)")
	if m := r.Final.Messages["welcome"]; m.Status != "delivered" || m.Opened {
		t.Errorf("message(welcome) = %+v, want delivered", m)
	}
}

func TestNoResendToABounce(t *testing.T) {
	bounce := messageEvent("message_bounced", "welcome", map[string]any{"bounce": "hard"})
	r := simulate(t, playbook(t, "", engagementSteps), SimOptions{Events: []SimEvent{bounce}})
	wantLine(t, r, "+72h0m0s unopened if → else")
	for _, m := range r.Memory.Messages() {
		if m.Template == "ping" {
			t.Errorf("resent to a bounced address: %+v", m)
		}
	}
}

func TestNoResendWhenTheWelcomeWasNotSent(t *testing.T) {
	c := customer("c1")
	c.Email = ""
	r := simulate(t, playbook(t, "", engagementSteps), SimOptions{Customer: c})
	wantLine(t, r, "+72h0m0s unopened if → else")
	if m := r.Final.Messages["welcome"]; m.Status != string(activities.SendSuppressed) {
		t.Errorf("message(welcome) = %+v, want suppressed", m)
	}
}

func TestWaitOfMessageOpenedBeforeTheWait(t *testing.T) {
	// Opened during the day the journey waits before it asks: the wait
	// for the open ends at once.
	steps := `
  - id: welcome
    send: { channel: email, template: hi }
  - wait: 2d
  - id: await
    wait:
      for:
        message_clicked: { of: welcome, steps: [{ exit: clicked }] }
        message_opened: { of: welcome, steps: [{ exit: opened }] }
      timeout: 3d
`
	r := simulate(t, playbook(t, "", steps), SimOptions{Events: []SimEvent{messageEvent("message_opened", "welcome", nil)}})
	wantLine(t, r, "+48h0m0s await event message_opened of welcome already received")
	wantOutcome(t, r, activities.StatusExited, "opened")
}

func TestWaitOfMessageIgnoresAnEarlierPassesMessage(t *testing.T) {
	// The welcome is sent on each pass of the loop; an open of the first
	// pass's message (its message_key) that comes during the second
	// pass's wait does not end that wait.
	steps := `
  - id: welcome
    send: { channel: email, template: hi }
  - id: await
    wait: { event: message_opened, of: welcome, timeout: 1d }
    on_event:
      - exit: opened
  - goto: welcome
`
	plan := playbook(t, "", steps)
	enrollment := SimulatedEnrollmentID(WorkflowID(plan.Name, "c1"), DefaultSimStart)
	late := messageEvent("message_opened", "welcome", map[string]any{"message_key": enrollment + "/welcome/1"})
	late.At = day + 12*time.Hour
	current := messageEvent("message_opened", "welcome", map[string]any{"message_key": enrollment + "/welcome/2/email"})
	current.Event.ID, current.At = "current", day+18*time.Hour
	r := simulate(t, plan, SimOptions{Events: []SimEvent{late, current}})
	wantLine(t, r, "+42h0m0s await wait → event")
	wantOutcome(t, r, activities.StatusExited, "opened")
}
