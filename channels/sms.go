package channels

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SMSConfig configures the SMS channel: a Twilio-style Messages endpoint
// that takes a form POST of To, From and Body with basic auth.
type SMSConfig struct {
	URL     string // e.g. https://api.twilio.com/2010-04-01/Accounts/AC…/Messages.json
	User    string // basic-auth user (Twilio: account SID)
	Token   string // basic-auth password (Twilio: auth token)
	From    string // sender number or id
	Timeout time.Duration
	Client  *http.Client // optional
}

// SMS delivers text messages over HTTP.
type SMS struct {
	cfg    SMSConfig
	client *http.Client
}

// NewSMS checks cfg and returns the SMS channel.
func NewSMS(cfg SMSConfig) (*SMS, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sms: RAPPORT_SMS_URL must be an http(s) URL")
	}
	if cfg.From == "" {
		return nil, fmt.Errorf("sms: RAPPORT_SMS_FROM is required")
	}
	client := httpClient(cfg.Client, cfg.Timeout)
	return &SMS{cfg: cfg, client: client}, nil
}

// Deliver posts m.Text to the provider with the key as Idempotency-Key.
func (s *SMS) Deliver(ctx context.Context, m Message) (string, error) {
	if !validPhone(m.To) {
		return "", PermanentError("invalid_address", fmt.Errorf("sms: recipient %q is not a phone number", m.To))
	}
	from := m.From
	if from == "" {
		from = s.cfg.From
	}
	form := url.Values{"To": {m.To}, "From": {from}, "Body": {m.Text}}
	req, err := http.NewRequest(http.MethodPost, s.cfg.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", PermanentError("sms_config", fmt.Errorf("sms: build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Idempotency-Key", m.Key)
	if s.cfg.User != "" || s.cfg.Token != "" {
		req.SetBasicAuth(s.cfg.User, s.cfg.Token)
	}
	body, err := post(ctx, s.client, req, "sms")
	if err != nil {
		return "", err
	}
	return providerID(body, "sms-"+keyHash(m.Key)), nil
}

// validPhone accepts E.164-ish numbers: an optional +, then 6 to 15
// digits, with spaces, dashes, dots and parentheses allowed as separators.
func validPhone(s string) bool {
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return false
		}
	}
	return digits >= 6 && digits <= 15
}
