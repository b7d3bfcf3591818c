package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/channels"
	"github.com/rapport-crm/rapport/delivery"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/feedback"
	"github.com/rapport-crm/rapport/report"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

func recordFeedback(t *testing.T, s *store.Store, e feedback.Event) store.FeedbackResult {
	t.Helper()
	res, err := s.RecordFeedback(context.Background(), e)
	if err != nil {
		t.Fatalf("record %s: %v", e.ID, err)
	}
	return res
}

// sent sends one marketing email and returns its provider id.
func sent(t *testing.T, s *store.Store, c rules.Customer, key string) string {
	t.Helper()
	res, err := sender(s).SendMessage(context.Background(), sendReq(enrollment("e1", "winback", c.ID), c, key, t0))
	if err != nil || res.Status != activities.SendSent {
		t.Fatalf("send %s = %+v, %v", key, res, err)
	}
	return res.ProviderID
}

// A notification is attributed to its message by the provider id, stored
// once in the status history and once as the customer event the journeys
// receive, with the props the engagement waits read.
func TestRecordFeedbackAttributesOnce(t *testing.T) {
	s := storetest.New(t)
	c := mustCustomer(t, s, rules.Customer{ID: "c1", Email: "Ada@Example.com", Name: "Ada"})
	pid := sent(t, s, c, "e1/mail/1")
	e := feedback.Event{ID: "msg-sendgrid-x1", Provider: feedback.ProviderSendGrid, Kind: feedback.Clicked,
		URL: "https://shop.example/a", ProviderID: pid, At: t0.Add(time.Hour)}
	res := recordFeedback(t, s, e)
	if !res.Found || !res.Inserted || res.CustomerID != "c1" || res.Event.Name != "message_clicked" {
		t.Fatalf("first = %+v", res)
	}
	if res.Customer.ID != "c1" || res.Customer.Email != "Ada@Example.com" {
		t.Errorf("customer for dispatch = %+v, want c1 as stored", res.Customer)
	}
	want := map[string]any{"message_key": "e1/mail/1", "enrollment_id": "e1", "step_id": "mail", "playbook": "winback",
		"template": "miss_you", "channel": "email", "provider": "sendgrid", "url": "https://shop.example/a"}
	for k, v := range want {
		if res.Event.Props[k] != v {
			t.Errorf("props[%s] = %v, want %v (%v)", k, res.Event.Props[k], v, res.Event.Props)
		}
	}
	if again := recordFeedback(t, s, e); again.Inserted || !again.Found {
		t.Fatalf("replay = %+v, want found and not inserted", again)
	}
	if n := count(t, s, `SELECT count(*) FROM message_events`); n != 1 {
		t.Fatalf("%d status rows, want 1", n)
	}
	if n := count(t, s, `SELECT count(*) FROM events e JOIN event_ids i ON i.id = e.id WHERE e.name = 'message_clicked' AND i.dispatched_at IS NULL`); n != 1 {
		t.Fatalf("%d customer events, want 1 awaiting dispatch", n)
	}
}

// A hard bounce suppresses the address (marketing and transactional), in
// the same transaction as consent on the next send.
func TestHardBounceSuppressesNextSend(t *testing.T) {
	s := storetest.New(t)
	c := mustCustomer(t, s, rules.Customer{ID: "c1", Email: "Ada@Example.com", Name: "Ada"})
	pid := sent(t, s, c, "e1/mail/1")
	recordFeedback(t, s, feedback.Event{ID: "msg-ses-b1", Provider: feedback.ProviderSES, Kind: feedback.Bounced,
		Bounce: feedback.BounceHard, ProviderID: pid, At: t0})
	r := sendReq(enrollment("e1", "winback", "c1"), c, "e1/mail/2", t0.Add(time.Hour))
	r.Transactional = true
	res, err := sender(s).SendMessage(context.Background(), r)
	if err != nil || res.Status != activities.SendSuppressed || res.Reason != activities.ReasonHardBounce {
		t.Fatalf("next send = %+v, %v; want suppressed hard_bounce", res, err)
	}
}

