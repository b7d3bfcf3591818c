package rules_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// evalValue compiles src as kind and evaluates it for customer c at now,
// failing the test on any error.
func evalValue(t *testing.T, src string, kind rules.Kind, c rules.Customer, ev rules.Event, now time.Time) any {
	t.Helper()
	r, err := rules.Compile(src, kind)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	v, err := r.Value(rules.NewEnv(c, ev, now))
	if err != nil {
		t.Fatalf("evaluate %q: %v", src, err)
	}
	return v
}

// TestBuiltinsThroughRules checks every built-in as a marketer writes it,
// with `now` inserted by the compiler rather than passed by the author.
func TestBuiltinsThroughRules(t *testing.T) {
	now := utc(2026, 11, 23, 14, 0)
	shanghaiBirthday := rules.Customer{Timezone: "Asia/Shanghai", Birthday: day(1990, 11, 24)}
	tests := []struct {
		name string
		src  string
		c    rules.Customer
		ev   rules.Event
		now  time.Time
		want any
	}{
		{"daysSince", "daysSince(customer.signup_at)", rules.Customer{SignupAt: now.AddDate(0, 0, -45)}, rules.Event{}, now, int64(45)},
		{"daysSince unset", "daysSince(customer.last_purchase_at)", rules.Customer{}, rules.Event{}, now, int64(-1)},
		{"daysSince of the event", "daysSince(event.time)", rules.Customer{}, rules.Event{Time: now.Add(-50 * time.Hour)}, now, int64(2)},
		{"hoursSince", "hoursSince(event.time)", rules.Customer{}, rules.Event{Time: now.Add(-50 * time.Hour)}, now, int64(50)},
		{"hoursSince unset", "hoursSince(event.time)", rules.Customer{}, rules.Event{}, now, int64(-1)},
		{"derived days_since_last_purchase", "customer.days_since_last_purchase", rules.Customer{LastPurchaseAt: now.AddDate(0, 0, -91)}, rules.Event{}, now, int64(91)},
		{"derived days_since_signup unset", "customer.days_since_signup", rules.Customer{}, rules.Event{}, now, int64(-1)},
		{"localHour Kolkata", "localHour(customer.timezone)", rules.Customer{Timezone: "Asia/Kolkata"}, rules.Event{}, utc(2026, 11, 23, 3, 30), 9},
		{"localHour literal zone", `localHour("Europe/Berlin")`, rules.Customer{}, rules.Event{}, utc(2026, 3, 29, 1, 0), 3},
		{"localHour unknown zone is UTC", "localHour(customer.timezone)", rules.Customer{Timezone: "Not/AZone"}, rules.Event{}, utc(2026, 11, 23, 3, 30), 3},
		{"localHour New York fall-back", "localHour(customer.timezone)", rules.Customer{Timezone: "America/New_York"}, rules.Event{}, utc(2026, 11, 1, 6, 30), 1},
		// 16:00 UTC on the 23rd is 00:00 on the 24th in Shanghai.
		{"isBirthday Shanghai ahead of UTC", "isBirthday(customer)", shanghaiBirthday, rules.Event{}, utc(2026, 11, 23, 16, 0), true},
		{"isBirthday Shanghai not yet", "isBirthday(customer)", shanghaiBirthday, rules.Event{}, utc(2026, 11, 23, 15, 59), false},
		{"isBirthday through a variable", "let c = customer; isBirthday(c)", shanghaiBirthday, rules.Event{}, utc(2026, 11, 23, 16, 0), true},
		{"isBirthday unset", "isBirthday(customer)", rules.Customer{Timezone: "UTC"}, rules.Event{}, now, false},
		{"isBirthday Kiritimati", "isBirthday(customer)", rules.Customer{Timezone: "Pacific/Kiritimati", Birthday: day(1990, 11, 24)}, rules.Event{}, utc(2026, 11, 23, 10, 0), true},
		{"isBirthday Pago Pago", "isBirthday(customer)", rules.Customer{Timezone: "Pacific/Pago_Pago", Birthday: day(1990, 11, 24)}, rules.Event{}, utc(2026, 11, 23, 10, 0), false},
		{"isBirthday 29 Feb non-leap", "isBirthday(customer)", rules.Customer{Birthday: day(1996, 2, 29)}, rules.Event{}, utc(2027, 2, 28, 9, 0), true},
		{"isBirthday 29 Feb leap", "isBirthday(customer)", rules.Customer{Birthday: day(1996, 2, 29)}, rules.Event{}, utc(2028, 2, 28, 9, 0), false},
		{"isAnniversary of signup", "isAnniversary(customer.signup_at, customer.timezone)", rules.Customer{Timezone: "Europe/Berlin", SignupAt: day(2020, 11, 24)}, rules.Event{}, utc(2026, 11, 23, 23, 0), true},
		{"isAnniversary unset", "isAnniversary(customer.signup_at, customer.timezone)", rules.Customer{Timezone: "Europe/Berlin"}, rules.Event{}, now, false},
		{"duration", `duration("1d12h")`, rules.Customer{}, rules.Event{}, now, 36 * time.Hour},
		{"duration in time arithmetic", `now - customer.last_purchase_at > duration("2w")`, rules.Customer{LastPurchaseAt: now.AddDate(0, 0, -15)}, rules.Event{}, now, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := evalValue(t, tt.src, rules.Text, tt.c, tt.ev, tt.now); got != tt.want {
				t.Errorf("%s = %#v, want %#v", tt.src, got, tt.want)
			}
		})
	}
}

