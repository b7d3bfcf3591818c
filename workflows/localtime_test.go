package workflows_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	. "github.com/rapport-crm/rapport/workflows"
)

// TestLocalTimeAcrossDST: a local time skipped by a jump forward is the
// first instant after the gap; one repeated by a jump back is its first
// occurrence; ordinary days and zones without DST are exact.
func TestLocalTimeAcrossDST(t *testing.T) {
	la, berlin, kolkata := rules.Location("America/Los_Angeles"), rules.Location("Europe/Berlin"), rules.Location("Asia/Kolkata")
	for _, tc := range []struct {
		name      string
		y         int
		mo        time.Month
		d, h, m   int
		loc       *time.Location
		wantUTC   string
		wantLocal string
	}{
		{"LA spring forward, 02:30 does not exist", 2026, time.March, 8, 2, 30, la, "2026-03-08T10:00:00Z", "03:00 PDT"},
		{"LA spring forward, 02:00 does not exist", 2026, time.March, 8, 2, 0, la, "2026-03-08T10:00:00Z", "03:00 PDT"},
		{"LA spring forward, 01:59 exists", 2026, time.March, 8, 1, 59, la, "2026-03-08T09:59:00Z", "01:59 PST"},
		{"LA spring forward, 03:00 exists", 2026, time.March, 8, 3, 0, la, "2026-03-08T10:00:00Z", "03:00 PDT"},
		{"LA fall back, 01:30 twice: the first", 2026, time.November, 1, 1, 30, la, "2026-11-01T08:30:00Z", "01:30 PDT"},
		{"LA fall back, 02:30 once", 2026, time.November, 1, 2, 30, la, "2026-11-01T10:30:00Z", "02:30 PST"},
		{"Berlin spring forward, 02:30 does not exist", 2026, time.March, 29, 2, 30, berlin, "2026-03-29T01:00:00Z", "03:00 CEST"},
		{"Berlin fall back, 02:30 twice: the first", 2026, time.October, 25, 2, 30, berlin, "2026-10-25T00:30:00Z", "02:30 CEST"},
		{"Kolkata, no DST", 2026, time.March, 8, 2, 30, kolkata, "2026-03-07T21:00:00Z", "02:30 IST"},
		{"ordinary day", 2026, time.June, 1, 9, 0, la, "2026-06-01T16:00:00Z", "09:00 PDT"},
	} {
		got := rules.LocalTime(tc.y, tc.mo, tc.d, tc.h, tc.m, tc.loc)
		if got.UTC().Format(time.RFC3339) != tc.wantUTC || got.Format("15:04 MST") != tc.wantLocal {
			t.Errorf("%s: %s (%s), want %s (%s)", tc.name, got.UTC().Format(time.RFC3339), got.Format("15:04 MST"), tc.wantUTC, tc.wantLocal)
		}
	}
}

