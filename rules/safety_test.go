package rules_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// long is a 1,800-byte string literal: close to MaxSourceLen, the largest
// seed a rule can start from.
var long = `"` + strings.Repeat("a", 1800) + `"`

// TestRunawayRulesFailCleanly evaluates rules written to exhaust memory or
// time. Each must fail with a clear error, quickly, without allocating more
// than a bounded amount: expr's own budget covers ranges and loops, ours
// covers strings (which expr does not count).
func TestRunawayRulesFailCleanly(t *testing.T) {
	tests := []struct{ src, want string }{
		{`len(1..100000000) > 0`, "memory budget exceeded"},
		{`len(map(1..100000000, #)) > 0`, "memory budget exceeded"},
		{`all(1..100000000, true)`, "memory budget exceeded"},
		{`sum(map(1..1000, count(1..#, # > 0))) > 0`, "memory budget exceeded"},
		{`len(repeat("a", 1000000000)) > 0`, "text longer than"},
		{`len(repeat(repeat("ab", 1000), 1000)) > 0`, "text longer than"},
		{`len(join(map(1..5000, ` + long + `))) > 0`, "text longer than"},
		{`len(replace(` + long + `, "a", ` + long + `)) > 0`, "text longer than"},
		{`len(replace("abc", "", ` + long + `)) > 0`, "text longer than"},
		{`len(repeat("a", 3000) + repeat("b", 3000)) > 0`, "text longer than"},
		{`let a = ` + long + `; let b = a + a; let c = b + b; len(c) > 0`, "text longer than"},
		{`len(map(1..5000, ` + long + ` + #string)) > 0`, ""}, // compile error below
		{`len(string(map(1..5000, ` + long + `))) > 0`, "not allowed"},
		{`len(sort(1..10000000)) > 0`, "memory budget exceeded"},
	}
	for _, tt := range tests {
		name := tt.src
		if len(name) > 60 {
			name = name[:30] + "…" + name[len(name)-25:]
		}
		t.Run(name, func(t *testing.T) {
			r, err := rules.Compile(tt.src, rules.Bool)
			if err != nil {
				if tt.want != "" {
					t.Fatalf("compile: %v", err)
				}
				return // refused at compile time is as good
			}
			var ev rules.Evaluator
			env := rules.Env{}
			var evalErr error
			start := time.Now()
			bytes := allocated(func() { _, evalErr = ev.Bool(r, &env) })
			if evalErr == nil || !strings.Contains(evalErr.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", evalErr, tt.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %s", d)
			}
			if bytes > 100<<20 {
				t.Errorf("allocated %d MB before failing, want at most 100", bytes>>20)
			}
		})
	}
}

// allocated is the heap bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestBoundedBuiltinsStillWork: the bounded versions keep expr's meaning
// for ordinary inputs.
func TestBoundedBuiltinsStillWork(t *testing.T) {
	c := rules.Customer{Name: "Ana", Tags: []string{"vip", "eu"}}
	tests := []struct{ src, want string }{
		{`customer.name + "!"`, "Ana!"},
		{`repeat("ab", 3)`, "ababab"},
		{`join(customer.tags, ", ")`, "vip, eu"},
		{`join(customer.tags)`, "vipeu"},
		{`replace("a-b-c", "-", "+")`, "a+b+c"},
		{`upper(customer.name) + string(42)`, "ANA42"},
		{`string(true)`, "true"},
	}
	for _, tt := range tests {
		v := evalValue(t, tt.src, rules.Text, c, rules.Event{}, time.Time{})
		if rules.Format(v) != tt.want {
			t.Errorf("%s = %q, want %q", tt.src, v, tt.want)
		}
	}
	if _, err := rules.Compile(`1 + 2 > 2`, rules.Bool); err != nil {
		t.Errorf("numeric + broken by the string overload: %v", err)
	}
	if got := evalValue(t, `customer.points + 5`, rules.Number, rules.Customer{Points: 10}, rules.Event{}, time.Time{}); got != 15.0 {
		t.Errorf("customer.points + 5 = %v, want 15", got)
	}
}

// TestNumberRulesRejectNonFinite: a division by zero orders must not
// award NaN or infinite points.
func TestNumberRulesRejectNonFinite(t *testing.T) {
	for _, src := range []string{
		`event.amount / customer.order_count`, // 0/0 = NaN
		`10 / customer.order_count`,           // +Inf
		`-10 / customer.order_count`,          // -Inf
	} {
		r, err := rules.Compile(src, rules.Number)
		if err != nil {
			t.Fatalf("compile %s: %v", src, err)
		}
		f, err := r.Number(rules.NewEnv(rules.Customer{}, rules.Event{}, time.Time{}))
		if err == nil || !strings.Contains(err.Error(), "not a finite number") {
			t.Errorf("%s = %v, %v; want a 'not a finite number' error", src, f, err)
		}
	}
	r, _ := rules.Compile(`event.amount / customer.order_count`, rules.Number)
	if f, err := r.Number(rules.NewEnv(rules.Customer{OrderCount: 4}, rules.Event{Amount: 100}, time.Time{})); err != nil || f != 25 {
		t.Errorf("100/4 = %v, %v; want 25", f, err)
	}
}

// TestPlaceholdersCannotPrintRecords: `{{ customer }}` would put the email
// and phone in a message; whole records, lists and maps are refused at
// compile time, fields and times are fine.
func TestPlaceholdersCannotPrintRecords(t *testing.T) {
	for _, src := range []string{`customer`, `event`, `coupon`, `customer.tags`, `customer.attrs`, `event.props`, `[customer.email]`, `{"e": customer.email}`} {
		if _, err := rules.Compile(src, rules.Text); err == nil {
			t.Errorf("Text rule %s compiled; want an error", src)
		} else if !strings.Contains(err.Error(), "cannot print") {
			t.Errorf("Text rule %s: %v; want a 'cannot print' error", src, err)
		}
	}
	for _, src := range []string{`customer.name`, `customer.signup_at`, `coupon.code`, `now`, `customer.points`, `customer.attrs.plan`} {
		if _, err := rules.Compile(src, rules.Text); err != nil {
			t.Errorf("Text rule %s: %v", src, err)
		}
	}
}

// TestRulesReachOnlyTheirEnvironment: no expr escape hatch reaches the
// process (environment variables, files, the wall clock).
func TestRulesReachOnlyTheirEnvironment(t *testing.T) {
	for _, src := range []string{`now()`, `env("HOME")`, `os.Getenv("HOME")`, `customer.Email`, `customer.DaysSinceSignup`, `$env.Customer`, `len(string($env)) > 0`} {
		if _, err := rules.Compile(src, rules.Text); err == nil {
			t.Errorf("%s compiled; want an error", src)
		}
	}
}
