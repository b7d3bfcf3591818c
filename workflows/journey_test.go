package workflows_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	. "github.com/rapport-crm/rapport/workflows"
)

const day = 24 * time.Hour

func simulate(t *testing.T, plan *engine.Plan, opts SimOptions) *SimResult {
	t.Helper()
	if opts.Customer.ID == "" {
		opts.Customer = customer("c1")
	}
	res, err := Simulate(plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// trace is the simulation output without the summary line.
func trace(r *SimResult) string {
	var b strings.Builder
	for _, l := range r.Lines() {
		b.WriteString(l.String() + "\n")
	}
	return b.String()
}

func wantOutcome(t *testing.T, r *SimResult, status activities.Status, reason string) {
	t.Helper()
	if r.Final.Status != status || r.Final.Reason != reason {
		t.Fatalf("outcome %s (%s), want %s (%s); err %v\n%s", r.Final.Status, r.Final.Reason, status, reason, r.Err, trace(r))
	}
}

func wantLine(t *testing.T, r *SimResult, line string) {
	t.Helper()
	if !strings.Contains(trace(r), line+"\n") && !strings.Contains(trace(r), line) {
		t.Fatalf("no line %q in\n%s", line, trace(r))
	}
}

func ev(at time.Duration, name, id string) SimEvent {
	return SimEvent{At: at, Event: rules.Event{ID: id, Name: name}}
}

const waitSteps = `
  - id: await
    wait: { event: purchase, timeout: 5d }
    on_event:
      - id: thanks
        send: { channel: email, template: hi }
    on_timeout:
      - id: nudge
        send: { channel: sms, template: ping }
`

func TestWaitEventFires(t *testing.T) {
	r := simulate(t, playbook(t, "", waitSteps), SimOptions{Events: []SimEvent{ev(2*day, "purchase", "p1")}})
	wantOutcome(t, r, activities.StatusCompleted, "")
	wantLine(t, r, "+48h0m0s await wait → event")
	wantLine(t, r, "+48h0m0s thanks send email hi (locale en)")
	if m := r.Memory.Messages(); len(m) != 1 || m[0].Template != "hi" || m[0].Subject != "Hi Ada" {
		t.Fatalf("messages %+v", m)
	}
}

func TestWaitEventTimesOut(t *testing.T) {
	// A different event, and a purchase after the timeout, do not count.
	r := simulate(t, playbook(t, "", waitSteps), SimOptions{Events: []SimEvent{ev(day, "visit", "v1"), ev(6*day, "purchase", "p1")}})
	wantOutcome(t, r, activities.StatusCompleted, "")
	wantLine(t, r, "+120h0m0s await wait → timeout")
	wantLine(t, r, "+120h0m0s nudge send sms ping (locale en)")
}

func TestWaitEventWhenRule(t *testing.T) {
	steps := strings.Replace(waitSteps, "timeout: 5d", `timeout: 5d, when: "event.amount >= 100"`, 1)
	small := SimEvent{At: day, Event: rules.Event{ID: "p1", Name: "purchase", Amount: 20}}
	big := SimEvent{At: 2 * day, Event: rules.Event{ID: "p2", Name: "purchase", Amount: 150}}
	r := simulate(t, playbook(t, "", steps), SimOptions{Events: []SimEvent{small, big}})
	wantLine(t, r, "+48h0m0s await wait → event")
}

func TestGoalWithExitEndsTheJourneyMidWait(t *testing.T) {
	head := "goal: { event: purchase, within: 30d, when: \"event.amount > 10\", exit: true }"
	steps := "  - send: { channel: email, template: hi }\n  - wait: 20d\n  - send: { channel: sms, template: ping }\n"
	r := simulate(t, playbook(t, head, steps), SimOptions{Events: []SimEvent{
		{At: 3 * day, Event: rules.Event{ID: "p0", Name: "purchase", Amount: 5}}, // goal rule false
		{At: 4 * day, Event: rules.Event{ID: "p1", Name: "purchase", Amount: 50}},
	}})
	wantOutcome(t, r, activities.StatusConverted, "goal purchase")
	if got := r.End().Sub(r.Start); got != 4*day {
		t.Errorf("converted after %s, want 96h (mid-wait)", got)
	}
	if n := len(r.Memory.Messages()); n != 1 {
		t.Errorf("%d messages, want 1 (the second send is after conversion)", n)
	}
	if e := r.Memory.Enrollments(); len(e) != 1 || e[0].Status != activities.StatusConverted ||
		!e[0].ConvertedAt.Equal(r.Start.Add(4*day)) || e[0].ConversionEvent != "purchase" {
		t.Errorf("recorded enrollment %+v, want converted at +96h on purchase", e)
	}
}

// TestGoalRecordsTheConversionAndGoesOn: by default the goal measures and
// the journey goes on, so the wait for the same event runs its on_event
// steps; a second goal event does not convert again.
func TestGoalRecordsTheConversionAndGoesOn(t *testing.T) {
	head := "goal: { event: purchase, within: 30d }"
	steps := waitSteps + "  - wait: 3d\n  - id: after\n    send: { channel: sms, template: ping }\n"
	r := simulate(t, playbook(t, head, steps), SimOptions{Events: []SimEvent{ev(2*day, "purchase", "p1"), ev(3*day, "purchase", "p2")}})
	wantOutcome(t, r, activities.StatusCompleted, "")
	wantLine(t, r, "+48h0m0s await goal converted (purchase); the journey goes on")
	wantLine(t, r, "+48h0m0s await wait → event")
	wantLine(t, r, "+48h0m0s thanks send email hi (locale en)")
	wantLine(t, r, "+120h0m0s after send sms ping (locale en)")
	if n := strings.Count(trace(r), " goal converted"); n != 1 {
		t.Errorf("%d conversions logged, want 1 (the second purchase does not convert again)", n)
	}
	if !r.Final.Converted {
		t.Error("the final state does not say the journey converted")
	}
	e := r.Memory.Enrollments()
	if len(e) != 1 || e[0].Status != activities.StatusCompleted || !e[0].ConvertedAt.Equal(r.Start.Add(2*day)) || e[0].ConversionEvent != "purchase" {
		t.Fatalf("recorded enrollment %+v, want completed, converted at +48h on purchase", e)
	}
	if m := r.Memory.Messages(); len(m) != 2 || m[0].Template != "hi" || m[1].Template != "ping" {
		t.Fatalf("messages %+v, want hi (on the event) then ping", m)
	}
}

func TestTriggerSignalledAgainIsNotAConversion(t *testing.T) {
	plan := playbook(t, "goal: { event: signup, within: 30d }", "  - wait: 2d\n  - send: { channel: email, template: hi }\n")
	trigger := rules.Event{ID: "signup-1", Name: "signup"}
	r := simulate(t, plan, SimOptions{Trigger: &trigger, Events: []SimEvent{{At: time.Hour, Event: trigger}}})
	wantOutcome(t, r, activities.StatusCompleted, "")
	if n := len(r.Memory.Messages()); n != 1 {
		t.Errorf("%d messages, want 1: the journey must go on after its own trigger is redelivered", n)
	}
}

// The goal's rule judges the profile as the event left it: the purchase
// that makes the second order converts, although the journey loaded the
// profile (one order) before it began to wait.
func TestGoalRuleSeesTheProfileTheEventChanged(t *testing.T) {
	plan := playbook(t, `goal: { event: purchase, within: 30d, when: "customer.order_count >= 2" }`, "  - send: { channel: email, template: hi }\n  - wait: 10d\n")
	c := customer("c1")
	c.OrderCount, c.LifetimeValue = 1, 30
	r := simulate(t, plan, SimOptions{Customer: c, Events: []SimEvent{{At: 2 * day, Event: rules.Event{ID: "o2", Name: "purchase", Amount: 20}}}})
	wantOutcome(t, r, activities.StatusCompleted, "")
	if e := r.Memory.Enrollments(); len(e) != 1 || !e[0].ConvertedAt.Equal(r.Start.Add(2*day)) {
		t.Errorf("recorded enrollment %+v, want converted at +48h", e)
	}
	if got, _ := r.Memory.Customer("c1"); got.OrderCount != 2 || got.LifetimeValue != 50 {
		t.Errorf("simulated profile after the purchase: %d orders, value %v; want 2, 50", got.OrderCount, got.LifetimeValue)
	}
}

func TestGoalOutsideWindowDoesNotConvert(t *testing.T) {
	head := "goal: { event: purchase, within: 2d }"
	r := simulate(t, playbook(t, head, "  - wait: 5d\n"), SimOptions{Events: []SimEvent{ev(3*day, "purchase", "p1")}})
	wantOutcome(t, r, activities.StatusCompleted, "")
}

func TestExitWhenOnEvent(t *testing.T) {
	head := `exit_when: event.name == "unsubscribe"`
	r := simulate(t, playbook(t, head, "  - wait: 5d\n  - send: { channel: email, template: hi }\n"),
		SimOptions{Events: []SimEvent{ev(day, "unsubscribe", "u1")}})
	wantOutcome(t, r, activities.StatusExited, "exit_when")
	if len(r.Memory.Messages()) != 0 {
		t.Error("a message was sent after exit_when held")
	}
}

func TestExitWhenAfterOwnUpdate(t *testing.T) {
	head := "exit_when: customer.attrs.do_not_contact == true"
	steps := "  - update: { set: { attrs.do_not_contact: \"true\" } }\n  - send: { channel: email, template: hi }\n"
	r := simulate(t, playbook(t, head, steps), SimOptions{})
	wantOutcome(t, r, activities.StatusExited, "exit_when")
	if len(r.Memory.Messages()) != 0 {
		t.Error("the send after the update ran: the profile was not re-read")
	}
}

func TestExitStep(t *testing.T) {
	steps := "  - id: check\n    if: customer.tier == \"gold\"\n    then:\n      - exit: vip\n  - send: { channel: email, template: hi }\n"
	r := simulate(t, playbook(t, "", steps), SimOptions{})
	wantOutcome(t, r, activities.StatusExited, "vip")
	wantLine(t, r, "+0s check if → then")
	c := customer("c2")
	c.Tier = "silver"
	r = simulate(t, playbook(t, "", steps), SimOptions{Customer: c})
	wantOutcome(t, r, activities.StatusCompleted, "")
	wantLine(t, r, "+0s check if → else")
}

func TestQuietHoursAcrossMidnightShanghai(t *testing.T) {
	head := `policies: { quiet_hours: { start: "21:00", end: "08:00" } }`
	c := customer("c1")
	c.Timezone = "Asia/Shanghai"
	// 14:00 UTC is 22:00 in Shanghai: quiet until 08:00 the next morning there, 00:00 UTC.
	start := time.Date(2026, 1, 5, 14, 0, 0, 0, time.UTC)
	r := simulate(t, playbook(t, head, "  - id: hello\n    send: { channel: email, template: hi }\n"), SimOptions{Customer: c, Start: start})
	msgs := r.Memory.Messages()
	if len(msgs) != 1 || !msgs[0].At.Equal(time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("messages %+v, want one at 2026-01-06T00:00Z\n%s", msgs, trace(r))
	}
	wantLine(t, r, "+0s hello defer quiet hours: deferred until 2026-01-06 08:00 Asia/Shanghai")
	steps := r.Memory.Steps()
	if len(steps) != 1 || !strings.HasSuffix(steps[0].Key, "/hello/1/quiet_hours") {
		t.Errorf("step records %+v, want the quiet-hours deferral", steps)
	}
}

func TestQuietHoursTransactionalIgnoresThem(t *testing.T) {
	head := `policies: { quiet_hours: { start: "21:00", end: "08:00" } }`
	start := time.Date(2026, 1, 5, 23, 0, 0, 0, time.UTC)
	r := simulate(t, playbook(t, head, "  - send: { channel: email, template: hi, transactional: true }\n"), SimOptions{Start: start})
	if m := r.Memory.Messages(); len(m) != 1 || !m[0].At.Equal(start) {
		t.Fatalf("transactional send deferred: %+v", m)
	}
}

func TestQuietHoursOnDSTDayNewYork(t *testing.T) {
	head := `policies: { quiet_hours: { start: "21:00", end: "08:00" } }`
	c := customer("c1")
	c.Timezone = "America/New_York"
	// 2026-03-07 21:30 EST; clocks spring forward on 8 March, so 08:00 EDT
	// the next morning is 12:00 UTC, 9h30m later (not 10h30m).
	start := time.Date(2026, 3, 8, 2, 30, 0, 0, time.UTC)
	r := simulate(t, playbook(t, head, "  - send: { channel: email, template: hi }\n"), SimOptions{Customer: c, Start: start})
	want := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)
	if m := r.Memory.Messages(); len(m) != 1 || !m[0].At.Equal(want) {
		t.Fatalf("messages %+v, want one at %s\n%s", m, want, trace(r))
	}
}

func TestQuietUntil(t *testing.T) {
	ny := rules.Location("America/New_York")
	q := func(h, m int) engine.TimeOfDay { return engine.TimeOfDay{Minutes: h*60 + m} }
	cases := []struct {
		now        time.Time
		start, end engine.TimeOfDay
		quiet      bool
		until      time.Time
	}{
		{time.Date(2026, 6, 1, 22, 0, 0, 0, ny), q(21, 0), q(8, 0), true, time.Date(2026, 6, 2, 8, 0, 0, 0, ny)},
		{time.Date(2026, 6, 1, 3, 0, 0, 0, ny), q(21, 0), q(8, 0), true, time.Date(2026, 6, 1, 8, 0, 0, 0, ny)},
		{time.Date(2026, 6, 1, 8, 0, 0, 0, ny), q(21, 0), q(8, 0), false, time.Time{}},
		{time.Date(2026, 6, 1, 20, 59, 0, 0, ny), q(21, 0), q(8, 0), false, time.Time{}},
		{time.Date(2026, 6, 1, 13, 0, 0, 0, ny), q(12, 0), q(14, 0), true, time.Date(2026, 6, 1, 14, 0, 0, 0, ny)},
		{time.Date(2026, 6, 1, 15, 0, 0, 0, ny), q(12, 0), q(14, 0), false, time.Time{}},
		// Fall back (1 Nov 2026): the night is 25 hours long.
		{time.Date(2026, 10, 31, 23, 0, 0, 0, ny), q(21, 0), q(8, 0), true, time.Date(2026, 11, 1, 13, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		until, quiet := QuietUntil(c.now, ny, c.start, c.end)
		if quiet != c.quiet || !until.Equal(c.until) {
			t.Errorf("QuietUntil(%s) = %s, %v; want %s, %v", c.now, until, quiet, c.until, c.quiet)
		}
	}
}

func TestNextLocal(t *testing.T) {
	sh := rules.Location("Asia/Shanghai")
	ten := engine.TimeOfDay{Minutes: 600}
	if got := NextLocal(time.Date(2026, 1, 5, 9, 0, 0, 0, sh), sh, ten); !got.Equal(time.Date(2026, 1, 5, 10, 0, 0, 0, sh)) {
		t.Errorf("before 10:00: %s", got)
	}
	if got := NextLocal(time.Date(2026, 1, 31, 11, 0, 0, 0, sh), sh, ten); !got.Equal(time.Date(2026, 2, 1, 10, 0, 0, 0, sh)) {
		t.Errorf("after 10:00 on the last of the month: %s", got)
	}
}

func TestWaitUntilLocalTime(t *testing.T) {
	c := customer("c1")
	c.Timezone = "Asia/Shanghai"
	r := simulate(t, playbook(t, "", "  - wait: { until: \"10:00\" }\n  - id: hello\n    send: { channel: email, template: hi }\n"), SimOptions{Customer: c})
	// Start 09:00 UTC = 17:00 Shanghai → 10:00 next day Shanghai = 02:00 UTC, 17h later.
	wantLine(t, r, "+17h0m0s hello send email hi (locale en)")
}

const splitSteps = `
  - id: ab
    split:
      - { name: a, weight: 30, steps: [ { id: sa, send: { channel: email, template: hi } } ] }
      - { name: b, weight: 70, steps: [ { id: sb, send: { channel: sms, template: ping } } ] }
`

func TestSplitStableAndWeighted(t *testing.T) {
	plan := playbook(t, "", splitSteps)
	branches := plan.Steps[plan.StepIndex["ab"]].Split.Branches
	counts := map[int]int{}
	for i := range 1000 {
		id := fmt.Sprintf("c-%d", i)
		b := PickBranch(plan.Name, "ab", id, branches)
		if again := PickBranch(plan.Name, "ab", id, branches); again != b {
			t.Fatalf("customer %s: branch %d then %d", id, b, again)
		}
		counts[b]++
	}
	// Expected 300 / 700; the hash is deterministic, so this bound (±60,
	// about 4 standard deviations) is checked against fixed numbers.
	if counts[0] < 240 || counts[0] > 360 {
		t.Errorf("branch a got %d of 1000 customers, want about 300", counts[0])
	}
	// The same customer takes the same branch in separate runs.
	first := trace(simulate(t, plan, SimOptions{Customer: customer("c-7")}))
	second := trace(simulate(t, plan, SimOptions{Customer: customer("c-7")}))
	if first != second || !strings.Contains(first, "ab split → ") {
		t.Fatalf("runs differ or no split:\n%s\n%s", first, second)
	}
	if recs := activitiesSteps(t, plan, "c-7"); len(recs) != 1 || recs[0].Branch == "" {
		t.Errorf("split not recorded: %+v", recs)
	}
}

func activitiesSteps(t *testing.T, plan *engine.Plan, id string) []activities.StepRecord {
	return simulate(t, plan, SimOptions{Customer: customer(id)}).Memory.Steps()
}

// TestHoldoutReceivesNothing: a customer in the playbook's holdout gets no
// message of any kind (transactional included), no profile update, points,
// coupon or task; each is recorded as suppressed (holdout), and the journey
// walks the same path and waits as a treated customer, who gets them all.
func TestHoldoutReceivesNothing(t *testing.T) {
	steps := `
  - update: { add_tags: [welcomed], tier: silver }
  - points: { award: 50, reason: welcome }
  - coupon: { kind: percent, value: 10, expires: 30d }
  - task: { assignee: relationship_manager, title: "Call {{ customer.name }}" }
  - send: { channel: email, template: hi }
  - wait: 2d
  - send: { channel: sms, template: ping, transactional: true }
`
	plan := playbook(t, "entry: { holdout: 50 }", steps)
	var in, out string
	for i := 0; in == "" || out == ""; i++ {
		id := fmt.Sprintf("c-%d", i)
		if inHoldout(plan, id) {
			in = id
		} else {
			out = id
		}
	}
	r := simulate(t, plan, SimOptions{Customer: customer(in)})
	wantOutcome(t, r, activities.StatusCompleted, "")
	msgs := r.Memory.Messages()
	if len(msgs) != 2 {
		t.Fatalf("holdout customer messages: %+v", msgs)
	}
	for _, m := range msgs {
		if m.Status != activities.SendSuppressed || m.Reason != activities.ReasonHoldout {
			t.Fatalf("holdout customer got %s %s: %s (%s)", m.Channel, m.Template, m.Status, m.Reason)
		}
	}
	c, _ := r.Memory.Customer(in)
	if len(c.Tags) != 0 || c.Tier != "gold" || c.Points != 0 || len(r.Memory.Ledger(in)) != 0 || len(r.Memory.Coupons()) != 0 || len(r.Memory.Tasks()) != 0 {
		t.Fatalf("holdout customer was acted on: tags %v tier %s points %d ledger %v coupons %v tasks %v",
			c.Tags, c.Tier, c.Points, r.Memory.Ledger(in), r.Memory.Coupons(), r.Memory.Tasks())
	}
	for _, line := range []string{"update_1 update suppressed (holdout)", "points_2 points suppressed (holdout)", "coupon_3 coupon suppressed (holdout)",
		"task_4 task suppressed (holdout)", "send_5 send email hi suppressed (holdout)", "send_7 send sms ping suppressed (holdout)", "holdout: receives nothing from the playbook"} {
		wantLine(t, r, line)
	}
	suppressed := 0
	for _, st := range r.Memory.Steps() {
		if st.Branch == SuppressedBranch+activities.ReasonHoldout {
			suppressed++
		}
	}
	if suppressed != 4 {
		t.Fatalf("%d suppressed step records, want 4 (update, points, coupon, task)", suppressed)
	}
	if got := r.Memory.Enrollments()[0].EndedAt.Sub(r.Start); got != 2*day {
		t.Fatalf("holdout journey took %v, want the treated path's 2 days", got)
	}
	if !r.Result.Holdout || !r.Memory.Enrollments()[0].Enrollment.Holdout {
		t.Error("the holdout is not on the result and the enrollment record")
	}

	r = simulate(t, plan, SimOptions{Customer: customer(out)})
	if msgs := r.Memory.Messages(); len(msgs) != 2 || msgs[0].Status != activities.SendSent || msgs[1].Status != activities.SendSent {
		t.Fatalf("treated customer's messages: %+v", msgs)
	}
	if len(r.Memory.Ledger(out)) != 1 || len(r.Memory.Coupons()) != 1 || len(r.Memory.Tasks()) != 1 {
		t.Fatal("treated customer missed an action")
	}
}

func TestReentryPolicies(t *testing.T) {
	cases := []struct {
		entry  string
		second time.Duration // start of the second enrollment after the first
		want   activities.Status
		reason string
	}{
		{"entry: { reentry: never }", 100 * day, activities.StatusRejected, activities.ReasonAlreadyEnrolled},
		{"entry: { reentry: always }", 2 * day, activities.StatusCompleted, ""},
		{"entry: { reentry: after, cooldown: 30d }", 10 * day, activities.StatusRejected, "cooldown"},
		{"entry: { reentry: after, cooldown: 30d }", 31 * day, activities.StatusCompleted, ""},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s+%s", c.entry, c.second), func(t *testing.T) {
			plan := playbook(t, c.entry, "  - wait: 1d\n")
			mem := activities.NewMemory()
			first := simulate(t, plan, SimOptions{Memory: mem})
			wantOutcome(t, first, activities.StatusCompleted, "")
			second := simulate(t, plan, SimOptions{Memory: mem, Start: DefaultSimStart.Add(c.second)})
			wantOutcome(t, second, c.want, c.reason)
			if first.Result.EnrollmentID == second.Final.EnrollmentID {
				t.Fatal("both enrollments have the same ID")
			}
		})
	}
}

func TestAudienceRejects(t *testing.T) {
	plan := playbook(t, `entry: { audience: "customer.tier == 'platinum'" }`, "  - send: { channel: email, template: hi }\n")
	r := simulate(t, plan, SimOptions{})
	wantOutcome(t, r, activities.StatusRejected, "audience")
	if len(r.Memory.Messages()) != 0 {
		t.Error("a rejected customer got a message")
	}
}

func TestDuplicateEventAppliedOnce(t *testing.T) {
	steps := `
  - id: listen
    wait: { event: purchase, timeout: 10d }
    on_event:
      - id: reward
        points: { award: "event.amount", reason: purchase }
      - goto: listen
`
	pay := func(at time.Duration, id string) SimEvent {
		return SimEvent{At: at, Event: rules.Event{ID: id, Name: "purchase", Amount: 10}}
	}
	r := simulate(t, playbook(t, "", steps), SimOptions{Events: []SimEvent{pay(day, "p1"), pay(day+time.Hour, "p1"), pay(2*day, "p2")}})
	if l := r.Memory.Ledger("c1"); len(l) != 2 || l[1].Balance != 20 {
		t.Fatalf("ledger %+v, want two awards of 10\n%s", l, trace(r))
	}
	wantLine(t, r, "listen event purchase p1 duplicate, ignored")
	if r.Final.Counters.Events != 2 {
		t.Errorf("counted %d events, want 2", r.Final.Counters.Events)
	}
}

func TestFrequencyCap(t *testing.T) {
	steps := "  - send: { channel: email, template: hi }\n  - wait: 1d\n  - id: second\n    send: { channel: sms, template: ping }\n"
	skip := simulate(t, playbook(t, "policies: { frequency_cap: { max: 1, per: 7d } }", steps), SimOptions{})
	wantLine(t, skip, "+24h0m0s second send sms ping suppressed (frequency_cap)")
	wantOutcome(t, skip, activities.StatusCompleted, "")

	def := simulate(t, playbook(t, "policies: { frequency_cap: { max: 1, per: 7d, action: defer } }", steps), SimOptions{})
	wantLine(t, def, "+24h0m0s second defer frequency cap: deferred until 2026-01-12 09:00 UTC")
	wantLine(t, def, "+168h0m0s second send sms ping (locale en)")
	if m := def.Memory.Messages(); len(m) != 2 || m[1].Status != activities.SendSent {
		t.Fatalf("messages %+v", m)
	}
}

func TestPointsCouponTaskUpdate(t *testing.T) {
	steps := `
  - id: award
    points: { award: "12.6", reason: welcome }
  - id: take
    points: { deduct: 5, reason: fee }
  - id: gift
    coupon: { kind: percent, value: "customer.points > 100 ? 20 : 10", expires: 14d, prefix: GI }
  - id: mail
    send: { channel: email, template: hi }
  - id: call
    task: { assignee: relationship_manager, title: "Call {{ customer.name }} ({{ customer.points }} points)", due: 2d, priority: high }
  - id: promote
    update: { tier: platinum, add_tags: [vip], set: { attrs.source: "'journey'" } }
`
	c := customer("c1")
	c.Points = 100
	r := simulate(t, playbook(t, "", steps), SimOptions{Customer: c})
	wantOutcome(t, r, activities.StatusCompleted, "")
	// The coupon rule sees the points after the journey's own awards (100+13-5).
	cs := r.Memory.Coupons()
	if len(cs) != 1 || cs[0].Value != 20 || !strings.HasPrefix(cs[0].Code, "GI-") || !cs[0].ExpiresAt.Equal(DefaultSimStart.Add(14*day)) {
		t.Fatalf("coupons %+v", cs)
	}
	if m := r.Memory.Messages(); len(m) != 1 || m[0].Text != "Hello Ada "+cs[0].Code {
		t.Fatalf("the message does not show the coupon: %+v", m)
	}
	tasks := r.Memory.Tasks()
	if len(tasks) != 1 || tasks[0].Title != "Call Ada (108 points)" || tasks[0].Priority != "high" || !tasks[0].DueAt.Equal(DefaultSimStart.Add(2*day)) {
		t.Fatalf("tasks %+v", tasks)
	}
	got, _ := r.Memory.Customer("c1")
	if got.Points != 108 || got.Tier != "platinum" || got.Attrs["source"] != "journey" || got.Tags[len(got.Tags)-1] != "vip" {
		t.Fatalf("customer after the journey: %+v", got)
	}
}

func TestStateQueryMidWait(t *testing.T) {
	plan := playbook(t, "", "  - id: pause\n    wait: { event: purchase, timeout: 10d }\n")
	env := newTestEnv(t)
	mem := activities.NewMemory()
	mem.Put(customer("c1"))
	Register(env, mem)
	var mid State
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(StateQuery)
		if err != nil {
			t.Errorf("query: %v", err)
			return
		}
		if err := v.Get(&mid); err != nil {
			t.Error(err)
		}
	}, 3*day)
	env.ExecuteWorkflow(WorkflowName, input(t, plan, "c1", rules.Event{Name: "signup"}))
	if mid.Status != activities.StatusActive || mid.CurrentStep != "pause" || !strings.Contains(mid.WaitingFor, "waiting for purchase until 2026-01-15 09:00 UTC") ||
		mid.Playbook != "test" || mid.Version != plan.Version || mid.CustomerID != "c1" || mid.EnrollmentID == "" || len(mid.Steps) != 2 {
		t.Fatalf("state mid-wait: %+v", mid)
	}
	var res JourneyResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Status != activities.StatusCompleted {
		t.Fatalf("result %+v, %v", res, err)
	}
}

