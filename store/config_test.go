package store

import (
	"testing"
	"time"
)

func TestParseCap(t *testing.T) {
	good := map[string]struct {
		max int
		per time.Duration
	}{
		"3/7d":     {3, 7 * 24 * time.Hour},
		"1/12h":    {1, 12 * time.Hour},
		"5/1d12h":  {5, 36 * time.Hour},
		" 2 / 7d ": {2, 7 * 24 * time.Hour},
		"off":      {0, 0},
	}
	for in, want := range good {
		max, per, err := ParseCap(in)
		if err != nil || max != want.max || per != want.per {
			t.Errorf("ParseCap(%q) = %d, %v, %v; want %d, %v", in, max, per, err, want.max, want.per)
		}
	}
	for _, in := range []string{"", "3", "0/7d", "-1/7d", "3/", "3/0d", "3/week", "x/7d", "3/7d3"} {
		if _, _, err := ParseCap(in); err == nil {
			t.Errorf("ParseCap(%q) accepted", in)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("RAPPORT_FREQUENCY_CAP", "2/1d")
	t.Setenv("RAPPORT_SOFT_BOUNCE_LIMIT", "5")
	cfg, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CapMax != 2 || cfg.CapPer != 24*time.Hour || cfg.SoftBounceLimit != 5 {
		t.Errorf("config = %+v", cfg)
	}
	t.Setenv("RAPPORT_FREQUENCY_CAP", "lots")
	if _, err := ConfigFromEnv(); err == nil {
		t.Error("bad RAPPORT_FREQUENCY_CAP accepted")
	}
}