// Soft bounces count; a delivery resets the run; a run of the limit
// suppresses.
func TestSoftBounceRun(t *testing.T) {
	cfg := storetest.Config()
	cfg.SoftBounceLimit = 2
	s := storetest.NewWithConfig(t, cfg)
	c := mustCustomer(t, s, rules.Customer{ID: "c1", Email: "ada@example.com", Name: "Ada"})
	pids := []string{sent(t, s, c, "e1/mail/1"), sent(t, s, c, "e1/mail/2"), sent(t, s, c, "e1/mail/3")}
	ev := func(id string, msg int, kind, bounce string) feedback.Event {
		return feedback.Event{ID: id, Provider: feedback.ProviderMailgun, Kind: kind, Bounce: bounce, ProviderID: pids[msg], At: t0}
	}
	suppressed := func() int {
		return count(t, s, `SELECT count(*) FROM suppressions WHERE suppressed_at IS NOT NULL`)
	}
	recordFeedback(t, s, ev("msg-mailgun-1", 0, feedback.Bounced, feedback.BounceSoft))
	recordFeedback(t, s, ev("msg-mailgun-1", 0, feedback.Bounced, feedback.BounceSoft)) // replay: not counted
	recordFeedback(t, s, ev("msg-mailgun-2", 0, feedback.Delivered, ""))
	recordFeedback(t, s, ev("msg-mailgun-3", 1, feedback.Bounced, feedback.BounceSoft))
	if n := suppressed(); n != 0 {
		t.Fatalf("suppressed after a broken run")
	}
	recordFeedback(t, s, ev("msg-mailgun-4", 2, feedback.Bounced, feedback.BounceSoft))
	if n := count(t, s, `SELECT count(*) FROM suppressions WHERE reason = 'soft_bounces' AND soft_bounces = 2`); n != 1 {
		t.Fatalf("want suppressed for soft_bounces after 2 in a row")
	}
}

