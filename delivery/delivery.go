// Package delivery sends a journey's message: it renders the template for
// the customer, signs the unsubscribe link and rewrites links for
// tracking, hands the message to its channel and has the outcome
// recorded. The outbox — the send transaction that decides, and the
// queued → sent/failed transitions — is SQL and stays in store/, behind
// the Outbox interface; this package holds everything else, so the send
// path reads in one place and store/ keeps to its tables.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/channels"
	"github.com/rapport-crm/rapport/engine"
)

// Config is what delivery needs besides the outbox: the channels and the
// secrets that sign the links a message carries.
type Config struct {
	// Channels deliver messages by channel name.
	Channels channels.Set
	// UnsubscribeSecret signs unsubscribe links; PublicURL is where the
	// unsubscribe handler and the tracker are reachable; UnsubscribeTTL is
	// how long a link stays valid (zero: DefaultUnsubscribeTTL).
	UnsubscribeSecret []byte
	PublicURL         string
	UnsubscribeTTL    time.Duration
	// TrackingSecret signs click-tracking links and open pixels; empty
	// disables tracking, whatever a playbook asks for.
	TrackingSecret []byte
}

// Message is a rendered message and the unsubscribe link signed into it.
type Message struct {
	engine.Rendered
	UnsubscribeURL string
}

// Outbox is the SQL of the send path; store.Store implements it. Each
// transition changes a still queued row only, so a late or repeated
// call changes nothing recorded.
type Outbox interface {
	// DecideSend runs the send transaction: a key already recorded
	// answers with its outcome (a still queued one is rendered again and
	// delivered), else the checks decide (activities.DecideSend) and a
	// passing message is rendered and recorded queued with the subject
	// render returns. A render error wrapping activities.ErrRender is
	// recorded failed (activities.ReasonRenderError); any other aborts
	// the transaction. deliver says the message is queued and must go to
	// its channel; res is final otherwise.
	DecideSend(ctx context.Context, customerID string, r activities.SendRequest, render func() (subject string, err error)) (res activities.SendResult, deliver bool, err error)
	// MarkSent records the provider's id of a delivered message.
	MarkSent(ctx context.Context, key, providerID string) error
	// MarkFailed records a permanent delivery failure.
	MarkFailed(ctx context.Context, key, reason string) error
	// NoteAttempt records a transient failure; the row stays queued.
	NoteAttempt(ctx context.Context, key, reason string) error
}

// Sender implements activities.Messenger over an outbox.
type Sender struct {
	Outbox Outbox
	Config Config
}

// SendMessage records a message in the outbox and delivers it, exactly
// once per Key (store.Store.SendMessage documents the steps): the outbox
// decides and records it queued in one transaction; after commit the
// channel delivers it and the row becomes sent with the provider's id,
// or failed for a permanent failure (answered as SendFailed so the journey
// goes on). A transient failure leaves it queued and returns an error, so
// the activity is retried with the same Key, which every channel passes
// on (Message-ID, Idempotency-Key) so the provider can drop a repeat.
func (s Sender) SendMessage(ctx context.Context, r activities.SendRequest) (activities.SendResult, error) {
	customerID := r.Customer.ID
	if customerID == "" {
		customerID = r.Enrollment.CustomerID
	}
	if r.Key == "" || customerID == "" {
		return activities.SendResult{}, permanent("send %s/%s: key and customer are required", r.Channel, r.Template)
	}
	ch := s.Config.Channels[r.Channel]
	if ch == nil {
		return activities.SendResult{}, permanent("send %s: channel %q is not configured", r.Key, r.Channel)
	}
	if r.Topic == "" {
		r.Topic = activities.DefaultTopic
	}
	if r.Now.IsZero() {
		r.Now = time.Now()
	}
	var msg Message
	res, deliver, err := s.Outbox.DecideSend(ctx, customerID, r, func() (string, error) {
		var err error
		msg, err = s.Render(r, customerID)
		return msg.Subject, err
	})
	if err != nil {
		return activities.SendResult{}, fmt.Errorf("send %s: %w", r.Key, err)
	}
	if !deliver {
		return res, nil
	}
	return s.deliver(ctx, ch, customerID, r, res.To, msg)
}

// deliver hands a queued message to its channel and has the outcome
// recorded.
func (s Sender) deliver(ctx context.Context, ch channels.Channel, customerID string, r activities.SendRequest, to string, m Message) (activities.SendResult, error) {
	msg := channels.Message{
		Key: r.Key, Channel: r.Channel, To: to,
		Subject: m.Subject, Text: m.Text, HTML: m.HTML,
		Locale: r.Locale, UnsubscribeURL: m.UnsubscribeURL, CustomerID: customerID,
		Template: r.Template, Topic: r.Topic,
	}
	providerID, derr := ch.Deliver(ctx, msg)
	switch {
	case derr == nil:
		if err := s.Outbox.MarkSent(ctx, r.Key, providerID); err != nil {
			return activities.SendResult{}, fmt.Errorf("send %s: delivered as %s but not recorded: %w", r.Key, providerID, err)
		}
		return activities.SendResult{Status: activities.SendSent, ProviderID: providerID, To: msg.To}, nil
	case channels.Permanent(derr):
		reason := channels.Reason(derr)
		if err := s.Outbox.MarkFailed(ctx, r.Key, reason); err != nil {
			return activities.SendResult{}, fmt.Errorf("send %s: record failure %s: %w", r.Key, reason, err)
		}
		return activities.SendResult{Status: activities.SendFailed, Reason: reason, To: msg.To}, nil
	default:
		err := s.Outbox.NoteAttempt(ctx, r.Key, channels.Reason(derr))
		return activities.SendResult{}, errors.Join(fmt.Errorf("send %s: %w", r.Key, derr), err)
	}
}

func permanent(format string, args ...any) error {
	return fmt.Errorf("%w: %s", activities.ErrPermanent, fmt.Sprintf(format, args...))
}
