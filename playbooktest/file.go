// Package playbooktest runs playbook tests, what `rapport test` runs: YAML
// files beside the playbooks (playbooks/tests/<name>_test.yaml) whose
// cases each give a customer and events, run them through the playbook
// with the simulator (package simulate: the real journey workflow and
// production's entry and send decisions), and compare what happened with
// what the case expects — messages sent and when, tasks, coupons, points,
// the outcome and its reason, holdout. A failing case says exactly what
// differed, so a playbook change is reviewed in a pull request by what it
// does to customers, not only by its diff.
package playbooktest

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/simulate"
	"github.com/rapport-crm/rapport/simulate/simfile"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/workflows"
)

// File is one test file: the cases of one playbook.
type File struct {
	Path     string
	Playbook string // the playbook's name (its playbook: key)
	Cases    []Case
}

// Case is one test case: a customer, events, and what should happen.
type Case struct {
	Name     string
	Line     int // of the case, for messages
	Customer simfile.Customer
	Events   []simfile.Event
	Start    time.Time
	// CapMax and CapPer are the global frequency cap (production's
	// default unless the case sets frequency_cap).
	CapMax int
	CapPer time.Duration
	// InGlobalControl, when set, puts the case's customer in the global
	// control group (true) or out of it (false), as if the operator's
	// share had drawn them so (in_global_control).
	InGlobalControl *bool
	Expect          Expect
}

// Expect is what a case expects. Every field is optional: an expectation
// left out is not checked. An empty list of tasks or coupons (tasks: [])
// expects none; a list names some that must be there, others may be too. Pos fields locate each one in the file, so a
// failure points at the line that states it.
type Expect struct {
	Sent      []SentWant
	NotSent   []Named
	Sends     *int
	Tasks     []TaskWant
	Coupons   []CouponWant
	Points    *int64  // net change of the points balance
	PointsLog []int64 // each ledger delta, in order
	Outcome   *string
	Reason    *string
	Converted *bool
	Holdout   *bool
	Journeys  *int
	Stage     *string
	Tags      []string
	NotTags   []string
	Pos       map[string]Pos // by key of expect
}

// Pos is a place in a test file.
type Pos struct{ Line, Col int }

// Named is a template name at its place in the file.
type Named struct {
	Name string
	Pos  Pos
}

// SentWant is a message the case expects to be sent: its template, on
// Channel when given, at At after the start give or take Within (exactly
// at At when Within is 0) when At is given.
type SentWant struct {
	Template string
	Channel  string
	At       *time.Duration
	Within   time.Duration
	Pos      Pos
}

// TaskWant is a task the case expects for Assignee, created at At (give
// or take Within) when given, whose title contains Title when given.
type TaskWant struct {
	Assignee string
	Title    string
	At       *time.Duration
	Within   time.Duration
	Pos      Pos
}

// CouponWant is a coupon the case expects, of Kind and Value when given.
type CouponWant struct {
	Kind   string
	Value  *float64
	Prefix string
	Pos    Pos
}

// The keys of each mapping of a test file, for unknown-key errors.
var (
	fileKeys     = []string{"playbook", "start", "customer", "cases"}
	caseKeys     = []string{"name", "customer", "events", "start", "frequency_cap", "in_global_control", "expect"}
	expectKeys   = []string{"sent", "not_sent", "sends", "tasks", "coupons", "points", "outcome", "reason", "converted", "holdout", "journeys", "stage", "tags", "not_tags"}
	sentKeys     = []string{"template", "channel", "at", "within"}
	taskKeys     = []string{"assignee", "title", "at", "within"}
	couponKeys   = []string{"kind", "value", "prefix"}
	outcomeWords = []string{"active", "completed", "converted", "exited", "rejected", "failed", "not_admitted"}
)

