package channels

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestFromEnv(t *testing.T) {
	env := map[string]string{
		"RAPPORT_SMTP_ADDR": "smtp.example.com:587", "RAPPORT_SMTP_USER": "u", "RAPPORT_SMTP_PASSWORD": "hunter2",
		"RAPPORT_SMTP_FROM": "Shop <hi@shop.example>", "RAPPORT_SMTP_TLS": "STARTTLS",
		"RAPPORT_SMS_URL": "https://sms.example/Messages.json", "RAPPORT_SMS_FROM": "+15005550006", "RAPPORT_SMS_TOKEN": "tok",
		"RAPPORT_WEBHOOK_URL": "https://hooks.example/rapport", "RAPPORT_WEBHOOK_SECRET": "whsec",
	}
	set, err := fromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := set["email"].(*Email); !ok {
		t.Errorf("email = %T", set["email"])
	}
	if _, ok := set["sms"].(*SMS); !ok {
		t.Errorf("sms = %T", set["sms"])
	}
	if _, ok := set["webhook"].(*Webhook); !ok {
		t.Errorf("webhook = %T", set["webhook"])
	}

	// Nothing configured: no channels, unless the dev log fallback is on.
	set, err = fromEnv(func(string) string { return "" })
	if err != nil || len(set) != 0 {
		t.Errorf("empty env: %v %v, want no channels", set, err)
	}
	set, err = fromEnv(func(k string) string {
		if k == "RAPPORT_DEV_CHANNELS" {
			return "log"
		}
		return ""
	})
	if err != nil || len(set) != 3 {
		t.Errorf("dev log: %v %v, want three log channels", set, err)
	}

	// Bad values are named, and no secret appears in the error.
	for k, v := range map[string]string{
		"RAPPORT_SMTP_ADDR": "no-port", "RAPPORT_SMTP_TLS": "maybe", "RAPPORT_SMS_URL": "ftp://x",
		"RAPPORT_WEBHOOK_SECRET": "", "RAPPORT_DEV_CHANNELS": "stdout",
	} {
		bad := map[string]string{}
		for k2, v2 := range env {
			bad[k2] = v2
		}
		bad[k] = v
		_, err := fromEnv(func(k string) string { return bad[k] })
		if err == nil {
			t.Errorf("%s=%q accepted", k, v)
			continue
		}
		if !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: error %q does not name the variable", k, v, err)
		}
		for _, secret := range []string{"hunter2", "tok", "whsec"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s=%q: error %q leaks a secret", k, v, err)
			}
		}
	}
}

func TestLogChannel(t *testing.T) {
	var buf strings.Builder
	l := &Log{Name: "sms", Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	id, err := l.Deliver(context.Background(), Message{Key: "k1", To: "+4915112345678", Text: "hello"})
	if err != nil || id != "log-"+keyHash("k1") {
		t.Fatalf("deliver: %q %v", id, err)
	}
	for _, want := range []string{"channel=sms", "key=k1", "text=hello"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log %q lacks %q", buf.String(), want)
		}
	}
}
