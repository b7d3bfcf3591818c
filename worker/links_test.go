package worker_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rapport-crm/rapport/worker"
)

// TestRunRefusesEmailWithoutAnHTTPSPublicURL: with email configured, the
// worker does not start while RAPPORT_PUBLIC_URL is unset, relative or
// http (#13: it used to send List-Unsubscribe: </unsubscribe?token=…>).
// With an https URL it goes on to connect (here: is stopped while it
// waits for PostgreSQL, a clean nil).
func TestRunRefusesEmailWithoutAnHTTPSPublicURL(t *testing.T) {
	t.Setenv("RAPPORT_SMTP_ADDR", "127.0.0.1:2525")
	t.Setenv("RAPPORT_SMTP_FROM", "Shop <hello@shop.example>")
	cfg := testConfig(closedAddr(t))
	cfg.DatabaseURL = "postgres://rapport@" + closedAddr(t) + "/rapport?sslmode=disable"
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct{ base, want string }{
		{"", "RAPPORT_PUBLIC_URL is not set"},
		{"/", "want an absolute URL"},
		{"rapport.example.com", "want an absolute URL"},
		{"http://rapport.example.com", "want https"},
		{"https://rapport.example.com", ""},
	} {
		t.Setenv("RAPPORT_PUBLIC_URL", tt.base)
		err := worker.Run(stopped, cfg, newLogBuffer().logger())
		if tt.want == "" {
			if err != nil {
				t.Errorf("RAPPORT_PUBLIC_URL=%q: Run = %v, want it to start connecting", tt.base, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("RAPPORT_PUBLIC_URL=%q: Run = %v, want an error with %q", tt.base, err, tt.want)
		}
	}
}

// TestRunRefusesABadScanPartitionCount: RAPPORT_SCAN_PARTITIONS that is
// not a whole number from 1 to 256 stops the worker before it connects,
// naming the variable; a good one lets it go on to connect.
func TestRunRefusesABadScanPartitionCount(t *testing.T) {
	cfg := testConfig(closedAddr(t))
	cfg.DatabaseURL = "postgres://rapport@" + closedAddr(t) + "/rapport?sslmode=disable"
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	for v, ok := range map[string]bool{"0": false, "many": false, "257": false, "8": true, "": true} {
		t.Setenv("RAPPORT_SCAN_PARTITIONS", v)
		err := worker.Run(stopped, cfg, newLogBuffer().logger())
		if ok && err != nil {
			t.Errorf("RAPPORT_SCAN_PARTITIONS=%q: Run = %v, want it to start connecting", v, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), `RAPPORT_SCAN_PARTITIONS "`+v+`"`)) {
			t.Errorf("RAPPORT_SCAN_PARTITIONS=%q: Run = %v, want an error naming the variable and the value", v, err)
		}
	}
}