// parser collects every problem of a test file as engine diagnostics, so
// they read like the compiler's: file:line:col: message.
type parser struct {
	file  string
	diags engine.Diagnostics
	// customer is the file's default customer, as decoded YAML; a case's
	// customer keys override it.
	customer map[string]any
	start    time.Time
	// badID: an id was reported where it is written, so a case left
	// without one is not reported again.
	badID bool
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, max(n.Column, 1)
	}
	p.diags = append(p.diags, engine.Diagnostic{File: p.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

// Parse reads a test file. The error is engine.Diagnostics listing every
// problem found, each at its line and column.
func Parse(path string, data []byte) (*File, error) {
	p := &parser{file: path, start: simulate.DefaultStart}
	f := &File{Path: path}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, engine.Diagnostics{{File: path, Line: 1, Col: 1, Msg: fmt.Sprintf("not valid YAML: %v", err)}}
	}
	if len(doc.Content) == 0 {
		return nil, engine.Diagnostics{{File: path, Line: 1, Col: 1, Msg: "empty test file: want playbook: and cases:"}}
	}
	top := p.mapping(doc.Content[0], "the test file", fileKeys, "playbook", "cases")
	if n := top["playbook"]; n != nil {
		f.Playbook = p.str(n, "playbook")
	}
	if n := top["start"]; n != nil {
		p.start = p.time(n, "start")
	}
	if n := top["customer"]; n != nil {
		p.customer = p.customerMap(n)
	}
	if n := top["cases"]; n != nil {
		f.Cases = p.cases(n)
	}
	if len(p.diags) > 0 {
		sort.SliceStable(p.diags, func(i, j int) bool { return p.diags[i].Line < p.diags[j].Line })
		return nil, p.diags
	}
	return f, nil
}

// mapping checks that n is a mapping with only known keys (a typo gets a
// did-you-mean hint) and every required one, and returns its values by key.
func (p *parser) mapping(n *yaml.Node, what string, known []string, required ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: expected a mapping", what)
		return out
	}
	keys := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case keys[k.Value] != nil:
			p.errorf(k, "duplicate key %q in %s (first at line %d)", k.Value, what, keys[k.Value].Line)
		case !contains(known, k.Value):
			p.errorf(k, "unknown key %q in %s%s", k.Value, what, rules.DidYouMean(k.Value, known))
		default:
			out[k.Value] = v
		}
		keys[k.Value] = k
	}
	for _, r := range required {
		if keys[r] == nil {
			p.errorf(n, "missing key %q in %s", r, what)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func pos(n *yaml.Node) Pos { return Pos{n.Line, n.Column} }

func (p *parser) str(n *yaml.Node, key string) string {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" || n.Value == "" {
		p.errorf(n, "%s: expected a text value", key)
		return ""
	}
	return n.Value
}

func (p *parser) duration(n *yaml.Node, key string) time.Duration {
	s := p.str(n, key)
	if s == "" {
		return 0
	}
	if s == "0" {
		return 0
	}
	d, err := rules.ParseDuration(s)
	if err != nil {
		p.errorf(n, "%s: %v", key, err)
	}
	return d
}

func (p *parser) time(n *yaml.Node, key string) time.Time {
	s := p.str(n, key)
	t, err := time.Parse(time.RFC3339, s)
	if err != nil && s != "" {
		p.errorf(n, "%s: %q: want an RFC 3339 time like 2026-01-05T09:00:00Z", key, s)
	}
	return t
}

func (p *parser) decode(n *yaml.Node, key string, out any, want string) bool {
	if n.Kind != yaml.ScalarNode || n.Decode(out) != nil {
		p.errorf(n, "%s: expected %s", key, want)
		return false
	}
	return true
}

func (p *parser) cases(n *yaml.Node) []Case {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.errorf(n, "cases: expected a list of cases, each with name, customer, events and expect")
		return nil
	}
	var out []Case
	seen := map[string]int{}
	for _, cn := range n.Content {
		c := p.oneCase(cn)
		if line, dup := seen[c.Name]; dup && c.Name != "" {
			p.errorf(cn, "two cases named %q (the first at line %d)", c.Name, line)
		}
		seen[c.Name] = cn.Line
		out = append(out, c)
	}
	return out
}