// TestWaitUntilOnTheSpringForwardDay: wait until 02:30 on the day 02:30
// does not exist in Los Angeles fires at 03:00 PDT, not at 01:30 PST.
func TestWaitUntilOnTheSpringForwardDay(t *testing.T) {
	la := rules.Location("America/Los_Angeles")
	now := time.Date(2026, 3, 8, 0, 15, 0, 0, la)
	got := NextLocal(now, la, engine.TimeOfDay{Minutes: 2*60 + 30})
	if want := time.Date(2026, 3, 8, 10, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("wait until 02:30 from %v fires at %v (%s), want %v", now, got, got.Format("15:04 MST"), want)
	}
	plan := playbook(t, "", "  - wait: { until: \"02:30\" }\n  - send: { channel: email, template: hi }\n")
	c := customer("c1")
	c.Timezone = "America/Los_Angeles"
	r := simulate(t, plan, SimOptions{Customer: c, Start: now})
	if msgs := r.Memory.Messages(); len(msgs) != 1 || !msgs[0].At.Equal(time.Date(2026, 3, 8, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("messages %+v, want one sent at 03:00 PDT (10:00 UTC)", msgs)
	}
}

// TestCalendarWaits: a wait of 1d across the spring-forward night keeps the
// customer's local time (23 hours), a wait after entry counts from the
// entry on the calendar, and a wait-for-event timeout of 1mo ends on the
// same day of the next month.
func TestCalendarWaits(t *testing.T) {
	la := rules.Location("America/Los_Angeles")
	c := customer("c1")
	c.Timezone = "America/Los_Angeles"
	start := time.Date(2026, 3, 7, 9, 0, 0, 0, la)

	plan := playbook(t, "", "  - wait: 1d\n  - send: { channel: email, template: hi }\n")
	r := simulate(t, plan, SimOptions{Customer: c, Start: start})
	if m := r.Memory.Messages(); len(m) != 1 || !m[0].At.Equal(time.Date(2026, 3, 8, 9, 0, 0, 0, la)) {
		t.Fatalf("wait 1d from %v: messages %+v, want one at 09:00 PDT the next day", start, m)
	}
	wantLine(t, r, "wait 1d (until 2026-03-08 09:00 America/Los_Angeles)")

	plan = playbook(t, "", "  - send: { channel: email, template: hi }\n  - wait: 2d\n  - wait: { after_entry: 1mo }\n  - send: { channel: sms, template: ping }\n")
	r = simulate(t, plan, SimOptions{Customer: c, Start: start})
	if m := r.Memory.Messages(); len(m) != 2 || !m[1].At.Equal(time.Date(2026, 4, 7, 9, 0, 0, 0, la)) {
		t.Fatalf("after_entry 1mo from %v: messages %+v, want the second on 2026-04-07 09:00 PDT", start, m)
	}
	wantLine(t, r, "wait 1mo after entry (until 2026-04-07 09:00 America/Los_Angeles)")

	plan = playbook(t, "", "  - wait: { event: purchase, timeout: 1mo }\n    on_timeout:\n      - send: { channel: email, template: hi }\n")
	start = time.Date(2026, 1, 31, 9, 0, 0, 0, la)
	r = simulate(t, plan, SimOptions{Customer: c, Start: start})
	if m := r.Memory.Messages(); len(m) != 1 || !m[0].At.Equal(time.Date(2026, 2, 28, 9, 0, 0, 0, la)) {
		t.Fatalf("timeout 1mo from %v: messages %+v, want one on 2026-02-28 09:00", start, m)
	}
}

// TestAfterEntryLoopIsStopped: a plan whose loop pauses only at an
// after_entry wait (validate refuses it; this one is pinned by hand) is
// stopped by the interpreter's runaway guard once the moment has passed,
// instead of awarding points forever.
func TestAfterEntryLoopIsStopped(t *testing.T) {
	plan := playbook(t, "", "  - id: tick\n    wait: 1d\n  - points: { award: 1, reason: loop }\n  - goto: tick\n")
	in := input(t, plan, "c1", rules.Event{ID: "t1", Name: "signup"})
	in.Plan = json.RawMessage(strings.Replace(string(in.Plan), `"kind":"for"`, `"kind":"after_entry"`, 1))
	mem := activities.NewMemory()
	mem.Put(customer("c1"))
	var err error
	at := DefaultSimStart
	for run := 1; ; run++ {
		if run > 50 {
			t.Fatalf("still looping after %d runs, %d awards: the guard does not hold across continue-as-new", run-1, len(mem.Ledger("c1")))
		}
		env := newTestEnv(t)
		env.SetStartTime(at)
		Register(env, mem)
		env.ExecuteWorkflow(WorkflowName, in)
		if err = env.GetWorkflowError(); !workflow.IsContinueAsNewError(err) {
			break
		}
		in, at = continuedAs(t, env), env.Now()
	}
	if err == nil || !strings.Contains(err.Error(), "the playbook loops") {
		t.Fatalf("err %v, want the runaway guard to stop the loop", err)
	}
	if n := len(mem.Ledger("c1")); n > maxStepsWithoutWait {
		t.Fatalf("%d points awards before the guard stopped the loop", n)
	}
}

// TestRepeatedHour: a start in the second occurrence of a repeated hour
// (01:10 PST after clocks went back in Los Angeles): a 30-minute wait ends
// 30 minutes later, and quiet hours that end at 01:30 hold a marketing send
// until the 01:30 that is still to come.
func TestRepeatedHour(t *testing.T) {
	la := rules.Location("America/Los_Angeles")
	start := time.Date(2026, 11, 1, 9, 10, 0, 0, time.UTC) // 01:10 PST, the second 01:10
	c := customer("c1")
	c.Timezone = "America/Los_Angeles"

	plan := playbook(t, "", "  - wait: 30m\n  - send: { channel: email, template: hi }\n")
	r := simulate(t, plan, SimOptions{Customer: c, Start: start})
	if m := r.Memory.Messages(); len(m) != 1 || !m[0].At.Equal(start.Add(30*time.Minute)) {
		t.Fatalf("wait 30m from %v: messages %+v, want one 30 minutes later", start.In(la), m)
	}

	plan = playbook(t, "policies:\n  quiet_hours: { start: \"00:00\", end: \"01:30\" }", "  - send: { channel: email, template: hi }\n")
	r = simulate(t, plan, SimOptions{Customer: c, Start: start})
	if m := r.Memory.Messages(); len(m) != 1 || !m[0].At.Equal(time.Date(2026, 11, 1, 9, 30, 0, 0, time.UTC)) {
		t.Fatalf("quiet hours to 01:30 from %v: messages %+v, want one at 01:30 PST (09:30 UTC)", start.In(la), m)
	}
}
