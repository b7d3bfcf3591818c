package pushdown

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// The month and day of a date as a number (March 14 is 314), spelled as
// the indexes of migration 00010 spell them: the planner uses an
// expression index only for the same expression. A birthday is a date;
// the signup anniversary is the month and day of signup_at in UTC, which
// is how rules read it (rules.IsAnniversary takes the date's own month and
// day, and the store reads times in UTC).
const (
	birthdayMonthDay = "((extract(month FROM c.birthday) * 100 + extract(day FROM c.birthday))::integer)"
	signupMonthDay   = "((extract(month FROM (c.signup_at AT TIME ZONE 'UTC')) * 100" +
		" + extract(day FROM (c.signup_at AT TIME ZONE 'UTC')))::integer)"
)

// dateColumn is the column and month-day expression of an anniversary.
type dateColumn struct {
	col, monthDay, name string
	zones               []string
}

func (b *builder) dateColumn(field string) dateColumn {
	if field == "birthday" {
		return dateColumn{col: "c.birthday", monthDay: birthdayMonthDay, name: "birthday", zones: b.zones.Birthday}
	}
	return dateColumn{col: "c.signup_at", monthDay: signupMonthDay, name: "signup", zones: b.zones.Signup}
}

// DueAt is the instant a date trigger at local time `at` is due in zone
// loc within the slot (now-window, now], if it is due in it: the `at` time
// of the local date of now, or of now-window, whichever falls in the slot.
// scan.DateDue decides with it too, so that the SQL and the Go check agree.
func DueAt(at engine.TimeOfDay, loc *time.Location, now time.Time, window time.Duration) (time.Time, bool) {
	from := now.Add(-window)
	// The slot touches at most two local dates: those of its two ends.
	for _, day := range []time.Time{now.In(loc), from.In(loc)} {
		t := time.Date(day.Year(), day.Month(), day.Day(), at.Hour(), at.Minute(), 0, 0, loc)
		if t.After(from) && !t.After(now) {
			return t, true
		}
	}
	return time.Time{}, false
}

// monthDays are the month-days celebrated on local date d: its own, and 29
// February on 28 February of a common year (rules.IsAnniversary).
func monthDays(d time.Time) []int {
	md := int(d.Month())*100 + d.Day()
	y := d.Year()
	if md == 228 && !(y%4 == 0 && (y%100 != 0 || y%400 == 0)) {
		return []int{228, 229}
	}
	return []int{md}
}

// byMonthDays writes "the customer's zone is one of these and the
// month-day one of those" for zones grouped by the local date that counts
// in each (due(zone) says which, false when none does): exact, since a
// zone has one such date.
func (b *builder) byMonthDays(dc dateColumn, due func(zone string) (time.Time, bool), what string) cond {
	groups := map[string][]string{} // month-days → zones
	mds := map[string][]int{}
	for _, z := range dc.zones {
		d, ok := due(z)
		if !ok {
			continue
		}
		m := monthDays(d)
		key := fmt.Sprint(m)
		groups[key] = append(groups[key], z)
		mds[key] = m
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t := sqlFalse
	for _, k := range keys {
		zones := groups[k]
		sort.Strings(zones)
		days := make([]string, len(mds[k]))
		for i, md := range mds[k] {
			days[i] = fmt.Sprintf("%02d-%02d", md/100, md%100)
		}
		group := sqlAnd(
			"c.timezone = ANY("+b.arg(zones, "text[]", fmt.Sprintf("%s, where %s %s", zoneList(zones), what, strings.Join(days, " or ")))+")",
			dc.monthDay+" = ANY("+b.arg(mds[k], "integer[]", dc.name+" month-days "+strings.Join(days, ", "))+")")
		t = sqlOr(t, group)
	}
	t = sqlAnd(dc.col+" IS NOT NULL", t)
	return exactCond(t, sqlNot(t))
}

// zoneList names a few zones, or counts many.
func zoneList(zones []string) string {
	if len(zones) > 5 {
		return fmt.Sprintf("the %d time zones", len(zones))
	}
	return "time zones " + quoteList(zones)
}

// anniversary is isAnniversary(customer.<field>, customer.timezone), that
// is isBirthday(customer): the local date of now in the customer's zone.
func (b *builder) anniversary(field string) cond {
	return b.byMonthDays(b.dateColumn(field), func(zone string) (time.Time, bool) {
		return b.now.In(rules.Location(zone)), true
	}, "it is now")
}

// dateTrigger is a date trigger's condition: the customer's local `at`
// time fell in the slot, on the anniversary of the date. Exact for
// birthdays; a signup anniversary is not due on the signup day itself,
// which only Go checks.
func (b *builder) dateTrigger(t engine.Trigger, window time.Duration) cond {
	var field string
	switch t.Date {
	case dateBirthday:
		field = "birthday"
	case dateSignup:
		field = "signup_at"
	default:
		return unknownCond
	}
	c := b.byMonthDays(b.dateColumn(field), func(zone string) (time.Time, bool) {
		loc := rules.Location(zone)
		at, ok := DueAt(t.At, loc, b.now, window)
		return at.In(loc), ok
	}, fmt.Sprintf("%s fell in the last %s on", t.At, formatDuration(window)))
	if t.Date == dateSignup {
		b.inGo = append(b.inGo, "not on the signup day itself")
		c.exactT = false
	}
	return c
}

// formatDuration writes a signed duration in the playbook's units.
func formatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + engine.FormatDuration(-d)
	}
	return engine.FormatDuration(d)
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func quote(s string) string { return strconv.Quote(s) }

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
