package rules_test

import (
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// sink keeps benchmark results observable so the compiler cannot discard
// the work being measured.
var sink bool

const typicalRule = `customer.days_since_last_purchase > 90 && customer.tier in ["gold","platinum"]`

// benchNow is a fixed engine time so the benchmarks are reproducible.
var benchNow = time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)

// benchEnvs are a few varied customers: the benchmark cycles through them so
// neither the rule nor the hand-written floor sees one constant input.
func benchEnvs() []rules.Env {
	tiers := []string{"gold", "silver", "platinum", "bronze"}
	envs := make([]rules.Env, 0, 16)
	for i := range 16 {
		c := rules.Customer{
			ID:             "c" + string(rune('a'+i)),
			Tier:           tiers[i%len(tiers)],
			Timezone:       []string{"UTC", "Asia/Shanghai", "America/New_York", "Europe/Berlin"}[i%4],
			LastPurchaseAt: benchNow.AddDate(0, 0, -(30 + 20*i)),
			SignupAt:       benchNow.AddDate(0, 0, -(10 + 7*i)),
		}
		envs = append(envs, rules.NewEnv(c, rules.Event{}, benchNow))
	}
	return envs
}

func benchRule(b *testing.B, src string) {
	r, err := rules.Compile(src, rules.Bool)
	if err != nil {
		b.Fatal(err)
	}
	envs := benchEnvs()
	var ev rules.Evaluator
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ok, err := ev.Bool(r, &envs[i%len(envs)])
		if err != nil {
			b.Fatal(err)
		}
		sink = ok
	}
}

// BenchmarkRuleTypical is the common segment rule through the rule engine.
func BenchmarkRuleTypical(b *testing.B) { benchRule(b, typicalRule) }

// handWritten is typicalRule in plain Go: the floor the engine is compared to.
func handWritten(env *rules.Env) bool {
	c := &env.Customer
	return c.DaysSinceLastPurchase > 90 && (c.Tier == "gold" || c.Tier == "platinum")
}

// BenchmarkHandWritten is the floor for BenchmarkRuleTypical.
func BenchmarkHandWritten(b *testing.B) {
	envs := benchEnvs()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sink = handWritten(&envs[i%len(envs)])
	}
}

// BenchmarkRuleWithBuiltin measures built-ins that receive the hidden now.
func BenchmarkRuleWithBuiltin(b *testing.B) {
	benchRule(b, `daysSince(customer.signup_at) > 30 && localHour(customer.timezone) >= 9`)
}

// BenchmarkNewEnv measures building the environment for one evaluation.
func BenchmarkNewEnv(b *testing.B) {
	envs := benchEnvs()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		env := rules.NewEnv(envs[i%len(envs)].Customer, rules.Event{}, benchNow)
		sink = env.Customer.DaysSinceSignup > 0
	}
}
