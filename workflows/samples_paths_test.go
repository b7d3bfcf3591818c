package workflows_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// The main paths of the sample playbooks, each as its comments describe
// it: which steps run, what is sent, which tasks people get, how the
// journey ends.

func sample(t *testing.T, name string) *engine.Plan {
	t.Helper()
	p, err := engine.CompileFile(filepath.Join("..", "playbooks", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pathOf is what a simulated journey did, in the words of the tests:
// templates sent (in order), task assignees, and the outcome.
type pathOf struct {
	sent, tasks []string
	status      activities.Status
	reason      string
	converted   bool
}

func journeyPath(r *SimResult) pathOf {
	var p pathOf
	for _, m := range r.Memory.Messages() {
		if m.Status == activities.SendSent {
			p.sent = append(p.sent, m.Template)
		}
	}
	for _, task := range r.Memory.Tasks() {
		p.tasks = append(p.tasks, task.Assignee)
	}
	p.status, p.reason, p.converted = r.Final.Status, r.Final.Reason, r.Final.Converted
	return p
}

func wantPath(t *testing.T, r *SimResult, want pathOf) {
	t.Helper()
	got := journeyPath(r)
	if !slices.Equal(got.sent, want.sent) || !slices.Equal(got.tasks, want.tasks) || got.status != want.status ||
		got.reason != want.reason || got.converted != want.converted {
		t.Fatalf("journey did\n  sent %v, tasks %v, %s (%s), converted %v\nwant\n  sent %v, tasks %v, %s (%s), converted %v\n%s",
			got.sent, got.tasks, got.status, got.reason, got.converted,
			want.sent, want.tasks, want.status, want.reason, want.converted, trace(r))
	}
}

func named(at time.Duration, name string, props map[string]any, amount float64) SimEvent {
	return SimEvent{At: at, Event: rules.Event{ID: name + "@" + at.String(), Name: name, Props: props, Amount: amount}}
}

// The repro: a detractor's answer converts and still reaches the
// call-back task and the apology.
func TestSampleSatisfactionSurveyDetractorIsCalledBack(t *testing.T) {
	r := simulate(t, sample(t, "satisfaction_survey"), SimOptions{Events: []SimEvent{
		{At: 3 * day, Event: rules.Event{ID: "s1", Name: "survey_answered", Score: 3}},
	}})
	wantPath(t, r, pathOf{sent: []string{"survey_request", "sorry_we_call"}, tasks: []string{"service_desk"},
		status: activities.StatusExited, reason: "detractor", converted: true})
	c, _ := r.Memory.Customer("c1")
	if !slices.Contains(c.Tags, "detractor") {
		t.Errorf("tags %v: the detractor is not tagged", c.Tags)
	}
}

func TestSampleSatisfactionSurveyPromoterIsInvitedToRefer(t *testing.T) {
	r := simulate(t, sample(t, "satisfaction_survey"), SimOptions{Events: []SimEvent{
		{At: 3 * day, Event: rules.Event{ID: "s1", Name: "survey_answered", Score: 10}},
	}})
	wantPath(t, r, pathOf{sent: []string{"survey_request", "referral_invite"}, status: activities.StatusCompleted, converted: true})
}

func TestSampleWinbackOrderIsWonBack(t *testing.T) {
	c := customer("c1")
	c.OrderCount, c.PurchaseGap, c.LastPurchaseAt = 3, 30, DefaultSimStart.AddDate(0, 0, -120)
	r := simulate(t, sample(t, "winback"), SimOptions{Customer: c, Events: []SimEvent{named(5*day, "order_completed", nil, 40)}})
	wantPath(t, r, pathOf{sent: []string{"miss_you", "winback_offer"}, status: activities.StatusExited, reason: "won_back", converted: true})
	got, _ := r.Memory.Customer("c1")
	if got.Stage != "active" || !slices.Contains(got.Tags, "won_back") {
		t.Errorf("customer after win-back: stage %s, tags %v", got.Stage, got.Tags)
	}
}

func TestSampleComplaintRecoveryResolvedGetsApologyPointsAndFollowUp(t *testing.T) {
	r := simulate(t, sample(t, "complaint_recovery"), SimOptions{Events: []SimEvent{named(day, "complaint_resolved", nil, 0)}})
	wantPath(t, r, pathOf{sent: []string{"acknowledgement", "resolved_extra", "follow_up"}, tasks: []string{"service_desk"},
		status: activities.StatusCompleted, converted: true})
	if l := r.Memory.Ledger("c1"); len(l) != 1 || l[0].Delta != 200 {
		t.Errorf("ledger %+v, want the 200 apology points", l)
	}
}

func TestSampleMilkDelivery(t *testing.T) {
	plan := sample(t, "milk_delivery")
	started := &rules.Event{ID: "sub-1", Name: "subscription_started", Props: map[string]any{"courier": "Li Wei"}}
	failed := func(at time.Duration) SimEvent { return named(at, "payment_failed", nil, 30) }
	for _, tc := range []struct {
		name    string
		trigger *rules.Event
		events  []SimEvent
		want    pathOf
		line    string
	}{
		{"a missed payment is paid after the notice", started,
			[]SimEvent{failed(20 * day), named(21*day, "payment_succeeded", nil, 30), named(40*day, "subscription_cancelled", nil, 0),
				named(60*day, "subscription_started", nil, 0), named(70*day, "subscription_cancelled", nil, 0)},
			pathOf{sent: []string{"welcome", "payment_failed", "payment_thanks", "why_cancel", "come_back", "why_cancel", "come_back"},
				tasks: []string{"delivery_team"}, status: activities.StatusExited, reason: "lapsed", converted: true},
			"await_return wait → subscription_started"},
		{"still unpaid after the call: paused", started,
			[]SimEvent{failed(20 * day)},
			pathOf{sent: []string{"welcome", "payment_failed", "paused"}, tasks: []string{"delivery_team", "customer_service"},
				status: activities.StatusExited, reason: "payment_overdue"},
			"await_payment_after_call wait → timeout"},
		{"cancelled during a missed payment, never back: lapsed", started,
			[]SimEvent{failed(20 * day), named(21*day, "subscription_cancelled", nil, 0)},
			pathOf{sent: []string{"welcome", "payment_failed", "why_cancel", "come_back"}, tasks: []string{"delivery_team"},
				status: activities.StatusExited, reason: "lapsed"},
			"await_payment wait → subscription_cancelled"},
		{"a subscriber from before Rapport enters on a missed payment", &rules.Event{ID: "pf-1", Name: "payment_failed", Amount: 30},
			[]SimEvent{named(2*day, "payment_succeeded", nil, 30), named(10*day, "subscription_cancelled", nil, 0)},
			pathOf{sent: []string{"payment_failed", "payment_thanks", "why_cancel", "come_back"},
				status: activities.StatusExited, reason: "lapsed", converted: true},
			"if_1 if → then"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := simulate(t, plan, SimOptions{Trigger: tc.trigger, Events: tc.events})
			wantLine(t, r, tc.line)
			wantPath(t, r, tc.want)
		})
	}
}

// TestSampleMilkDeliveryChecksInQuarterly: with no news, a "how are the
// deliveries" note every 3 months.
func TestSampleMilkDeliveryChecksInQuarterly(t *testing.T) {
	r := simulate(t, sample(t, "milk_delivery"), SimOptions{Events: []SimEvent{named(200*day, "subscription_cancelled", nil, 0)}})
	p := journeyPath(r)
	if n := strings.Count(strings.Join(p.sent, " "), "check_in"); n != 2 {
		t.Fatalf("%d check-ins in 200 days, want 2 (at 3 and 6 months): %v", n, p.sent)
	}
	wantLine(t, r, "+2160h0m0s check_in send email check_in")
}

func TestSampleCarCare(t *testing.T) {
	plan := sample(t, "car_care")
	delivered := &rules.Event{ID: "car-1", Name: "car_delivered", Props: map[string]any{"model": "RX 450h"}}
	for _, tc := range []struct {
		name    string
		trigger *rules.Event
		events  []SimEvent
		want    pathOf
		lines   []string
	}{
		{"delivery, reminder six months after the last service, advisor call, sold", delivered,
			[]SimEvent{named(100*day, "service_completed", nil, 0), named(400*day, "car_sold", nil, 0)},
			pathOf{sent: []string{"thank_you", "service_reminder"}, tasks: []string{"salesperson", "service_advisor"},
				status: activities.StatusExited, reason: "car_sold"},
			[]string{"+48h0m0s welcome_call task salesperson", "+2400h0m0s cycle wait → service_completed", "+6792h0m0s remind send email service_reminder",
				"+7128h0m0s await_booking wait → timeout"}},
		{"a booked service needs no call", delivered,
			[]SimEvent{named(190*day, "service_booked", nil, 0), named(200*day, "car_sold", nil, 0)},
			pathOf{sent: []string{"thank_you", "service_reminder"}, tasks: []string{"salesperson"},
				status: activities.StatusExited, reason: "car_sold", converted: true},
			[]string{"await_booking wait → service_booked"}},
		{"a complaint at any time: acknowledged, handed over, escalated, followed up", delivered,
			[]SimEvent{named(day, "complaint_filed", nil, 0), named(12*day, "complaint_resolved", nil, 0), named(30*day, "car_sold", nil, 0)},
			pathOf{sent: []string{"thank_you", "complaint_received"}, tasks: []string{"service_manager", "dealer_principal", "service_manager"},
				status: activities.StatusExited, reason: "car_sold"},
			[]string{"+24h0m0s settle_in wait → complaint_filed", "await_escalated wait → complaint_resolved", "follow_up_call task service_manager"}},
		{"an owner from before Rapport enters at a service", &rules.Event{ID: "svc-1", Name: "service_completed"},
			[]SimEvent{named(10*day, "car_sold", nil, 0)},
			pathOf{status: activities.StatusExited, reason: "car_sold"},
			[]string{"if_1 if → else"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := simulate(t, plan, SimOptions{Trigger: tc.trigger, Events: tc.events})
			for _, l := range tc.lines {
				wantLine(t, r, l)
			}
			wantPath(t, r, tc.want)
		})
	}
}
