package feedback

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// SNSMessage is an Amazon SNS HTTP(S) delivery: a notification, or a
// subscription (un)confirmation.
type SNSMessage struct {
	Type             string
	MessageID        string `json:"MessageId"`
	Token            string
	TopicArn         string
	Subject          string
	Message          string
	Timestamp        string
	SignatureVersion string
	Signature        string
	SigningCertURL   string
	SubscribeURL     string
	UnsubscribeURL   string
}

// ParseSNS reads an SNS delivery body.
func ParseSNS(body []byte) (SNSMessage, error) {
	var m SNSMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return m, invalid("body: want an Amazon SNS message: %v", err)
	}
	for name, v := range map[string]string{"Type": m.Type, "MessageId": m.MessageID, "TopicArn": m.TopicArn,
		"Signature": m.Signature, "SigningCertURL": m.SigningCertURL} {
		if v == "" {
			return m, invalid("%s: required", name)
		}
	}
	return m, nil
}

// snsHost is the host of SNS's signing certificates and subscription
// URLs: sns.<region>.amazonaws.com (or .amazonaws.com.cn).
var snsHost = regexp.MustCompile(`^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)

// CheckSNSURL refuses a certificate or subscription URL that is not https
// on SNS's own host, so a forged message cannot make Rapport fetch a key
// (or call a URL) of the forger's choosing.
func CheckSNSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || !snsHost.MatchString(u.Hostname()) || u.Port() != "" {
		return fmt.Errorf("%q is not an https URL on sns.<region>.amazonaws.com", raw)
	}
	return nil
}

// StringToSign is the canonical string SNS signs: name and value lines of
// the message's fields in byte order, Subject only when present.
func (m SNSMessage) StringToSign() string {
	var fields [][2]string
	if m.Type == "Notification" {
		fields = [][2]string{{"Message", m.Message}, {"MessageId", m.MessageID}}
		if m.Subject != "" {
			fields = append(fields, [2]string{"Subject", m.Subject})
		}
		fields = append(fields, [2]string{"Timestamp", m.Timestamp}, [2]string{"TopicArn", m.TopicArn}, [2]string{"Type", m.Type})
	} else {
		fields = [][2]string{{"Message", m.Message}, {"MessageId", m.MessageID}, {"SubscribeURL", m.SubscribeURL},
			{"Timestamp", m.Timestamp}, {"Token", m.Token}, {"TopicArn", m.TopicArn}, {"Type", m.Type}}
	}
	var b strings.Builder
	for _, f := range fields {
		b.WriteString(f[0] + "\n" + f[1] + "\n")
	}
	return b.String()
}

// CertFetcher returns the certificate at an (already checked) SNS signing
// URL; production fetches it over https and caches it.
type CertFetcher func(ctx context.Context, url string) (*x509.Certificate, error)

// ErrBadSignature is a message whose signature does not verify.
var ErrBadSignature = errors.New("signature does not verify")

// VerifySNS checks m's signature: SignatureVersion 1 is RSA PKCS#1 v1.5
// over SHA-1 of StringToSign, version 2 over SHA-256, with the key of the
// certificate at SigningCertURL, which must be SNS's.
func VerifySNS(ctx context.Context, m SNSMessage, fetch CertFetcher) error {
	if err := CheckSNSURL(m.SigningCertURL); err != nil {
		return fmt.Errorf("%w: SigningCertURL: %v", ErrBadSignature, err)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return fmt.Errorf("%w: Signature: not base64", ErrBadSignature)
	}
	var hash crypto.Hash
	var digest []byte
	switch m.SignatureVersion {
	case "1":
		d := sha1.Sum([]byte(m.StringToSign()))
		hash, digest = crypto.SHA1, d[:]
	case "2":
		d := sha256.Sum256([]byte(m.StringToSign()))
		hash, digest = crypto.SHA256, d[:]
	default:
		return fmt.Errorf("%w: SignatureVersion %q: want 1 or 2", ErrBadSignature, m.SignatureVersion)
	}
	cert, err := fetch(ctx, m.SigningCertURL)
	if err != nil {
		return fmt.Errorf("fetch SNS signing certificate: %w", err)
	}
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: signing certificate has no RSA key", ErrBadSignature)
	}
	if err := rsa.VerifyPKCS1v15(key, hash, digest, sig); err != nil {
		return ErrBadSignature
	}
	return nil
}

// sesNotification is an SES notification (notificationType) or event
// publishing record (eventType); the fields Rapport reads.
type sesNotification struct {
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"`
	Mail             struct {
		Timestamp     string              `json:"timestamp"`
		MessageID     string              `json:"messageId"`
		Destination   []string            `json:"destination"`
		Tags          map[string][]string `json:"tags"`
		CommonHeaders struct {
			MessageID string `json:"messageId"`
		} `json:"commonHeaders"`
		Headers []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"headers"`
	} `json:"mail"`
	Bounce *struct {
		BounceType        string `json:"bounceType"`
		BounceSubType     string `json:"bounceSubType"`
		Timestamp         string `json:"timestamp"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
	} `json:"bounce"`
	Complaint *struct {
		Timestamp            string `json:"timestamp"`
		ComplainedRecipients []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
	} `json:"complaint"`
	Delivery *struct {
		Timestamp string `json:"timestamp"`
	} `json:"delivery"`
	Open *struct {
		Timestamp string `json:"timestamp"`
	} `json:"open"`
	Click *struct {
		Timestamp string `json:"timestamp"`
		Link      string `json:"link"`
	} `json:"click"`
}

