package rules_test

import (
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// utc is shorthand for an instant written in UTC.
func utc(y int, mo time.Month, d, h, mi int) time.Time {
	return time.Date(y, mo, d, h, mi, 0, 0, time.UTC)
}

// zone loads an IANA zone or fails the test: these tests need real zone data.
func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone %s: %v", name, err)
	}
	return loc
}

// day is a birthday/anniversary date as the store keeps it: midnight UTC.
func day(y int, mo time.Month, d int) time.Time { return time.Date(y, mo, d, 0, 0, 0, 0, time.UTC) }

func TestDaysSince(t *testing.T) {
	now := utc(2026, 11, 23, 14, 0)
	ny := zone(t, "America/New_York")
	tests := []struct {
		name string
		now  time.Time
		t    time.Time
		want int64
	}{
		{"unset date is -1", now, time.Time{}, -1},
		{"same instant", now, now, 0},
		{"just under one day", now, now.Add(-24*time.Hour + time.Second), 0},
		{"exactly one day", now, now.Add(-24 * time.Hour), 1},
		{"ninety days", now, now.AddDate(0, 0, -90), 90},
		{"ninety days and 23h is still 90", now, now.Add(-(90*24 + 23) * time.Hour), 90},
		// Whole elapsed 24h periods, not calendar days: across New York's
		// spring-forward night noon-to-noon is only 23 hours.
		{"spring-forward noon to noon is 23h", time.Date(2026, 3, 8, 12, 0, 0, 0, ny), time.Date(2026, 3, 7, 12, 0, 0, 0, ny), 0},
		{"fall-back noon to noon is 25h", time.Date(2026, 11, 1, 12, 0, 0, 0, ny), time.Date(2026, 10, 31, 12, 0, 0, 0, ny), 1},
		{"zone of the values does not matter", now.In(zone(t, "Asia/Shanghai")), now.Add(-48 * time.Hour).In(ny), 2},
		{"a future date counts down", now, now.Add(72 * time.Hour), -3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rules.DaysSince(tt.now, tt.t); got != tt.want {
				t.Errorf("DaysSince(%v, %v) = %d, want %d", tt.now, tt.t, got, tt.want)
			}
		})
	}
}