// Mailgun reports every attempt of a message that keeps failing
// temporarily, each with its own event id: the attempts are kept in the
// status history, but the message counts as one soft bounce, whether the
// reports come one by one or in one notification.
func TestTemporaryFailuresCountOncePerMessage(t *testing.T) {
	cfg := storetest.Config()
	cfg.SoftBounceLimit = 2
	s := storetest.NewWithConfig(t, cfg)
	c := mustCustomer(t, s, rules.Customer{ID: "c1", Email: "ada@example.com", Name: "Ada"})
	first, second := sent(t, s, c, "e1/mail/1"), sent(t, s, c, "e1/mail/2")
	temporary := func(id, pid string) feedback.Event {
		body := `{"signature":{},"event-data":{"event":"failed","id":"` + id + `","timestamp":1700000000,"severity":"temporary",
			"recipient":"ada@example.com","reason":"generic","message":{"headers":{"message-id":"` + pid + `"}}}}`
		events, err := feedback.ParseMailgun([]byte(body))
		if err != nil || len(events) != 1 || events[0].Bounce != feedback.BounceSoft {
			t.Fatalf("parse %s = %+v, %v", id, events, err)
		}
		return events[0]
	}
	softBounces := func() int {
		return count(t, s, `SELECT coalesce(sum(soft_bounces), 0)::int FROM suppressions WHERE suppressed_at IS NULL`)
	}
	for _, id := range []string{"t1", "t2", "t3"} {
		recordFeedback(t, s, temporary(id, first))
	}
	if n := softBounces(); n != 1 {
		t.Fatalf("three temporary failures of one message: %d soft bounces, want 1", n)
	}
	if n := count(t, s, `SELECT count(*) FROM message_events WHERE bounce = 'soft'`); n != 3 {
		t.Fatalf("%d status rows, want every attempt kept", n)
	}
	if _, err := s.RecordFeedbackBatch(context.Background(), []feedback.Event{temporary("t4", second), temporary("t5", second)}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM suppressions WHERE reason = 'soft_bounces' AND soft_bounces = 2`); n != 1 {
		t.Fatalf("want suppressed after soft bounces of 2 messages, counted once each")
	}
}

// A complaint for a message Rapport cannot find still suppresses the
// reported address; a provider unsubscribe withdraws consent.
func TestUnattributedComplaintAndUnsubscribe(t *testing.T) {
	s := storetest.New(t)
	c := mustCustomer(t, s, rules.Customer{ID: "c1", Email: "ada@example.com", Name: "Ada"})
	res := recordFeedback(t, s, feedback.Event{ID: "msg-sendgrid-u1", Provider: feedback.ProviderSendGrid, Kind: feedback.Complained,
		ProviderID: "nobody@nowhere", Channel: "email", Address: " Bob@Example.com"})
	if res.Found || res.Inserted {
		t.Fatalf("unknown message = %+v", res)
	}
	if n := count(t, s, `SELECT count(*) FROM suppressions WHERE address = 'bob@example.com' AND reason = 'complaint'`); n != 1 {
		t.Fatalf("complaint of an unknown message did not suppress the address")
	}
	pid := sent(t, s, c, "e1/mail/1")
	recordFeedback(t, s, feedback.Event{ID: "msg-sendgrid-u2", Provider: feedback.ProviderSendGrid, Kind: feedback.Unsubscribed, ProviderID: pid})
	if n := count(t, s, `SELECT count(*) FROM consents WHERE customer_id = 'c1' AND channel = 'email' AND topic = 'marketing' AND NOT granted`); n != 1 {
		t.Fatalf("provider unsubscribe did not withdraw consent")
	}
}

// captured is a channel that keeps what it delivers.
type captured struct{ msgs []channels.Message }

func (c *captured) Deliver(_ context.Context, m channels.Message) (string, error) {
	c.msgs = append(c.msgs, m)
	return "cap-" + m.Key, nil
}

// A playbook with tracking gets its links rewritten through signed
// redirects and an open pixel, at send time; the unsubscribe link stays.
func TestSendTracksLinks(t *testing.T) {
	d := storetest.Delivery()
	d.TrackingSecret = []byte("track-secret")
	ch := &captured{}
	d.Channels["email"] = ch
	s := storetest.New(t)
	snd := delivery.Sender{Outbox: s, Config: d}
	c := mustCustomer(t, s, rules.Customer{ID: "c1", Email: "ada@example.com", Name: "Ada"})
	r := sendReq(enrollment("e1", "winback", "c1"), c, "e1/mail/1", t0)
	r.HTML = `<p><a href="https://shop.example/new">New</a></p><a href="{{ unsubscribe_url }}">unsubscribe</a>`
	r.Tracking = engine.Tracking{Clicks: true, Opens: true}
	if _, err := snd.SendMessage(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	m := ch.msgs[0]
	if strings.Contains(m.HTML, "shop.example") || !strings.Contains(m.HTML, storetest.PublicURL+"/t/c/") ||
		!strings.Contains(m.HTML, storetest.PublicURL+"/t/o/") || !strings.Contains(m.HTML, m.UnsubscribeURL) {
		t.Fatalf("html not tracked as asked: %s", m.HTML)
	}
}

// The report counts the step's messages by what providers reported, with
// rates over sent; `rapport customer` shows the suppression.
func TestFeedbackInReportAndCustomerView(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	c := mustCustomer(t, s, rules.Customer{ID: "c1", Email: "ada@example.com", Name: "Ada"})
	if _, err := s.RecordStart(ctx, activities.EntryRequest{Enrollment: enrollment("e1", "winback", "c1"), At: t0}); err != nil {
		t.Fatal(err)
	}
	pid := sent(t, s, c, "e1/mail/1")
	sent(t, s, c, "e1/mail/2")
	for i, k := range []string{feedback.Delivered, feedback.Delivered, feedback.Clicked, feedback.Bounced} {
		e := feedback.Event{ID: "msg-sendgrid-r" + string(rune('0'+i)), Provider: feedback.ProviderSendGrid, Kind: k, ProviderID: pid, At: t0}
		if k == feedback.Bounced {
			e.Bounce = feedback.BounceHard
		}
		recordFeedback(t, s, e)
	}
	in, err := s.ReportInput(ctx, store.ReportQuery{})
	if err != nil {
		t.Fatal(err)
	}
	r := report.Build(in)
	st := r.Playbooks[0].Steps[0]
	if st.Sent != 2 || st.Delivered != 1 || st.Clicked != 1 || st.Bounced != 1 || *st.ClickRate != 0.5 {
		t.Fatalf("step %+v", st)
	}
	v, err := s.CustomerView(ctx, "c1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Suppressions) != 1 || v.Suppressions[0].Reason != "hard_bounce" || v.Suppressions[0].SuppressedAt.IsZero() {
		t.Fatalf("suppressions %+v", v.Suppressions)
	}
}