func (p *parser) oneCase(n *yaml.Node) Case {
	c := Case{Line: n.Line, Start: p.start}
	m := p.mapping(n, "a case", caseKeys, "name", "expect")
	if v := m["name"]; v != nil {
		c.Name = p.str(v, "name")
	}
	if v := m["start"]; v != nil {
		c.Start = p.time(v, "start")
	}
	c.Customer = p.caseCustomer(m["customer"], n, c.Start)
	if v := m["events"]; v != nil {
		c.Events = p.events(v)
	}
	cfg := store.DefaultConfig()
	c.CapMax, c.CapPer = cfg.CapMax, cfg.CapPer
	if v := m["frequency_cap"]; v != nil {
		var err error
		if c.CapMax, c.CapPer, err = store.ParseCap(p.str(v, "frequency_cap")); err != nil {
			p.errorf(v, "frequency_cap: %v", err)
		}
	}
	if v := m["in_global_control"]; v != nil {
		c.InGlobalControl = p.optBool(v, "in_global_control")
	}
	if v := m["expect"]; v != nil {
		c.Expect = p.expect(v)
	}
	return c
}

// customerMap decodes a customer mapping, checking its keys against the
// customer file's (simfile.CustomerKeys).
func (p *parser) customerMap(n *yaml.Node) map[string]any {
	p.mapping(n, "customer", simfile.CustomerKeys)
	var m map[string]any
	if n.Kind == yaml.MappingNode {
		if err := n.Decode(&m); err != nil {
			p.errorf(n, "customer: %v", err)
		}
	}
	for k := range m {
		if !contains(simfile.CustomerKeys, k) {
			delete(m, k) // reported above, once, at the key
		}
	}
	// Each value is checked on its own, so that a bad one is reported once
	// at its place, not at every case whose customer it ends up in.
	for i := 0; i+1 < len(n.Content) && n.Kind == yaml.MappingNode; i += 2 {
		k := n.Content[i].Value
		if _, ok := m[k]; !ok {
			continue
		}
		one := map[string]any{"id": "check", k: m[k]}
		data, err := json.Marshal(one)
		if err == nil {
			_, err = simfile.ParseCustomer("customer", data)
		}
		if err != nil {
			p.errorf(n.Content[i+1], "%v", err)
			delete(m, k)
			p.badID = p.badID || k == "id"
		}
	}
	return m
}

// caseCustomer is the case's customer: the file's default customer with the
// case's keys laid over it, read as a customer file is (simfile), or the
// simulator's sample customer when neither gives one.
func (p *parser) caseCustomer(n, caseNode *yaml.Node, start time.Time) simfile.Customer {
	merged := maps.Clone(p.customer)
	if n != nil {
		if merged == nil {
			merged = map[string]any{}
		}
		maps.Copy(merged, p.customerMap(n))
	}
	if merged == nil {
		return simfile.Customer{Customer: workflows.SampleCustomer(start)}
	}
	at := caseNode
	if n != nil {
		at = n
	}
	data, err := json.Marshal(merged)
	if err != nil {
		p.errorf(at, "customer: %v", err)
		return simfile.Customer{}
	}
	c, err := simfile.ParseCustomer("customer", data)
	if err != nil && !(p.badID && merged["id"] == nil) {
		p.errorf(at, "%v", err)
	}
	return c
}

func (p *parser) events(n *yaml.Node) []simfile.Event {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "events: expected a list of events like {at: 5d, event: purchase}")
		return nil
	}
	var out []simfile.Event
	for i, en := range n.Content {
		e, err := simfile.ParseEvent(en, i+1)
		if err != nil {
			p.errorf(en, "%v", err)
			continue
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].At < out[b].At })
	return out
}
