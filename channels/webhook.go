package channels

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries the webhook signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>".
// Signing the timestamp with the body lets a receiver reject replays.
const SignatureHeader = "Rapport-Signature"

// WebhookConfig configures the webhook channel.
type WebhookConfig struct {
	URL     string
	Secret  []byte
	Timeout time.Duration
	Client  *http.Client     // optional
	Now     func() time.Time // optional, for tests
}

// Webhook delivers messages as signed JSON POSTs, for channels Rapport
// does not speak itself (WeChat, push, a CRM that phones the customer).
type Webhook struct {
	cfg    WebhookConfig
	client *http.Client
}

// WebhookPayload is the JSON body of a webhook delivery.
type WebhookPayload struct {
	Key            string `json:"key"`
	Channel        string `json:"channel"`
	CustomerID     string `json:"customer_id"`
	To             string `json:"to,omitempty"`
	Template       string `json:"template,omitempty"`
	Topic          string `json:"topic,omitempty"`
	Locale         string `json:"locale,omitempty"`
	Subject        string `json:"subject,omitempty"`
	Text           string `json:"text"`
	HTML           string `json:"html,omitempty"`
	UnsubscribeURL string `json:"unsubscribe_url,omitempty"`
}

// NewWebhook checks cfg and returns the webhook channel.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook: RAPPORT_WEBHOOK_URL must be an http(s) URL")
	}
	if len(cfg.Secret) == 0 {
		return nil, fmt.Errorf("webhook: RAPPORT_WEBHOOK_SECRET is required")
	}
	client := httpClient(cfg.Client, cfg.Timeout)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Webhook{cfg: cfg, client: client}, nil
}

// Deliver posts m as JSON, signed, with the key as Idempotency-Key.
func (w *Webhook) Deliver(ctx context.Context, m Message) (string, error) {
	body, err := json.Marshal(WebhookPayload{
		Key: m.Key, Channel: m.Channel, CustomerID: m.CustomerID, To: m.To,
		Template: m.Template, Topic: m.Topic, Locale: m.Locale,
		Subject: m.Subject, Text: m.Text, HTML: m.HTML, UnsubscribeURL: m.UnsubscribeURL,
	})
	if err != nil {
		return "", PermanentError("webhook_encode", err)
	}
	req, err := http.NewRequest(http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return "", PermanentError("webhook_config", fmt.Errorf("webhook: build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", m.Key)
	req.Header.Set(SignatureHeader, SignWebhook(w.cfg.Secret, w.cfg.Now(), body))
	answer, err := post(ctx, w.client, req, "webhook")
	if err != nil {
		return "", err
	}
	return providerID(answer, "webhook-"+keyHash(m.Key)), nil
}

// SignWebhook returns the signature header value for body sent at t.
func SignWebhook(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(webhookMAC(secret, ts, body))
}

// Errors returned by VerifyWebhook.
var (
	ErrSignatureMissing  = errors.New("webhook signature header is missing or malformed")
	ErrSignatureMismatch = errors.New("webhook signature does not match")
	ErrSignatureStale    = errors.New("webhook timestamp is outside the tolerance")
)

// VerifyWebhook checks a Rapport-Signature header against body at now.
// The timestamp must be within tolerance of now (either side), so a
// captured request cannot be replayed later. Several v1 entries are
// accepted (any match suffices) so a secret can be rotated.
func VerifyWebhook(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return errors.New("webhook secret is empty")
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrSignatureMissing
	}
	want := webhookMAC(secret, ts, body)
	matched := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			matched = true
		}
	}
	if !matched {
		return ErrSignatureMismatch
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w (%s off)", ErrSignatureStale, d.Round(time.Second))
	}
	return nil
}

func webhookMAC(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte("."))
	h.Write(body)
	return h.Sum(nil)
}
