package feedback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"time"
)

// mailgunBody is a Mailgun webhook: the signature object and the event.
type mailgunBody struct {
	Signature struct {
		Timestamp string `json:"timestamp"`
		Token     string `json:"token"`
		Signature string `json:"signature"`
	} `json:"signature"`
	EventData *mailgunEvent `json:"event-data"`
}

type mailgunEvent struct {
	Event     string  `json:"event"`
	ID        string  `json:"id"`
	Timestamp float64 `json:"timestamp"`
	Recipient string  `json:"recipient"`
	Severity  string  `json:"severity"`
	Reason    string  `json:"reason"`
	URL       string  `json:"url"`
	Message   struct {
		Headers struct {
			MessageID string `json:"message-id"`
		} `json:"headers"`
	} `json:"message"`
	// UserVariables are the message's v: variables (X-Mailgun-Variables);
	// Mailgun sends [] when there are none, so it is read leniently.
	UserVariables json.RawMessage `json:"user-variables"`
}

// mailgunKinds maps Mailgun's event names to kinds (accepted, rejected
// and stored are Mailgun's own business).
var mailgunKinds = map[string]string{
	"delivered": Delivered, "opened": Opened, "clicked": Clicked, "failed": Bounced,
	"complained": Complained, "unsubscribed": Unsubscribed,
}

// VerifyMailgun parses a webhook body and checks its signature object:
// signature is the hex HMAC-SHA256 of timestamp + token under the
// webhook signing key. ok is false for a body without a valid signature.
func VerifyMailgun(key, body []byte) (ok bool) {
	var b mailgunBody
	if json.Unmarshal(body, &b) != nil || len(key) == 0 {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(b.Signature.Timestamp + b.Signature.Token))
	want := hex.EncodeToString(mac.Sum(nil))
	return b.Signature.Token != "" && hmac.Equal([]byte(want), []byte(b.Signature.Signature))
}

// ParseMailgun normalizes a (verified) webhook body. A failure of
// severity permanent is a hard bounce, temporary a soft one.
func ParseMailgun(body []byte) ([]Event, error) {
	var b mailgunBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, invalid("body: want a Mailgun webhook JSON object: %v", err)
	}
	r := b.EventData
	if r == nil {
		return nil, invalid("event-data: required")
	}
	kind, ok := mailgunKinds[r.Event]
	if !ok {
		return nil, nil
	}
	if r.ID == "" {
		return nil, invalid("event-data.id: required")
	}
	sec, frac := math.Modf(r.Timestamp)
	var vars struct {
		RapportID string `json:"rapport_id"`
	}
	_ = json.Unmarshal(r.UserVariables, &vars) // [] or absent: none
	e := Event{ID: "msg-mailgun-" + r.ID, Provider: ProviderMailgun, Kind: kind, URL: r.URL, Detail: r.Reason,
		At: time.Unix(int64(sec), int64(frac*1e9)).UTC(), Channel: "email", Address: r.Recipient,
		ProviderID: firstNonEmpty(vars.RapportID, trimAngle(r.Message.Headers.MessageID))}
	if kind == Bounced {
		e.Bounce = BounceSoft
		if r.Severity == "permanent" {
			e.Bounce = BounceHard
		}
	}
	return []Event{e}, nil
}
