package rules

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
)

// The built-ins below that depend on the current time take `now` as a hidden
// first argument: a patcher (nowArgument) inserts the `now` variable into
// every call, so marketers write daysSince(customer.signup_at) while the
// function still never reads the wall clock.

// DaysSince returns whole days from t to now, or -1 when t is unset, so that
// "never purchased" never looks like "inactive for a long time".
func DaysSince(now, t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return int64(now.Sub(t) / (24 * time.Hour))
}

// HoursSince returns whole hours from t to now, or -1 when t is unset.
func HoursSince(now, t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return int64(now.Sub(t) / time.Hour)
}

// Location resolves an IANA zone name, falling back to UTC for an empty or
// unknown name: a bad zone on one customer record must not stop a journey.
// "Local" is treated as unknown, since the machine's zone would make rules
// (and so workflows) depend on where the worker runs.
//
// Results are cached because time.LoadLocation reads the zone database on
// every call (about 9µs and a dozen allocations), which would dominate any
// rule using localHour or isBirthday.
func Location(tz string) *time.Location {
	if tz == "" || tz == "Local" {
		return time.UTC
	}
	if loc, ok := locations.Load(tz); ok {
		return loc.(*time.Location)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.UTC
	}
	// Unknown names are cached too, so bad data does not hit the disk on
	// every evaluation, but only up to a bound: the names come from customer
	// records and must not grow the cache without limit.
	if err == nil || cachedUnknown.Add(1) <= maxUnknownZones {
		locations.Store(tz, loc)
	}
	return loc
}

// maxUnknownZones bounds how many unrecognised zone names Location caches.
const maxUnknownZones = 1024

var (
	locations     sync.Map // zone name → *time.Location
	cachedUnknown atomic.Int64
)

// LocalHour is the hour of day (0–23) at now in time zone tz.
func LocalHour(now time.Time, tz string) int {
	return now.In(Location(tz)).Hour()
}

// IsAnniversary reports whether now, in time zone tz, falls on the month and
// day of date. A 29 February date is celebrated on 28 February in years that
// have no 29th. An unset date is never an anniversary.
func IsAnniversary(now time.Time, date time.Time, tz string) bool {
	if date.IsZero() {
		return false
	}
	local := now.In(Location(tz))
	month, day := date.Month(), date.Day()
	if month == time.February && day == 29 && !isLeap(local.Year()) {
		day = 28
	}
	return local.Month() == month && local.Day() == day
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// ParseDuration extends time.ParseDuration with days (d) and weeks (w), the
// units marketers think in: "90d", "2w", "1d12h", "36h", "30m".
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if strings.ContainsAny(s, " \t") {
		return 0, fmt.Errorf("invalid duration %q: no spaces allowed inside a duration (write 1d12h)", orig)
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid duration %q: expected a number such as 90d, 2w, 36h or 30m", orig)
		}
		j := i
		for j < len(s) && (s[j] < '0' || s[j] > '9') && s[j] != '.' {
			j++
		}
		num, unit := s[:i], s[i:j]
		var mult time.Duration
		switch unit {
		case "w":
			mult = 7 * 24 * time.Hour
		case "d":
			mult = 24 * time.Hour
		case "h":
			mult = time.Hour
		case "m":
			mult = time.Minute
		case "s":
			mult = time.Second
		case "":
			return 0, fmt.Errorf("invalid duration %q: missing unit (w, d, h, m or s)", orig)
		default:
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q (use w, d, h, m or s)", orig, unit)
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: bad number %q", orig, num)
		}
		// Checked on the running total: per-part checks alone let
		// "50000d50000d50000d" wrap around to a negative duration.
		if float64(total)+f*float64(mult) > float64(1<<62) {
			return 0, fmt.Errorf("invalid duration %q: too long", orig)
		}
		total += time.Duration(f * float64(mult))
		s = s[j:]
	}
	return total, nil
}