// TestDurationBuiltinBadInput checks that a bad duration literal surfaces
// the ParseDuration message as a rule error rather than a zero duration.
func TestDurationBuiltinBadInput(t *testing.T) {
	r, err := rules.Compile(`duration("3x") > duration("1d")`, rules.Bool)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	_, err = r.Bool(rules.NewEnv(rules.Customer{}, rules.Event{}, utc(2026, 11, 23, 0, 0)))
	var re *rules.Error
	if !errors.As(err, &re) || !strings.Contains(re.Msg, `invalid duration "3x": unknown unit "x"`) {
		t.Errorf("error = %v, want a *rules.Error about the unit of \"3x\"", err)
	}
}

func TestNowIsEngineTime(t *testing.T) {
	now := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)

	t.Run("expr's now() is refused: now is a value", func(t *testing.T) {
		_, err := rules.Compile("now() > customer.signup_at", rules.Bool)
		var re *rules.Error
		if !errors.As(err, &re) {
			t.Fatalf("Compile(now()) error = %v, want a *rules.Error", err)
		}
		if re.Msg != "now is a value; write now, not now()" || re.Line != 1 || re.Column != 1 {
			t.Errorf("error %q, want 1:1: now is a value; write now, not now()", re)
		}
	})

	t.Run("now is the time given to NewEnv", func(t *testing.T) {
		for _, at := range []time.Time{now, now.AddDate(-3, 2, 1).In(zone(t, "Asia/Shanghai"))} {
			got := evalValue(t, "now", rules.Text, rules.Customer{}, rules.Event{}, at)
			if tm, ok := got.(time.Time); !ok || !tm.Equal(at) {
				t.Errorf("now = %v, want %v", got, at)
			}
		}
	})

	t.Run("built-ins use the engine's now", func(t *testing.T) {
		c := rules.Customer{SignupAt: utc(2026, 1, 1, 0, 0)}
		r, err := rules.Compile("daysSince(customer.signup_at) > 30", rules.Bool)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			now  time.Time
			want bool
		}{{utc(2026, 1, 31, 0, 0), false}, {utc(2026, 2, 1, 0, 0), true}} {
			got, err := r.Bool(rules.NewEnv(c, rules.Event{}, tt.now))
			if err != nil || got != tt.want {
				t.Errorf("at %v: %v, %v; want %v", tt.now, got, err, tt.want)
			}
		}
	})

	t.Run("date() reads in UTC", func(t *testing.T) {
		for src, want := range map[string]time.Time{
			`date("2026-11-23")`:          utc(2026, 11, 23, 0, 0),
			`date("2026-11-23 10:00:00")`: utc(2026, 11, 23, 10, 0),
		} {
			got := evalValue(t, src, rules.Text, rules.Customer{}, rules.Event{}, now)
			tm, ok := got.(time.Time)
			if !ok || !tm.Equal(want) || tm.Location() != time.UTC {
				t.Errorf("%s = %v, want %v in UTC", src, got, want)
			}
		}
	})
}
