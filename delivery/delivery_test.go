package delivery_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/channels"
	"github.com/rapport-crm/rapport/delivery"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// outbox decides every message deliverable, rendering it, and records
// the transitions it is asked for.
type outbox struct{ calls []string }

func (o *outbox) DecideSend(_ context.Context, _ string, _ activities.SendRequest, render func() (string, error)) (activities.SendResult, bool, error) {
	if _, err := render(); err != nil {
		return activities.SendResult{}, false, err
	}
	return activities.SendResult{To: "ada@example.com"}, true, nil
}

func (o *outbox) MarkSent(_ context.Context, key, providerID string) error {
	o.calls = append(o.calls, "sent "+key+" "+providerID)
	return nil
}

func (o *outbox) MarkFailed(_ context.Context, key, reason string) error {
	o.calls = append(o.calls, "failed "+key+" "+reason)
	return nil
}

func (o *outbox) NoteAttempt(_ context.Context, key, reason string) error {
	o.calls = append(o.calls, "attempt "+key+" "+reason)
	return nil
}

// channel answers with err, and the message it was given.
type channel struct {
	err error
	got channels.Message
}

func (c *channel) Deliver(_ context.Context, m channels.Message) (string, error) {
	c.got = m
	return "pid-1", c.err
}

func sender(ch channels.Channel, o delivery.Outbox) delivery.Sender {
	return delivery.Sender{Outbox: o, Config: delivery.Config{
		Channels: channels.Set{"email": ch}, UnsubscribeSecret: []byte("s"), PublicURL: "https://rapport.test",
		UnsubscribeTTL: time.Hour, TrackingSecret: []byte("t"),
	}}
}

func request() activities.SendRequest {
	return activities.SendRequest{Key: "e1/mail/1", Channel: "email", Template: "welcome",
		Customer: rules.Customer{ID: "c1", Name: "Ada"}, Now: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC),
		Subject: "Hi {{ customer.name }}", Text: "Go https://shop.example/a now. {{ unsubscribe_url }}",
		Tracking: engine.Tracking{Clicks: true}}
}

// Each channel outcome becomes its transition: sent with the provider's
// id, failed for a permanent failure (answered, not an error), and a
// noted attempt with an error for a transient one, so the activity is
// retried. The message carries the rendered text, its link tracked and
// the signed unsubscribe link left alone.
func TestOutcomesBecomeTransitions(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		status activities.SendStatus
		call   string
	}{
		{"sent", nil, activities.SendSent, "sent e1/mail/1 pid-1"},
		{"permanent", channels.PermanentError("invalid_address", errors.New("no")), activities.SendFailed, "failed e1/mail/1 invalid_address"},
		{"transient", channels.TransientError("timeout", errors.New("slow")), "", "attempt e1/mail/1 timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch, o := &channel{err: c.err}, &outbox{}
			res, err := sender(ch, o).SendMessage(context.Background(), request())
			if res.Status != c.status || (err != nil) != (c.status == "") || len(o.calls) != 1 || o.calls[0] != c.call {
				t.Fatalf("= %+v, %v; calls %v; want %s and %q", res, err, o.calls, c.status, c.call)
			}
			m := ch.got
			if m.Subject != "Hi Ada" || strings.Contains(m.Text, "https://shop.example/a") || !strings.Contains(m.Text, m.UnsubscribeURL) || m.UnsubscribeURL == "" {
				t.Errorf("message %+v: want rendered, the link tracked, the unsubscribe link kept", m)
			}
		})
	}
}

// A template that cannot be rendered is a RenderError (the outbox records
// the message failed); a missing unsubscribe secret is a permanent error.
func TestRenderErrors(t *testing.T) {
	s := sender(&channel{}, &outbox{})
	r := request()
	r.Subject = "Hi {{ customer.nope( }}"
	if _, err := s.Render(r, "c1"); !errors.As(err, new(*delivery.RenderError)) || !errors.Is(err, activities.ErrRender) {
		t.Errorf("bad template: %v, want a RenderError that is activities.ErrRender", err)
	}
	s.Config.UnsubscribeSecret = nil
	if _, err := s.Render(request(), "c1"); !errors.Is(err, activities.ErrPermanent) {
		t.Errorf("no unsubscribe secret: %v, want permanent", err)
	}
}
