package rules_test

import (
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// An unset date prints as nothing, never as 0001-01-01.
func TestFormatUnsetTime(t *testing.T) {
	day := time.Date(2026, 3, 14, 18, 30, 0, 0, time.UTC)
	var nilTime *time.Time
	for _, tc := range []struct {
		v    any
		want string
	}{
		{time.Time{}, ""},
		{time.Time{}.In(time.FixedZone("X", 8*3600)), ""},
		{nilTime, ""},
		{&time.Time{}, ""},
		{day, "2026-03-14"},
		{&day, "2026-03-14"},
		{nil, ""},
		{12.0, "12"},
		{12.5, "12.50"},
	} {
		if got := rules.Format(tc.v); got != tc.want {
			t.Errorf("Format(%#v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