func TestHoursSince(t *testing.T) {
	now := utc(2026, 11, 23, 14, 0)
	ny := zone(t, "America/New_York")
	tests := []struct {
		name string
		now  time.Time
		t    time.Time
		want int64
	}{
		{"unset date is -1", now, time.Time{}, -1},
		{"59 minutes is 0", now, now.Add(-59 * time.Minute), 0},
		{"36 hours", now, now.Add(-36 * time.Hour), 36},
		{"spring-forward 01:00 to 04:00 local is 2h", time.Date(2026, 3, 8, 4, 0, 0, 0, ny), time.Date(2026, 3, 8, 1, 0, 0, 0, ny), 2},
		{"fall-back 00:00 to 03:00 local is 4h", time.Date(2026, 11, 1, 3, 0, 0, 0, ny), time.Date(2026, 11, 1, 0, 0, 0, 0, ny), 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rules.HoursSince(tt.now, tt.t); got != tt.want {
				t.Errorf("HoursSince = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestLocalHour(t *testing.T) {
	tests := []struct {
		name string
		now  time.Time
		tz   string
		want int
	}{
		{"empty zone is UTC", utc(2026, 11, 23, 14, 0), "", 14},
		{"unknown zone falls back to UTC", utc(2026, 11, 23, 14, 0), "Mars/Olympus_Mons", 14},
		{"Local is not the machine zone", utc(2026, 11, 23, 14, 0), "Local", 14},
		{"Shanghai +8", utc(2026, 11, 23, 17, 30), "Asia/Shanghai", 1},
		{"Kolkata +5:30 just before 9", utc(2026, 11, 23, 3, 29), "Asia/Kolkata", 8},
		{"Kolkata +5:30 at 9", utc(2026, 11, 23, 3, 30), "Asia/Kolkata", 9},
		{"Kathmandu +5:45", utc(2026, 11, 23, 3, 15), "Asia/Kathmandu", 9},
		{"New York before spring-forward (EST)", utc(2026, 3, 8, 6, 59), "America/New_York", 1},
		{"New York after spring-forward skips 2 (EDT)", utc(2026, 3, 8, 7, 0), "America/New_York", 3},
		{"New York fall-back first 1am (EDT)", utc(2026, 11, 1, 5, 30), "America/New_York", 1},
		{"New York fall-back second 1am (EST)", utc(2026, 11, 1, 6, 30), "America/New_York", 1},
		{"New York after fall-back", utc(2026, 11, 1, 7, 0), "America/New_York", 2},
		{"Berlin before spring-forward (CET)", utc(2026, 3, 29, 0, 59), "Europe/Berlin", 1},
		{"Berlin after spring-forward (CEST)", utc(2026, 3, 29, 1, 0), "Europe/Berlin", 3},
		{"Berlin fall-back first 2am (CEST)", utc(2026, 10, 25, 0, 30), "Europe/Berlin", 2},
		{"Berlin fall-back second 2am (CET)", utc(2026, 10, 25, 1, 30), "Europe/Berlin", 2},
		{"Kiritimati +14", utc(2026, 11, 23, 10, 0), "Pacific/Kiritimati", 0},
		{"Pago Pago -11", utc(2026, 11, 23, 10, 0), "Pacific/Pago_Pago", 23},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rules.LocalHour(tt.now, tt.tz); got != tt.want {
				t.Errorf("LocalHour(%v, %q) = %d, want %d", tt.now, tt.tz, got, tt.want)
			}
		})
	}
}

func TestIsAnniversary(t *testing.T) {
	birthday := day(1990, 5, 10)
	leapling := day(1996, 2, 29)
	tests := []struct {
		name string
		now  time.Time
		date time.Time
		tz   string
		want bool
	}{
		{"unset date is never", utc(2026, 1, 1, 0, 0), time.Time{}, "UTC", false},
		{"the day itself in UTC", utc(2026, 5, 10, 12, 0), birthday, "UTC", true},
		{"the day before in UTC", utc(2026, 5, 9, 23, 59), birthday, "UTC", false},
		{"the day after in UTC", utc(2026, 5, 11, 0, 0), birthday, "UTC", false},
		// 17:00 UTC on the 9th is already 01:00 on the 10th in Shanghai.
		{"Shanghai is already on the day while UTC is the day before", utc(2026, 5, 9, 17, 0), birthday, "Asia/Shanghai", true},
		{"the same instant in UTC is not", utc(2026, 5, 9, 17, 0), birthday, "UTC", false},
		{"Shanghai has left the day while UTC is still on it", utc(2026, 5, 10, 16, 0), birthday, "Asia/Shanghai", false},
		// The first and last places on earth to see a date are 25h apart.
		{"Kiritimati (+14) starts first", utc(2026, 5, 9, 10, 0), birthday, "Pacific/Kiritimati", true},
		{"Pago Pago (-11) not yet", utc(2026, 5, 9, 10, 0), birthday, "Pacific/Pago_Pago", false},
		{"Pago Pago (-11) at its midnight", utc(2026, 5, 10, 11, 0), birthday, "Pacific/Pago_Pago", true},
		{"Kiritimati (+14) has moved on", utc(2026, 5, 10, 11, 0), birthday, "Pacific/Kiritimati", false},
		{"Pago Pago (-11) last minute", utc(2026, 5, 11, 10, 59), birthday, "Pacific/Pago_Pago", true},
		{"29 Feb in a leap year: the 29th", utc(2028, 2, 29, 12, 0), leapling, "UTC", true},
		{"29 Feb in a leap year: not the 28th", utc(2028, 2, 28, 12, 0), leapling, "UTC", false},
		{"29 Feb in a non-leap year: the 28th", utc(2026, 2, 28, 12, 0), leapling, "UTC", true},
		{"29 Feb in a non-leap year: not 1 March", utc(2026, 3, 1, 12, 0), leapling, "UTC", false},
		{"29 Feb in 2100 (not leap): the 28th", utc(2100, 2, 28, 12, 0), leapling, "UTC", true},
		{"29 Feb in 2000 (leap): not the 28th", utc(2000, 2, 28, 12, 0), leapling, "UTC", false},
		{"29 Feb, non-leap year, local zone decides", utc(2027, 2, 27, 20, 0), leapling, "Asia/Shanghai", true},
		{"a 28 Feb date is not moved in leap years", utc(2028, 2, 28, 12, 0), day(1990, 2, 28), "UTC", true},
		{"unknown zone falls back to UTC", utc(2026, 5, 9, 17, 0), birthday, "Nowhere/Atlantis", false},
		{"New York spring-forward day", utc(2026, 3, 8, 7, 30), day(1980, 3, 8), "America/New_York", true},
		{"New York fall-back day, second 1am", utc(2026, 11, 1, 6, 30), day(1980, 11, 1), "America/New_York", true},
		{"New York after fall-back day ends", utc(2026, 11, 2, 5, 0), day(1980, 11, 1), "America/New_York", false},
		{"Berlin spring-forward day", utc(2026, 3, 28, 23, 30), day(1980, 3, 29), "Europe/Berlin", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rules.IsAnniversary(tt.now, tt.date, tt.tz); got != tt.want {
				t.Errorf("IsAnniversary(%v, %v, %q) = %v, want %v", tt.now, tt.date, tt.tz, got, tt.want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	valid := []struct {
		in   string
		want time.Duration
	}{
		{"90d", 90 * 24 * time.Hour},
		{"2w", 14 * 24 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"1.5h", 90 * time.Minute},
		{"30m", 30 * time.Minute},
		{"45s", 45 * time.Second},
		{"36h", 36 * time.Hour},
		{" 3d ", 72 * time.Hour},
		{"1w2d3h4m5s", 9*24*time.Hour + 3*time.Hour + 4*time.Minute + 5*time.Second},
	}
	for _, tt := range valid {
		t.Run(tt.in, func(t *testing.T) {
			got, err := rules.ParseDuration(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
	invalid := []struct{ in, msg string }{
		{"", "empty duration"},
		{"   ", "empty duration"},
		{"90", `invalid duration "90": missing unit (w, d, h, m or s)`},
		{"3x", `invalid duration "3x": unknown unit "x" (use w, d, h, m or s)`},
		{"3days", `invalid duration "3days": unknown unit "days" (use w, d, h, m or s)`},
		{"d", `invalid duration "d": expected a number such as 90d, 2w, 36h or 30m`},
		{"-1d", `invalid duration "-1d": expected a number such as 90d, 2w, 36h or 30m`},
		{"1d 12h", `invalid duration "1d 12h": no spaces allowed inside a duration (write 1d12h)`},
		{"1.2.3h", `invalid duration "1.2.3h": bad number "1.2.3"`},
		{"1000000w", `invalid duration "1000000w": too long`},
		// Each part fits; the sum would wrap to a negative duration.
		{"50000d50000d50000d", `invalid duration "50000d50000d50000d": too long`},
	}
	for _, tt := range invalid {
		t.Run("invalid "+tt.in, func(t *testing.T) {
			got, err := rules.ParseDuration(tt.in)
			if err == nil {
				t.Fatalf("ParseDuration(%q) = %v, want error %q", tt.in, got, tt.msg)
			}
			if err.Error() != tt.msg {
				t.Errorf("ParseDuration(%q) error = %q, want %q", tt.in, err, tt.msg)
			}
		})
	}
}

func TestLocation(t *testing.T) {
	for _, tz := range []string{"", "Local", "Mars/Olympus_Mons", "../../etc/passwd"} {
		if got := rules.Location(tz); got != time.UTC {
			t.Errorf("Location(%q) = %v, want UTC", tz, got)
		}
	}
	// A cached zone must be the same zone on every call.
	first, second := rules.Location("Asia/Kolkata"), rules.Location("Asia/Kolkata")
	if first.String() != "Asia/Kolkata" || first != second {
		t.Errorf("Location(Asia/Kolkata) = %v then %v, want the same Asia/Kolkata", first, second)
	}
}
