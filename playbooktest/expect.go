package playbooktest

import (
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rapport-crm/rapport/rules"
)

// expect reads a case's expect: mapping.
func (p *parser) expect(n *yaml.Node) Expect {
	m := p.mapping(n, "expect", expectKeys)
	e := Expect{Pos: map[string]Pos{}}
	for k, v := range m {
		e.Pos[k] = pos(v)
	}
	if v := m["sent"]; v != nil {
		e.Sent = p.sentList(v)
	}
	if v := m["not_sent"]; v != nil {
		for _, t := range p.list(v, "not_sent") {
			e.NotSent = append(e.NotSent, Named{p.str(t, "not_sent"), pos(t)})
		}
	}
	if v := m["tasks"]; v != nil {
		e.Tasks = p.taskList(v)
	}
	if v := m["coupons"]; v != nil {
		e.Coupons = p.couponList(v)
	}
	if v := m["points"]; v != nil {
		p.points(v, &e)
	}
	e.Sends = p.optInt(m["sends"], "sends")
	e.Journeys = p.optInt(m["journeys"], "journeys")
	e.Converted = p.optBool(m["converted"], "converted")
	e.Holdout = p.optBool(m["holdout"], "holdout")
	e.Reason = p.optStr(m["reason"], "reason")
	e.Stage = p.optStr(m["stage"], "stage")
	if v := m["outcome"]; v != nil {
		e.Outcome = p.optStr(v, "outcome")
		if e.Outcome != nil && !contains(outcomeWords, *e.Outcome) {
			p.errorf(v, "outcome: %q is not one of %v%s", *e.Outcome, outcomeWords, rules.DidYouMean(*e.Outcome, outcomeWords))
		}
	}
	e.Tags = p.words(m["tags"], "tags")
	e.NotTags = p.words(m["not_tags"], "not_tags")
	return e
}

// list checks that n is a YAML list and returns its items.
func (p *parser) list(n *yaml.Node, key string) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: expected a list", key)
		return nil
	}
	return n.Content
}

func (p *parser) words(n *yaml.Node, key string) []string {
	if n == nil {
		return nil
	}
	var out []string
	for _, w := range p.list(n, key) {
		out = append(out, p.str(w, key))
	}
	return out
}

func (p *parser) sentList(n *yaml.Node) []SentWant {
	var out []SentWant
	for _, item := range p.list(n, "sent") {
		m := p.mapping(item, "sent", sentKeys, "template")
		w := SentWant{Pos: pos(item)}
		if v := m["template"]; v != nil {
			w.Template = p.str(v, "template")
		}
		if v := m["channel"]; v != nil {
			w.Channel = p.str(v, "channel")
		}
		w.At, w.Within = p.when(m)
		out = append(out, w)
	}
	return out
}

// when reads at and within; within without at means nothing.
func (p *parser) when(m map[string]*yaml.Node) (*time.Duration, time.Duration) {
	var at *time.Duration
	if v := m["at"]; v != nil {
		d := p.duration(v, "at")
		at = &d
	}
	var within time.Duration
	if v := m["within"]; v != nil {
		within = p.duration(v, "within")
		if at == nil {
			p.errorf(v, "within: give at too (within is the tolerance around at)")
		}
	}
	return at, within
}

func (p *parser) taskList(n *yaml.Node) []TaskWant {
	var out []TaskWant
	for _, item := range p.list(n, "tasks") {
		m := p.mapping(item, "a task", taskKeys, "assignee")
		w := TaskWant{Pos: pos(item)}
		if v := m["assignee"]; v != nil {
			w.Assignee = p.str(v, "assignee")
		}
		if v := m["title"]; v != nil {
			w.Title = p.str(v, "title")
		}
		w.At, w.Within = p.when(m)
		out = append(out, w)
	}
	return out
}

func (p *parser) couponList(n *yaml.Node) []CouponWant {
	var out []CouponWant
	for _, item := range p.list(n, "coupons") {
		m := p.mapping(item, "a coupon", couponKeys)
		w := CouponWant{Pos: pos(item)}
		if v := m["kind"]; v != nil {
			w.Kind = p.str(v, "kind")
		}
		if v := m["prefix"]; v != nil {
			w.Prefix = p.str(v, "prefix")
		}
		if v := m["value"]; v != nil {
			var f float64
			if p.decode(v, "value", &f, "a number") {
				w.Value = &f
			}
		}
		out = append(out, w)
	}
	return out
}

// points reads points: a number (the net change of the balance) or a
// list of numbers (each ledger entry's change, in order).
func (p *parser) points(n *yaml.Node, e *Expect) {
	if n.Kind == yaml.SequenceNode {
		e.PointsLog = []int64{}
		for _, item := range n.Content {
			var d int64
			if p.decode(item, "points", &d, "a whole number") {
				e.PointsLog = append(e.PointsLog, d)
			}
		}
		return
	}
	var d int64
	if p.decode(n, "points", &d, "a whole number (the net change) or a list of them (each entry)") {
		e.Points = &d
	}
}

func (p *parser) optInt(n *yaml.Node, key string) *int {
	var v int
	if n == nil || !p.decode(n, key, &v, "a whole number") {
		return nil
	}
	return &v
}

func (p *parser) optBool(n *yaml.Node, key string) *bool {
	var v bool
	if n == nil || n.ShortTag() != "!!bool" {
		if n != nil {
			p.errorf(n, "%s: expected true or false", key)
		}
		return nil
	}
	if !p.decode(n, key, &v, "true or false") {
		return nil
	}
	return &v
}

func (p *parser) optStr(n *yaml.Node, key string) *string {
	if n == nil {
		return nil
	}
	s := p.str(n, key)
	return &s
}
