package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

func TestParseSpan(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Span
		str  string
	}{
		{"6mo", Span{Months: 6}, "6mo"},
		{"1mo2w", Span{Months: 1, Days: 14}, "1mo14d"},
		{"3d", Span{Days: 3}, "3d"},
		{"1d12h", Span{Days: 1, Clock: 12 * time.Hour}, "1d12h"},
		{"1.5d", Span{Days: 1, Clock: 12 * time.Hour}, "1d12h"},
		{"36h", Span{Clock: 36 * time.Hour}, "36h"},
		{"30m", Span{Clock: 30 * time.Minute}, "30m"},
	} {
		got, err := ParseSpan(tc.in)
		if err != nil || got != tc.want || got.String() != tc.str {
			t.Errorf("ParseSpan(%q) = %+v (%s), %v; want %+v (%s)", tc.in, got, got.String(), err, tc.want, tc.str)
		}
	}
	for in, want := range map[string]string{
		"1.5mo":        "months are whole",
		"6M":           "expected a number and a unit",
		"3 d":          "expected a number and a unit",
		"":             "empty duration",
		"1201mo":       "over 100 years",
		"37000d37000d": "over 100 years",
		"1200mo1d":     "over 100 years",
	} {
		if _, err := ParseSpan(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSpan(%q): err %v, want %q", in, err, want)
		}
	}
}

// TestSpanAfter: days keep the local time across daylight-saving changes,
// months keep the day of the month or take the month's last day, clock time
// is exact.
func TestSpanAfter(t *testing.T) {
	la, sh := rules.Location("America/Los_Angeles"), rules.Location("Asia/Shanghai")
	for _, tc := range []struct {
		span  string
		from  time.Time
		want  time.Time
		hours float64 // elapsed, to show the calendar at work
	}{
		{"1d", time.Date(2026, 3, 7, 9, 0, 0, 0, la), time.Date(2026, 3, 8, 9, 0, 0, 0, la), 23},
		{"1d", time.Date(2026, 10, 31, 9, 0, 0, 0, la), time.Date(2026, 11, 1, 9, 0, 0, 0, la), 25},
		{"24h", time.Date(2026, 3, 7, 9, 0, 0, 0, la), time.Date(2026, 3, 8, 10, 0, 0, 0, la), 24},
		{"1mo", time.Date(2026, 1, 31, 9, 0, 0, 0, sh), time.Date(2026, 2, 28, 9, 0, 0, 0, sh), 28 * 24},
		{"1mo", time.Date(2028, 1, 31, 9, 0, 0, 0, sh), time.Date(2028, 2, 29, 9, 0, 0, 0, sh), 29 * 24},
		{"1mo", time.Date(2026, 3, 31, 9, 0, 0, 0, sh), time.Date(2026, 4, 30, 9, 0, 0, 0, sh), 30 * 24},
		{"6mo", time.Date(2026, 8, 31, 9, 30, 0, 0, sh), time.Date(2027, 2, 28, 9, 30, 0, 0, sh), 181 * 24},
		{"1mo1d12h", time.Date(2026, 1, 15, 9, 0, 0, 0, sh), time.Date(2026, 2, 16, 21, 0, 0, 0, sh), 32*24 + 12},
		{"1d", time.Date(2026, 3, 7, 2, 30, 0, 0, la), time.Date(2026, 3, 8, 3, 0, 0, 0, la), 23.5}, // 02:30 does not exist on the 8th
	} {
		sp, err := ParseSpan(tc.span)
		if err != nil {
			t.Fatal(err)
		}
		got := sp.After(tc.from, tc.from.Location())
		if !got.Equal(tc.want) || got.Sub(tc.from).Hours() != tc.hours {
			t.Errorf("%s after %v = %v (%.1fh), want %v (%.1fh)", tc.span, tc.from, got, got.Sub(tc.from).Hours(), tc.want, tc.hours)
		}
	}
}

// TestSpanDiagnostics: months are for waits only, and after_entry stands
// alone; each error names where.
func TestSpanDiagnostics(t *testing.T) {
	head := "playbook: t\nstage: nurture\ntrigger: { manual: true }\n"
	for _, tc := range []struct{ src, want string }{
		{head + "goal: { event: purchase, within: 6mo }\nsteps:\n  - wait: 1d\n", "t.yaml:4:34: within: months (6mo) are for waits only; write days here, like 180d"},
		{head + "steps:\n  - wait: { after_entry: 60d, until: \"09:00\" }\n", "t.yaml:5:13: wait: after_entry stands alone; use either after_entry, until or event"},
		{head + "steps:\n  - wait: { after_entry: 0mo }\n", "t.yaml:5:26: after_entry: duration \"0mo\" must be greater than zero"},
		{head + "steps:\n  - wait: 1.5mo\n", "t.yaml:5:11: wait: bad duration \"1.5mo\": expected a number and a unit (mo, w, d, h, m or s) like 3d, 6mo or 1d12h"},
	} {
		_, err := Compile("t.yaml", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\nerr %v\nwant %s", tc.src, err, tc.want)
		}
	}
	if p, err := Compile("t.yaml", []byte(head+"steps:\n  - wait: { after_entry: 6mo }\n")); err != nil || p.Steps[0].Wait.Kind != WaitAfterEntry || *p.Steps[0].Wait.Span != (Span{Months: 6}) {
		t.Fatalf("after_entry 6mo: %+v, %v", p, err)
	}
}

// TestAfterEntryDoesNotPauseALoop: a loop whose only wait is after_entry
// would spin once the moment has passed; validate refuses it.
func TestAfterEntryDoesNotPauseALoop(t *testing.T) {
	src := "playbook: t\nstage: nurture\ntrigger: { manual: true }\nsteps:\n  - id: tick\n    wait: { after_entry: 1d }\n  - points: { award: 10, reason: loop }\n  - goto: tick\n"
	_, err := Compile("t.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), `t.yaml:8:5: step "goto_3" loops back without waiting (through tick, points_2, goto_3); put a wait step in the loop (an after_entry wait ends once, not on every pass)`) {
		t.Fatalf("err %v", err)
	}
}
