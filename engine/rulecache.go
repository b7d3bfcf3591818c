package engine

import (
	"sync"
	"sync/atomic"

	"github.com/rapport-crm/rapport/rules"
)

// Compiling an expr rule costs tens of microseconds (expr builds its whole
// configuration per call), and playbooks repeat the same rules and
// placeholders ({{ customer.name }}, {{ unsubscribe_url }}, …) many times.
// A compiled rules.Rule is immutable and safe for concurrent use, so
// compiled rules are shared through this bounded, process-wide cache.
const maxCachedRules = 20_000

type ruleKey struct {
	src  string
	kind rules.Kind
}

var (
	ruleCache  sync.Map // ruleKey → *rules.Rule
	ruleCount  atomic.Int64
	cacheRules = true // benchmarks switch it off to measure cold compiles
)

// compileRule is rules.Compile through the cache; errors are not cached.
func compileRule(src string, kind rules.Kind) (*rules.Rule, error) {
	key := ruleKey{src, kind}
	if r, ok := ruleCache.Load(key); ok {
		return r.(*rules.Rule), nil
	}
	r, err := rules.Compile(src, kind)
	if err != nil {
		return nil, err
	}
	if cacheRules && ruleCount.Load() < maxCachedRules {
		if _, loaded := ruleCache.LoadOrStore(key, r); !loaded {
			ruleCount.Add(1)
		}
	}
	return r, nil
}

// ruleCompiler compiles one rule: compileRule (today's rules) or
// compileStartedRule.
type ruleCompiler func(src string, kind rules.Kind) (*rules.Rule, error)

// compileStartedRule compiles a rule of a journey already running:
// compileRule, or where today's rules refuse it, rules.CompileStarted
// (not cached: such rules are rare and only in old journeys).
func compileStartedRule(src string, kind rules.Kind) (*rules.Rule, error) {
	r, err := compileRule(src, kind)
	if err == nil {
		return r, nil
	}
	if old, oldErr := rules.CompileStarted(src, kind); oldErr == nil {
		return old, nil
	}
	return nil, err
}