// nowFunctions are the built-ins that receive the environment (and so `now`,
// or for message the journey's message statuses) as a hidden first
// argument.
var nowFunctions = map[string]bool{"daysSince": true, "hoursSince": true, "isBirthday": true, "isAnniversary": true, "localHour": true, "message": true}

// nowArgument is the expr patcher that passes the environment to
// nowFunctions. It passes `$env` rather than the `now` field because reading
// a time.Time field through reflection copies it to the heap on every call,
// while `$env` is the value the caller handed in. expr runs a plain
// (non-repeatable) visitor once, before type checking.
type nowArgument struct{}

func (nowArgument) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || !nowFunctions[id.Value] {
		return
	}
	if id.Value == "isBirthday" {
		birthdayAsAnniversary(call, id)
	}
	envNode := &ast.IdentifierNode{Value: "$env"}
	envNode.SetLocation(call.Location())
	call.Arguments = append([]ast.Node{envNode}, call.Arguments...)
}

// birthdayAsAnniversary rewrites isBirthday(customer) to
// isAnniversary(customer.birthday, customer.timezone), which means the same
// but does not copy the whole customer record to the heap on every call.
func birthdayAsAnniversary(call *ast.CallNode, callee *ast.IdentifierNode) {
	if len(call.Arguments) != 1 {
		return
	}
	arg, ok := call.Arguments[0].(*ast.IdentifierNode)
	if !ok || arg.Value != "customer" {
		return
	}
	field := func(name string) ast.Node {
		n := &ast.MemberNode{Node: &ast.IdentifierNode{Value: "customer"}, Property: &ast.StringNode{Value: name}}
		n.Node.SetLocation(arg.Location())
		n.Property.SetLocation(arg.Location())
		n.SetLocation(arg.Location())
		return n
	}
	callee.Value = "isAnniversary"
	call.Arguments = []ast.Node{field("birthday"), field("timezone")}
}

// engineNow is `now` of the environment a nowFunction was called with.
func engineNow(env any) time.Time {
	switch e := env.(type) {
	case *Env:
		return e.Now
	case Env:
		return e.Now
	}
	panic(fmt.Sprintf("rule evaluated with %T instead of rules.Env", env))
}

// builtinOptions are the expr options every rule is compiled with.
func builtinOptions() []expr.Option {
	return []expr.Option{
		expr.Env(Env{}),
		expr.DisableBuiltin("now"),
		expr.DisableBuiltin("duration"),
		expr.Timezone("UTC"),
		expr.Patch(nowArgument{}),
		expr.Function("daysSince", func(p ...any) (any, error) {
			return DaysSince(engineNow(p[0]), p[1].(time.Time)), nil
		}, new(func(any, time.Time) int64)),
		expr.Function("hoursSince", func(p ...any) (any, error) {
			return HoursSince(engineNow(p[0]), p[1].(time.Time)), nil
		}, new(func(any, time.Time) int64)),
		expr.Function("localHour", func(p ...any) (any, error) {
			return LocalHour(engineNow(p[0]), p[1].(string)), nil
		}, new(func(any, string) int)),
		expr.Function("isBirthday", func(p ...any) (any, error) {
			c := p[1].(Customer)
			return IsAnniversary(engineNow(p[0]), c.Birthday, c.Timezone), nil
		}, new(func(any, Customer) bool)),
		expr.Function("isAnniversary", func(p ...any) (any, error) {
			return IsAnniversary(engineNow(p[0]), p[1].(time.Time), p[2].(string)), nil
		}, new(func(any, time.Time, string) bool)),
		expr.Function("message", func(p ...any) (any, error) {
			return message(p[0], p[1].(string)), nil
		}, new(func(any, string) Message)),
		expr.Function("duration", func(p ...any) (any, error) {
			return ParseDuration(p[0].(string))
		}, new(func(string) time.Duration)),
	}
}
