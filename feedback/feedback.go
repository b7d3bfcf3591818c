// Package feedback is what Rapport learns about the messages it sent:
// the delivery, engagement and failure notifications of email and SMS
// providers (Amazon SES through SNS, SendGrid, Mailgun, Twilio) and of
// Rapport's own click and open tracking, each normalized into one Event.
//
// The store records an Event once (by its deterministic ID) in the
// message's status history, as one customer event named
// message_<kind> that journeys receive like any tracked event, and in the
// suppression list (a hard bounce, a complaint or a run of soft bounces
// stops further mail to the address). The parsers here are pure: the
// HTTP endpoints in api/ verify the provider's signature first.
package feedback

import (
	"errors"
	"fmt"
	"time"
)

// Kinds of Event; the customer event is named "message_" + kind.
const (
	Delivered    = "delivered"
	Opened       = "opened"
	Clicked      = "clicked"
	Bounced      = "bounced"
	Complained   = "complained"
	Unsubscribed = "unsubscribed"
)

// Bounce classes: a hard bounce is permanent (the address does not
// exist), a soft one temporary (mailbox full, greylisting).
const (
	BounceHard = "hard"
	BounceSoft = "soft"
)

// Providers, as the customer event's provider prop names them.
const (
	ProviderSES      = "ses"
	ProviderSendGrid = "sendgrid"
	ProviderMailgun  = "mailgun"
	ProviderTwilio   = "twilio"
	ProviderRapport  = "rapport" // first-party click and open tracking
)

// Event is one normalized notification about one message.
type Event struct {
	// ID is deterministic, "msg-<provider>-<provider event id>", so a
	// replayed notification is stored once; it is the customer event's ID.
	ID       string
	Provider string
	Kind     string
	Bounce   string // Bounced: BounceHard or BounceSoft
	URL      string // Clicked: the link
	Detail   string // the provider's reason or status, for operators
	At       time.Time

	// The message is found by MessageKey (the outbox key, which tracking
	// links carry) or else by ProviderID (the id the channel returned:
	// the email's Message-ID, the SMS provider's message SID).
	MessageKey string
	ProviderID string
	// Channel and Address are the recipient as the provider reports it;
	// a hard bounce or complaint for a message Rapport cannot find still
	// puts the address on the suppression list.
	Channel string
	Address string
}

// EventName is the customer event's name for a kind.
func EventName(kind string) string { return "message_" + kind }

// ErrInvalid marks a notification that cannot be normalized; the
// endpoint answers 400 with the message, which names the field.
var ErrInvalid = errors.New("invalid notification")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// Check says whether e can be recorded.
func (e Event) Check() error {
	switch {
	case e.ID == "":
		return invalid("event id: required")
	case e.Provider == "":
		return invalid("provider: required")
	case e.MessageKey == "" && e.ProviderID == "" && e.Address == "":
		return invalid("%s: no message id, key or recipient to attribute it to", e.ID)
	case e.Kind == Bounced && e.Bounce != BounceHard && e.Bounce != BounceSoft:
		return invalid("%s: bounce must be hard or soft", e.ID)
	}
	switch e.Kind {
	case Delivered, Opened, Clicked, Bounced, Complained, Unsubscribed:
		return nil
	}
	return invalid("%s: unknown kind %q", e.ID, e.Kind)
}
