package delivery

import (
	"os"
	"time"

	"github.com/rapport-crm/rapport/channels"
)

// DefaultUnsubscribeTTL is how long an unsubscribe link stays valid when
// Config says nothing: a year, because people unsubscribe from old mail.
const DefaultUnsubscribeTTL = 365 * 24 * time.Hour

// ConfigFromEnv reads what delivery needs from the environment:
//
//	RAPPORT_UNSUBSCRIBE_SECRET  HMAC secret for unsubscribe links (required to send marketing messages)
//	RAPPORT_PUBLIC_URL          base URL of the unsubscribe handler and tracker, e.g. https://rapport.example.com
//	RAPPORT_TRACKING_SECRET     HMAC secret for click-tracking links and open pixels (unset: no tracking)
//
// and the channels (see channels.FromEnv). Errors name the variable at
// fault and never carry a secret's value.
func ConfigFromEnv() (Config, error) {
	set, err := channels.FromEnv()
	if err != nil {
		return Config{}, err
	}
	return Config{
		Channels:          set,
		UnsubscribeSecret: []byte(os.Getenv("RAPPORT_UNSUBSCRIBE_SECRET")),
		PublicURL:         os.Getenv("RAPPORT_PUBLIC_URL"),
		UnsubscribeTTL:    DefaultUnsubscribeTTL,
		TrackingSecret:    []byte(os.Getenv("RAPPORT_TRACKING_SECRET")),
	}, nil
}

// unsubscribeTTL is UnsubscribeTTL, or DefaultUnsubscribeTTL when unset.
func (c Config) unsubscribeTTL() time.Duration {
	if c.UnsubscribeTTL <= 0 {
		return DefaultUnsubscribeTTL
	}
	return c.UnsubscribeTTL
}
