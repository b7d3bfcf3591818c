package rules

import "time"

// LocalTime is the instant the clock in loc shows h:m on the given day
// (day may overflow the month, as in time.Date). A time that does not
// exist that day, skipped by a daylight-saving jump forward (02:30 in
// America/Los_Angeles on the second Sunday of March), is the first instant
// after the gap (03:00 PDT); a time that occurs twice, repeated by a jump
// back, is its first occurrence (01:30 PDT, not PST). time.Date leaves
// both choices unspecified.
func LocalTime(y int, mo time.Month, day, h, m int, loc *time.Location) time.Time {
	t := time.Date(y, mo, day, h, m, 0, 0, loc)
	want := h*60 + m
	switch got := t.Hour()*60 + t.Minute(); {
	case got < want: // normalized to before the gap: the gap starts where this zone period ends
		_, end := t.ZoneBounds()
		return end
	case got > want: // normalized to after the gap
		start, _ := t.ZoneBounds()
		return start
	}
	// The clock time exists; after a jump back it exists twice, and the
	// same clock time an offset-difference earlier, in the zone period
	// before t's, is the first occurrence.
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return t
	}
	_, prev := start.Add(-time.Nanosecond).Zone()
	if _, cur := t.Zone(); prev > cur {
		if earlier := t.Add(-time.Duration(prev-cur) * time.Second); earlier.Before(start) {
			return earlier
		}
	}
	return t
}

// SecondOccurrence is, for an instant whose local clock time repeats after
// a daylight-saving jump back (01:30 on the night clocks go back), the
// later instant that shows the same clock time; for any other instant, t.
func SecondOccurrence(t time.Time) time.Time {
	_, end := t.ZoneBounds()
	if end.IsZero() {
		return t
	}
	_, cur := t.Zone()
	_, next := end.Zone()
	if next >= cur {
		return t
	}
	if later := t.Add(time.Duration(cur-next) * time.Second); !later.Before(end) {
		return later
	}
	return t
}
