package feedback

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// SendGridPublicKey parses the Signed Event Webhook's verification key as
// SendGrid shows it: base64 of the DER (PKIX) encoding of an ECDSA P-256
// public key.
func SendGridPublicKey(b64 string) (*ecdsa.PublicKey, error) {
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, fmt.Errorf("sendgrid public key: not base64: %w", err)
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("sendgrid public key: not a DER public key: %w", err)
	}
	ec, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("sendgrid public key: not an ECDSA key")
	}
	return ec, nil
}

// VerifySendGrid checks the Signed Event Webhook: the
// X-Twilio-Email-Event-Webhook-Signature header is the base64 ASN.1 ECDSA
// signature of SHA-256(timestamp header + raw body).
func VerifySendGrid(key *ecdsa.PublicKey, body []byte, signature, timestamp string) bool {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || key == nil || timestamp == "" {
		return false
	}
	h := sha256.New()
	h.Write([]byte(timestamp))
	h.Write(body)
	return ecdsa.VerifyASN1(key, h.Sum(nil), sig)
}

// sendGridEvent is one element of the Event Webhook's JSON array; the
// fields Rapport reads. rapport_id is the custom argument the email
// channel adds (X-SMTPAPI unique_args): the Message-ID Rapport sent.
type sendGridEvent struct {
	Event     string `json:"event"`
	Email     string `json:"email"`
	Timestamp int64  `json:"timestamp"`
	SMTPID    string `json:"smtp-id"`
	EventID   string `json:"sg_event_id"`
	URL       string `json:"url"`
	Type      string `json:"type"`
	Reason    string `json:"reason"`
	Status    string `json:"status"`
	RapportID string `json:"rapport_id"`
}

// sendGridKinds maps SendGrid's event names to kinds; processed,
// deferred, dropped and group_resubscribe say nothing Rapport acts on.
var sendGridKinds = map[string]string{
	"delivered": Delivered, "open": Opened, "click": Clicked, "bounce": Bounced,
	"spamreport": Complained, "unsubscribe": Unsubscribed, "group_unsubscribe": Unsubscribed,
}

// ParseSendGrid normalizes an Event Webhook body (a JSON array). A bounce
// of type "blocked" is soft (the receiving server refused for now), any
// other bounce hard.
func ParseSendGrid(body []byte) ([]Event, error) {
	var raw []sendGridEvent
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, invalid("body: want a JSON array of SendGrid events: %v", err)
	}
	var out []Event
	for i, r := range raw {
		kind, ok := sendGridKinds[r.Event]
		if !ok {
			continue
		}
		if r.EventID == "" {
			return nil, invalid("[%d].sg_event_id: required", i)
		}
		e := Event{ID: "msg-sendgrid-" + r.EventID, Provider: ProviderSendGrid, Kind: kind, URL: r.URL,
			Detail: strings.TrimSpace(r.Status + " " + r.Reason), At: time.Unix(r.Timestamp, 0).UTC(),
			ProviderID: firstNonEmpty(r.RapportID, trimAngle(r.SMTPID)), Channel: "email", Address: r.Email}
		if kind == Bounced {
			e.Bounce = BounceHard
			if r.Type == "blocked" {
				e.Bounce = BounceSoft
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func trimAngle(s string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
