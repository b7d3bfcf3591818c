// Package channels delivers rendered messages: email over SMTP, SMS over a
// Twilio-style HTTP API, signed JSON webhooks for everything else (WeChat
// bridges, push, CRM), and a log channel for development.
//
// A channel only delivers. Consent, caps and the outbox live in store/,
// which calls Deliver after the message is recorded and classifies the
// result with Permanent: a permanent failure is recorded and the journey
// goes on; anything else is retried with the same Key, which every channel
// passes on (Message-ID, Idempotency-Key) so the provider can drop the
// duplicate.
package channels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Message is one rendered message ready to deliver.
type Message struct {
	Key            string // idempotency key of the send (enrollment/step/visit)
	Channel        string // email, sms, webhook
	To             string // email address, phone number, or customer id (webhook)
	From           string // optional; the channel's configured sender when empty
	Subject        string // email only
	Text           string
	HTML           string // email only
	Locale         string // BCP-47-ish, e.g. zh, en
	UnsubscribeURL string
	CustomerID     string
	Template       string
	Topic          string
}

// Channel delivers messages on one medium. Deliver returns the provider's
// id for the message. Errors are transient (retry with the same Key)
// unless Permanent says otherwise.
type Channel interface {
	Deliver(ctx context.Context, m Message) (providerID string, err error)
}

// Set maps channel names (email, sms, webhook) to channels.
type Set map[string]Channel

// Error is a classified delivery failure.
type Error struct {
	Permanent bool
	// Reason is a short machine-friendly cause recorded in the outbox,
	// e.g. "smtp_550", "http_404", "invalid_address".
	Reason string
	Err    error
}

func (e *Error) Error() string {
	kind := "transient"
	if e.Permanent {
		kind = "permanent"
	}
	return fmt.Sprintf("%s delivery failure (%s): %v", kind, e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// PermanentError wraps err as a failure a retry cannot fix.
func PermanentError(reason string, err error) error {
	return &Error{Permanent: true, Reason: reason, Err: err}
}

// TransientError wraps err as a failure worth retrying.
func TransientError(reason string, err error) error {
	return &Error{Reason: reason, Err: err}
}

// Permanent reports whether err is a delivery failure that retrying with
// the same message cannot fix. Unclassified errors are transient: a
// spurious retry is cheaper than a lost message.
func Permanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// Reason returns the short cause of a classified error, or "error".
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Reason != "" {
		return e.Reason
	}
	return "error"
}

// keyHash is a stable, opaque rendering of an idempotency key for ids
// that leave the system (Message-ID): the key itself names enrollments and
// customers, which recipients need not see.
func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}
