package workflows_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	. "github.com/rapport-crm/rapport/workflows"
)

// TestLongDeferralUnderEventStormStaysBounded: a send deferred 30 days by
// the frequency cap while 5,000 events arrive continues as new as often as
// its history fills, loses no event (every one is counted once, the last
// one still converts) and sends the deferred message once, when the cap
// allows it.
func TestLongDeferralUnderEventStormStaysBounded(t *testing.T) {
	// exit_when makes the journey listen to every event, so the
	// dispatcher (and the simulator) signals the storm's visits.
	head := `goal: { event: purchase, within: 60d }
exit_when: event.name == "stop"
policies:
  frequency_cap: { max: 1, per: 30d, action: defer }`
	steps := `
  - send: { channel: email, template: hi }
  - send: { channel: sms, template: ping }
  - wait: { event: purchase, timeout: 40d }
`
	plan := playbook(t, head, steps)
	const storm = 5000
	var events []SimEvent
	for i := range storm {
		// From 1h after the first send, every 8 minutes: 27.8 days.
		events = append(events, ev(time.Hour+time.Duration(i)*8*time.Minute, "visit", fmt.Sprintf("v%d", i)))
	}
	events = append(events, ev(35*day, "purchase", "p1"))
	r := simulate(t, plan, SimOptions{Events: events})
	// The goal records the purchase and the journey goes on: the wait
	// takes it too, and the journey completes, converted in a later run
	// than the one it entered in.
	wantOutcome(t, r, activities.StatusCompleted, "")
	if e := r.Memory.Enrollments(); !r.Final.Converted || len(e) != 1 || !e[0].ConvertedAt.Equal(r.Start.Add(35*day)) {
		t.Fatalf("converted %v, enrollment %+v: want converted at +35d", r.Final.Converted, e)
	}
	if r.Final.Counters.Events != storm+1 {
		t.Fatalf("%d events counted, want %d: events were lost at continue-as-new", r.Final.Counters.Events, storm+1)
	}
	if r.Runs < 5 {
		t.Fatalf("%d runs: a 30-day deferral under %d events should continue as new", r.Runs, storm)
	}
	for i, n := range r.RunEvents {
		if n > MaxHistory+20 {
			t.Errorf("run %d: about %d history events, over the bound %d", i+1, n, MaxHistory)
		}
	}
	msgs := r.Memory.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2 (the deferred one once): %+v", len(msgs), msgs)
	}
	sms := msgs[1]
	if sms.Channel != "sms" || sms.Status != activities.SendSent {
		t.Fatalf("second message %+v, want the deferred sms sent", sms)
	}
	// Resumed in later runs, the deferred send keeps its first visit's
	// idempotency key.
	if want := "/" + plan.Steps[1].ID + "/1"; !strings.HasSuffix(sms.Key, want) {
		t.Fatalf("deferred sms key %s, want the first visit's (…%s)", sms.Key, want)
	}
	if got, want := sms.At.Sub(msgs[0].At), 30*day; got < want || got > want+time.Hour {
		t.Fatalf("deferred sms sent %v after the email, want 30 days (the cap's window)", got)
	}
	wantLine(t, r, "frequency cap: deferred until")
	cuts := 0
	for _, l := range r.Log {
		if l.Kind == "continue-as-new" && l.StepID == plan.Steps[1].ID {
			cuts++
		}
	}
	if cuts < 4 {
		t.Fatalf("%d continue-as-new at the deferred send %s, want the deferral itself cut:\n%s", cuts, plan.Steps[1].ID, trace(r))
	}
}

// TestQuietHoursDeferralResumesAfterContinueAsNew: a marketing send held
// by quiet hours overnight while 2,000 events arrive continues as new
// mid-deferral and sends once, at the end of the quiet window, in the next
// run.
func TestQuietHoursDeferralResumesAfterContinueAsNew(t *testing.T) {
	head := `exit_when: event.name == "stop"
policies:
  quiet_hours: { start: "21:00", end: "08:00" }`
	plan := playbook(t, head, "  - send: { channel: email, template: hi }\n")
	start := time.Date(2026, 3, 10, 22, 0, 0, 0, time.UTC)
	var events []SimEvent
	for i := range 2000 {
		events = append(events, ev(time.Minute+time.Duration(i)*15*time.Second, "visit", fmt.Sprintf("v%d", i)))
	}
	r := simulate(t, plan, SimOptions{Start: start, Events: events})
	wantOutcome(t, r, activities.StatusCompleted, "")
	if r.Runs < 2 {
		t.Fatalf("%d run(s): want the quiet-hours deferral cut by continue-as-new", r.Runs)
	}
	msgs := r.Memory.Messages()
	if len(msgs) != 1 || msgs[0].Status != activities.SendSent {
		t.Fatalf("messages %+v, want one sent", msgs)
	}
	if want := "/" + plan.Steps[0].ID + "/1"; !strings.HasSuffix(msgs[0].Key, want) {
		t.Fatalf("key %s, want the first visit's (…%s)", msgs[0].Key, want)
	}
	if want := time.Date(2026, 3, 11, 8, 0, 0, 0, time.UTC); !msgs[0].At.Equal(want) {
		t.Fatalf("sent at %v, want the end of quiet hours %v", msgs[0].At, want)
	}
	if r.Final.Counters.Events != 2000 || r.Final.Counters.Sends != 1 {
		t.Fatalf("counters %+v, want 2000 events and 1 send step", r.Final.Counters)
	}
}