// TestGlobalControlReceivesNothing: with a global control group of 30 %, a
// customer in it who enters a playbook that takes part (stage nurture, by
// default) is admitted as a holdout and receives nothing; the same customer
// in a playbook that opts out (global_control: false) is treated; a
// customer outside the group is treated everywhere.
func TestGlobalControlReceivesNothing(t *testing.T) {
	steps := "  - points: { award: 10, reason: hello }\n  - send: { channel: email, template: hi }\n"
	takesPart := playbook(t, "", steps)
	optsOut := playbook(t, "entry: { global_control: false }", steps)
	if !takesPart.Entry.GlobalControl || optsOut.Entry.GlobalControl {
		t.Fatalf("global control: default %v, opted out %v", takesPart.Entry.GlobalControl, optsOut.Entry.GlobalControl)
	}
	var in, out string
	for i := 0; in == "" || out == ""; i++ {
		id := fmt.Sprintf("g-%d", i)
		if activities.InGlobalControl(id, 30) {
			in = id
		} else {
			out = id
		}
	}
	run := func(plan *engine.Plan, id string) *SimResult {
		mem := activities.NewMemory()
		mem.GlobalControlPct = 30
		return simulate(t, plan, SimOptions{Customer: customer(id), Memory: mem})
	}
	r := run(takesPart, in)
	wantOutcome(t, r, activities.StatusCompleted, "")
	if m := r.Memory.Messages(); len(m) != 1 || m[0].Status != activities.SendSuppressed || m[0].Reason != activities.ReasonHoldout || len(r.Memory.Ledger(in)) != 0 {
		t.Fatalf("customer in the global control group: messages %+v, ledger %+v", m, r.Memory.Ledger(in))
	}
	wantLine(t, r, "global control group: receives nothing from the playbook")
	if rec := r.Memory.Enrollments()[0]; !rec.GlobalControl || !rec.Enrollment.Holdout || !r.Result.Holdout {
		t.Fatalf("enrollment %+v, result %+v: want global control and holdout recorded", rec, r.Result)
	}
	for _, c := range []struct {
		plan *engine.Plan
		id   string
	}{{optsOut, in}, {takesPart, out}} {
		r := run(c.plan, c.id)
		if m := r.Memory.Messages(); len(m) != 1 || m[0].Status != activities.SendSent || len(r.Memory.Ledger(c.id)) != 1 {
			t.Fatalf("%s in %s: messages %+v, ledger %+v: want treated", c.id, c.plan.Name, m, r.Memory.Ledger(c.id))
		}
	}

	// A draw in place of the share's hash (what `rapport test` sets with
	// in_global_control) decides who is in the group, even against the
	// share; whether the playbook takes part is still the plan's.
	for _, c := range []struct {
		plan    *engine.Plan
		id      string
		drawn   bool
		holdout bool
	}{{takesPart, out, true, true}, {takesPart, in, false, false}, {optsOut, out, true, false}} {
		mem := activities.NewMemory()
		mem.GlobalControlPct = 30
		mem.GlobalControlDraw = func(string) bool { return c.drawn }
		r := simulate(t, c.plan, SimOptions{Customer: customer(c.id), Memory: mem})
		m := r.Memory.Messages()
		sent := len(m) == 1 && m[0].Status == activities.SendSent
		if r.Result.Holdout != c.holdout || sent == c.holdout {
			t.Errorf("%s drawn %v in %s: holdout %v, messages %+v; want holdout %v", c.id, c.drawn, c.plan.Name, r.Result.Holdout, m, c.holdout)
		}
	}
}

