package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// Span is how long a wait lasts, in calendar units: months and days on the
// customer's calendar, then an exact clock duration. `wait: 1d` ends at the
// same local time the next day (23 or 25 hours later across a
// daylight-saving change), `6mo` at the same local time and day of the
// month six months later (the month's last day when that day does not
// exist: Jan 31 + 1mo = Feb 28), `12h` exactly twelve hours later.
type Span struct {
	Months int           `json:"months,omitempty"`
	Days   int           `json:"days,omitempty"` // weeks count as 7 days
	Clock  time.Duration `json:"clock,omitempty"`
}

// maxSpanMonths bounds a span (100 years), as durations are bounded.
const maxSpanMonths = 1200

// ParseSpan reads a wait's duration: numbers with units mo (months), w, d,
// h, m and s, repeated without spaces (6mo, 1mo2w, 1d12h, 36h, 1.5d). A
// fraction of a day or week becomes clock time; months are whole.
func ParseSpan(s string) (Span, error) {
	var sp Span
	rest := s
	if rest == "" {
		return sp, fmt.Errorf("empty duration")
	}
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		j := i
		for j < len(rest) && rest[j] >= 'a' && rest[j] <= 'z' {
			j++
		}
		if i == 0 || j == i {
			return Span{}, fmt.Errorf("invalid duration %q: expected a number and a unit (mo, w, d, h, m or s) like 6mo, 3d or 1d12h", s)
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		if unit == "mo" {
			n, err := strconv.Atoi(num)
			if err != nil {
				return Span{}, fmt.Errorf("invalid duration %q: months are whole (6mo, not %smo)", s, num)
			}
			sp.Months += n
			if sp.Months > maxSpanMonths {
				return Span{}, fmt.Errorf("invalid duration %q: over 100 years", s)
			}
			continue
		}
		d, err := rules.ParseDuration(num + unit)
		if err != nil {
			return Span{}, fmt.Errorf("invalid duration %q: %w", s, err)
		}
		if unit == "d" || unit == "w" {
			days := d / (24 * time.Hour)
			if days > maxSpanMonths*31 {
				return Span{}, fmt.Errorf("invalid duration %q: over 100 years", s)
			}
			sp.Days += int(days)
			d -= days * 24 * time.Hour
		}
		sp.Clock += d
		if sp.Days > maxSpanMonths*31 || sp.Clock > 100*365*24*time.Hour || sp.Clock < 0 {
			return Span{}, fmt.Errorf("invalid duration %q: over 100 years", s)
		}
	}
	if sp.Months*31+sp.Days+int(sp.Clock/(24*time.Hour)) > maxSpanMonths*31 {
		return Span{}, fmt.Errorf("invalid duration %q: over 100 years", s)
	}
	return sp, nil
}

// Approx is the span as a fixed duration, months counted as 30 days: what
// an explanation shows, and what a worker older than calendar waits waits.
func (s Span) Approx() time.Duration {
	return time.Duration(s.Months)*30*24*time.Hour + time.Duration(s.Days)*24*time.Hour + s.Clock
}

// IsZero reports an empty span.
func (s Span) IsZero() bool { return s == Span{} }

// After is the instant the span ends when it starts at t in loc: the same
// local time of day Months and Days later (rules.LocalTime resolves a time
// a daylight-saving change skips or repeats), plus Clock.
func (s Span) After(t time.Time, loc *time.Location) time.Time {
	if s.Months == 0 && s.Days == 0 {
		return t.Add(s.Clock) // exact: no wall clock to keep (a start in a repeated hour stays where it is)
	}
	local := t.In(loc)
	y, mo, d := local.Date()
	h, mi, sec := local.Clock()
	if s.Months != 0 {
		first := time.Date(y, mo+time.Month(s.Months), 1, 0, 0, 0, 0, time.UTC)
		last := first.AddDate(0, 1, -1).Day()
		y, mo, d = first.Year(), first.Month(), min(d, last)
	}
	at := rules.LocalTime(y, mo, d+s.Days, h, mi, loc)
	return at.Add(time.Duration(sec)*time.Second + time.Duration(local.Nanosecond()) + s.Clock)
}

// String writes the span as a playbook does: 6mo, 1mo14d, 1d12h, 30m.
func (s Span) String() string {
	var b strings.Builder
	if s.Months != 0 {
		fmt.Fprintf(&b, "%dmo", s.Months)
	}
	if s.Days != 0 {
		fmt.Fprintf(&b, "%dd", s.Days) // weeks as days, as FormatDuration writes them
	}
	c := s.Clock
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := c / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			c -= n * u.unit
		}
	}
	if c > 0 {
		fmt.Fprintf(&b, "%gs", c.Seconds())
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}
