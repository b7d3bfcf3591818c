package engine

import (
	"crypto/sha256"
	"sort"
	"sync"
)

// Registry holds compiled plans by name and version. It is safe for
// concurrent use: the worker reads it while a deploy adds new versions.
type Registry struct {
	mu     sync.RWMutex
	plans  map[string]map[string]*Plan // name → version → plan
	latest map[string]*Plan
	// byEvent indexes the latest plans by the events their triggers
	// name (Triggering); nil until asked for after an Add.
	byEvent map[string][]*Plan
}

// NewRegistry returns an empty registry (the zero value works too).
func NewRegistry() *Registry { return &Registry{} }

// Add registers p; the plan added last for a name becomes its latest.
func (r *Registry) Add(p *Plan) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.plans == nil {
		r.plans = map[string]map[string]*Plan{}
		r.latest = map[string]*Plan{}
	}
	if r.plans[p.Name] == nil {
		r.plans[p.Name] = map[string]*Plan{}
	}
	r.plans[p.Name][p.Version] = p
	r.latest[p.Name] = p
	r.byEvent = nil
}

// Triggering lists the latest plans whose trigger names the event,
// sorted by playbook name. The event API asks it for every event it
// stores, so it reads an index built once after the last Add instead of
// walking every playbook. The slice is shared: do not change it.
func (r *Registry) Triggering(event string) []*Plan {
	r.mu.RLock()
	idx := r.byEvent
	r.mu.RUnlock()
	if idx == nil {
		r.mu.Lock()
		if r.byEvent == nil {
			r.byEvent = r.indexByEvent()
		}
		idx = r.byEvent
		r.mu.Unlock()
	}
	return idx[event]
}

// indexByEvent builds byEvent; the caller holds mu.
func (r *Registry) indexByEvent() map[string][]*Plan {
	idx := map[string][]*Plan{}
	for _, name := range r.sortedNames() {
		p := r.latest[name]
		for _, t := range p.Trigger.EventTriggers() {
			if l := idx[t.Event]; len(l) == 0 || l[len(l)-1] != p {
				idx[t.Event] = append(l, p)
			}
		}
	}
	return idx
}

// Get returns the plan of name at version.
func (r *Registry) Get(name, version string) (*Plan, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.plans[name][version]
	return p, ok
}

// Latest returns the plan of name added last.
func (r *Registry) Latest(name string) (*Plan, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.latest[name]
	return p, ok
}

// Names lists the playbook names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.sortedNames()
}

// sortedNames lists the playbook names, sorted; the caller holds mu.
func (r *Registry) sortedNames() []string {
	names := make([]string, 0, len(r.latest))
	for name := range r.latest {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// planCache backs CompileCached; keyed by the sha256 of the source.
var planCache sync.Map // [32]byte → cachedPlan

type cachedPlan struct {
	plan *Plan
	err  error
}

// CompileCached compiles src once per process and returns the same *Plan
// for the same bytes afterwards. Workflow code uses it to turn the
// playbook source it carries into a plan on every replay: the result
// depends only on src, so it is deterministic.
func CompileCached(src []byte) (*Plan, error) {
	key := sha256.Sum256(src)
	if v, ok := planCache.Load(key); ok {
		c := v.(cachedPlan)
		return c.plan, c.err
	}
	p, err := Compile("playbook.yaml", src)
	v, _ := planCache.LoadOrStore(key, cachedPlan{p, err})
	c := v.(cachedPlan)
	return c.plan, c.err
}

// startedCache backs CompileStarted; keyed by the sha256 of the source.
var startedCache sync.Map // [32]byte → cachedPlan

// CompileStarted is CompileCached for the source of a journey already
// running that carries no pinned plan (started before plans were pinned):
// a rule or text that today's rules refuse but the release that started
// the journey accepted compiles as it did then (rules.CompileStarted).
// Everything else the compiler checks is checked as in Compile.
func CompileStarted(src []byte) (*Plan, error) {
	key := sha256.Sum256(src)
	if v, ok := startedCache.Load(key); ok {
		c := v.(cachedPlan)
		return c.plan, c.err
	}
	p, err := compileWith("playbook.yaml", src, true, nil)
	v, _ := startedCache.LoadOrStore(key, cachedPlan{p, err})
	c := v.(cachedPlan)
	return c.plan, c.err
}
