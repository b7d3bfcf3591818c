package delivery_test

import (
	"strings"
	"testing"

	"github.com/rapport-crm/rapport/delivery"
)

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("RAPPORT_UNSUBSCRIBE_SECRET", "s")
	t.Setenv("RAPPORT_PUBLIC_URL", "https://r.example")
	t.Setenv("RAPPORT_TRACKING_SECRET", "t")
	t.Setenv("RAPPORT_DEV_CHANNELS", "log")
	cfg, err := delivery.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.UnsubscribeSecret) != "s" || cfg.PublicURL != "https://r.example" || string(cfg.TrackingSecret) != "t" ||
		cfg.UnsubscribeTTL != delivery.DefaultUnsubscribeTTL {
		t.Errorf("config = %+v", cfg)
	}
	for _, name := range []string{"email", "sms", "webhook"} {
		if cfg.Channels[name] == nil {
			t.Errorf("RAPPORT_DEV_CHANNELS=log: no %s channel", name)
		}
	}
	t.Setenv("RAPPORT_DEV_CHANNELS", "")
	t.Setenv("RAPPORT_SMTP_ADDR", "smtp.example:587")
	t.Setenv("RAPPORT_SMTP_FROM", "")
	if _, err := delivery.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "RAPPORT_SMTP_FROM") {
		t.Errorf("SMTP without a sender: %v, want an error naming RAPPORT_SMTP_FROM", err)
	}
}
