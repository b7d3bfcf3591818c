package rules_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// TestEvaluationAllocations bounds the allocations of a reused Evaluator.
// Zero is not reachable through *Env: expr reads fields with reflection, and
// reflect.Value.Interface copies every non-pointer field of an addressable
// struct (strings, times, int64s above 255) to the heap. What must never
// happen is work per run beyond those reads, such as rebuilding the
// ["gold","platinum"] set (expr folds it into a constant map), loading a time
// zone from disk, or copying the customer record for isBirthday.
func TestEvaluationAllocations(t *testing.T) {
	now := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	env := rules.NewEnv(rules.Customer{
		Tier:           "gold",
		Timezone:       "Asia/Kolkata",
		LastPurchaseAt: now.AddDate(-1, 0, 0), // 365 days: a boxed int64 too
		SignupAt:       now.AddDate(-2, 0, 0),
	}, rules.Event{}, now)
	tests := []struct {
		src  string
		want bool
		max  float64 // heap copies of the fields the rule reads
	}{
		{typicalRule, true, 2}, // days, tier
		// expr's argument buffer, signup_at, daysSince's result (730), timezone.
		{`daysSince(customer.signup_at) > 30 && localHour(customer.timezone) >= 9`, true, 4},
		// Rewritten to isAnniversary(customer.birthday, customer.timezone):
		// the whole customer record is not copied.
		{`isBirthday(customer)`, false, 3},
	}
	for _, tt := range tests {
		r, err := rules.Compile(tt.src, rules.Bool)
		if err != nil {
			t.Fatal(err)
		}
		var ev rules.Evaluator
		var got bool
		allocs := testing.AllocsPerRun(200, func() { got, err = ev.Bool(r, &env) })
		if err != nil || got != tt.want {
			t.Fatalf("%s = %v, %v; want %v", tt.src, got, err, tt.want)
		}
		if allocs > tt.max {
			t.Errorf("%s: %.1f allocations per evaluation, want at most %.0f", tt.src, allocs, tt.max)
		}
		// A copied customer record alone is over 300 bytes.
		if b := bytesPerRun(200, func() { _, _ = ev.Bool(r, &env) }); b > 128 {
			t.Errorf("%s: %d bytes allocated per evaluation, want at most 128", tt.src, b)
		}
	}
}

// bytesPerRun is the average heap bytes allocated by one call of f.
func bytesPerRun(runs int, f func()) uint64 {
	f() // warm up, as testing.AllocsPerRun does
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}