// TestPointsChecks: a deduction larger than the balance is refused and the
// journey exits (insufficient_points) without going on to tell the
// customer; a calculated award that comes out negative fails the step in
// plain words instead of becoming a deduction.
func TestPointsChecks(t *testing.T) {
	plan := playbook(t, "", `
  - points: { deduct: "customer.points + 4966", reason: refund }
  - send: { channel: email, template: hi }
`)
	c := customer("c1")
	c.Points = 17
	mem := activities.NewMemory()
	mem.Put(c)
	r := simulate(t, plan, SimOptions{Customer: c, Memory: mem})
	wantOutcome(t, r, activities.StatusExited, activities.ReasonInsufficientPoints)
	wantLine(t, r, "points_1 points -4983 (refund) refused: deduction of 4983 points refused: the balance is 17")
	if got, _ := mem.Customer("c1"); got.Points != 17 || len(mem.Ledger("c1")) != 0 || len(mem.Messages()) != 0 {
		t.Fatalf("points %d, ledger %v, messages %v: want nothing changed or sent", got.Points, mem.Ledger("c1"), mem.Messages())
	}

	negative := playbook(t, "", "  - points: { award: \"customer.points - 100\", reason: welcome }\n")
	r = simulate(t, negative, SimOptions{Customer: c})
	if r.Err == nil || !strings.Contains(r.Err.Error(), "points amount -83 is not more than 0") {
		t.Fatalf("err %v, want the negative award refused in plain words", r.Err)
	}
	if len(r.Memory.Ledger("c1")) != 0 {
		t.Fatalf("ledger %v: a negative award became a deduction", r.Memory.Ledger("c1"))
	}
}

// TestFailedReasonIsPlain: an enrollment failed by an activity records the
// activity's words, without the SDK's "activity error (type: …)" wrapping.
func TestFailedReasonIsPlain(t *testing.T) {
	plan := playbook(t, "", "  - coupon: { kind: percent, value: \"customer.points + 200\", expires: 7d }\n")
	r := simulate(t, plan, SimOptions{})
	want := "step coupon_1: issue coupon: coupon value 200 is over 100 % for a percent coupon"
	if r.Final.Reason != want || r.Memory.Enrollments()[0].Reason != want {
		t.Fatalf("reason %q (recorded %q), want %q", r.Final.Reason, r.Memory.Enrollments()[0].Reason, want)
	}
}