// ParseSES normalizes the SES notification an SNS Notification carries
// (m.Message). A Permanent bounce is hard, Transient and Undetermined are
// soft. The message is found by the rapport_id message tag
// (X-SES-MESSAGE-TAGS), else by the Message-ID Rapport set, which SES
// reports among the original headers.
func ParseSES(m SNSMessage) ([]Event, error) {
	var n sesNotification
	if err := json.Unmarshal([]byte(m.Message), &n); err != nil {
		return nil, invalid("Message: want an Amazon SES notification: %v", err)
	}
	e := Event{ID: "msg-ses-" + m.MessageID, Provider: ProviderSES, Channel: "email", ProviderID: sesMessageID(n)}
	if len(n.Mail.Destination) > 0 {
		e.Address = n.Mail.Destination[0]
	}
	var at string
	switch firstNonEmpty(n.NotificationType, n.EventType) {
	case "Delivery":
		e.Kind = Delivered
		if n.Delivery != nil {
			at = n.Delivery.Timestamp
		}
	case "Bounce":
		if n.Bounce == nil {
			return nil, invalid("Message.bounce: required for a Bounce")
		}
		e.Kind, e.Bounce, at, e.Detail = Bounced, BounceSoft, n.Bounce.Timestamp, n.Bounce.BounceType+"/"+n.Bounce.BounceSubType
		if n.Bounce.BounceType == "Permanent" {
			e.Bounce = BounceHard
		}
		if len(n.Bounce.BouncedRecipients) > 0 {
			e.Address = n.Bounce.BouncedRecipients[0].EmailAddress
		}
	case "Complaint":
		e.Kind = Complained
		if n.Complaint != nil {
			at = n.Complaint.Timestamp
			if len(n.Complaint.ComplainedRecipients) > 0 {
				e.Address = n.Complaint.ComplainedRecipients[0].EmailAddress
			}
		}
	case "Open":
		e.Kind = Opened
		if n.Open != nil {
			at = n.Open.Timestamp
		}
	case "Click":
		e.Kind = Clicked
		if n.Click != nil {
			at, e.URL = n.Click.Timestamp, n.Click.Link
		}
	default:
		return nil, nil // Send, Reject, DeliveryDelay, Rendering Failure, Subscription
	}
	e.At, _ = time.Parse(time.RFC3339Nano, firstNonEmpty(at, n.Mail.Timestamp, m.Timestamp))
	return []Event{e}, nil
}

func sesMessageID(n sesNotification) string {
	if ids := n.Mail.Tags["rapport_id"]; len(ids) > 0 {
		return ids[0]
	}
	if id := n.Mail.CommonHeaders.MessageID; id != "" {
		return trimAngle(id)
	}
	for _, h := range n.Mail.Headers {
		if strings.EqualFold(h.Name, "Message-ID") {
			return trimAngle(h.Value)
		}
	}
	return n.Mail.MessageID
}
