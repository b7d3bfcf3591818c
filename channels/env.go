package channels

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// FromEnv builds the channels configured in the environment:
//
//	RAPPORT_SMTP_ADDR       host:port of the SMTP relay; enables email
//	RAPPORT_SMTP_USER       SMTP AUTH user (optional)
//	RAPPORT_SMTP_PASSWORD   SMTP AUTH password (optional)
//	RAPPORT_SMTP_FROM       sender, e.g. "Shop <hello@shop.example>" (required with ADDR)
//	RAPPORT_SMTP_TLS        none, starttls (default) or tls
//	RAPPORT_SMTP_MESSAGE_ID_DOMAIN  right-hand side of Message-IDs (default: the domain of FROM)
//	RAPPORT_SMS_URL         Twilio-style Messages endpoint; enables sms
//	RAPPORT_SMS_USER        basic-auth user (Twilio account SID)
//	RAPPORT_SMS_TOKEN       basic-auth password (Twilio auth token)
//	RAPPORT_SMS_FROM        sender number (required with URL)
//	RAPPORT_WEBHOOK_URL     endpoint receiving signed JSON; enables webhook
//	RAPPORT_WEBHOOK_SECRET  HMAC secret for Rapport-Signature (required with URL)
//	RAPPORT_DEV_CHANNELS    "log": every channel not configured above writes
//	                        to the log instead (development only)
//
// A channel that is neither configured nor logged is absent, and sending
// on it fails permanently with "channel not configured". Errors name the
// variable at fault and never contain a secret's value.
func FromEnv() (Set, error) {
	return fromEnv(os.Getenv)
}

func fromEnv(get func(string) string) (Set, error) {
	set := Set{}
	if addr := get("RAPPORT_SMTP_ADDR"); addr != "" {
		e, err := NewEmail(SMTPConfig{
			Addr: addr, User: get("RAPPORT_SMTP_USER"), Password: get("RAPPORT_SMTP_PASSWORD"),
			From: get("RAPPORT_SMTP_FROM"), TLS: strings.ToLower(get("RAPPORT_SMTP_TLS")),
			MessageIDDomain: get("RAPPORT_SMTP_MESSAGE_ID_DOMAIN"),
		})
		if err != nil {
			return nil, err
		}
		set["email"] = e
	}
	if u := get("RAPPORT_SMS_URL"); u != "" {
		s, err := NewSMS(SMSConfig{URL: u, User: get("RAPPORT_SMS_USER"), Token: get("RAPPORT_SMS_TOKEN"), From: get("RAPPORT_SMS_FROM")})
		if err != nil {
			return nil, err
		}
		set["sms"] = s
	}
	if u := get("RAPPORT_WEBHOOK_URL"); u != "" {
		w, err := NewWebhook(WebhookConfig{URL: u, Secret: []byte(get("RAPPORT_WEBHOOK_SECRET")), Timeout: 10 * time.Second})
		if err != nil {
			return nil, err
		}
		set["webhook"] = w
	}
	switch dev := get("RAPPORT_DEV_CHANNELS"); dev {
	case "":
	case "log":
		for _, name := range []string{"email", "sms", "webhook"} {
			if set[name] == nil {
				set[name] = &Log{Name: name, Logger: slog.Default()}
			}
		}
	default:
		return nil, fmt.Errorf("RAPPORT_DEV_CHANNELS %q: the only value is \"log\"", dev)
	}
	return set, nil
}
