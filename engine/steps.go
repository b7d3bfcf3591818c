package engine

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rapport-crm/rapport/rules"
)

// nested holds the step lists inside one step, by their role.
type nested struct {
	then, els          []int
	onEvent, onTimeout []int
	branches           [][]int
}

var prefixRe = regexp.MustCompile(`^[A-Z0-9]{1,12}$`)

// steps reads the top-level step list, assigns ids, links successors and
// runs the structural checks on the resulting graph.
func (c *compiler) steps(f field) {
	before := len(c.diags)
	top, ok := c.stepList(f)
	if ok && len(top) == 0 {
		c.errorf(f.key, "steps: the playbook needs at least one step")
	}
	c.assignIDs()
	c.resolveGotos()
	c.link(top, End)
	if len(c.diags) == before && !c.stepsBad && len(top) > 0 {
		c.checkReachable()
		c.checkLoops()
	}
}

// stepList reads a list of steps and returns their indexes in c.plan.Steps.
// Steps are numbered in document order (pre-order), which is also the
// order of the flat plan.
func (c *compiler) stepList(f field) ([]int, bool) {
	n := c.deref(f.val)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.SequenceNode {
		c.errorf(n, "%s: expected a list of steps, got %s", f.key.Value, describe(n))
		c.stepsBad = true
		return nil, false
	}
	list := make([]int, 0, len(n.Content))
	for _, sn := range n.Content {
		list = append(list, c.step(sn))
	}
	c.lists = append(c.lists, list)
	return list, true
}

// step reads one step and returns its index.
func (c *compiler) step(raw *yaml.Node) int {
	idx := len(c.plan.Steps)
	c.plan.Steps = append(c.plan.Steps, Step{Next: End})
	st := Step{Next: End}
	if raw != nil {
		st.Line, st.Col = raw.Line, raw.Column
	}
	defer func() { c.plan.Steps[idx] = st }()
	m, ok := c.mapping(raw, "step", "step")
	if !ok {
		c.stepsBad = true
		return idx
	}
	action := c.action(raw, m)
	if action == "" {
		c.stepsBad = true
		return idx
	}
	st.Kind = StepKind(action)
	for key, owner := range siblingKeys {
		if f, ok := m[key]; ok && owner != action {
			c.errorf(f.key, "%s is only allowed in %s step", key, article(owner))
		}
	}
	if f, ok := m["id"]; ok {
		if id, ok := c.word(f, wordRe, "step id (a lowercase word like ask_why)"); ok {
			if prev, dup := c.ids[id]; dup {
				c.errorf(f.val, "duplicate step id %q (first used at line %d)", id, c.idNodes[prev].Line)
			} else {
				c.ids[id] = idx
				c.idNodes[idx] = f.val
				st.ID = id
			}
		}
	}
	c.stepBody(idx, &st, m, m[action])
	return idx
}

func article(kind string) string {
	if kind == "if" {
		return "an if"
	}
	return "a " + kind
}

// action finds the one action key of a step.
func (c *compiler) action(raw *yaml.Node, m map[string]field) string {
	var found []field
	for _, a := range actionKeys {
		if f, ok := m[a]; ok {
			found = append(found, f)
		}
	}
	sort.Slice(found, func(i, j int) bool {
		if found[i].key.Line != found[j].key.Line {
			return found[i].key.Line < found[j].key.Line
		}
		return found[i].key.Column < found[j].key.Column
	})
	switch len(found) {
	case 0:
		c.errorf(raw, "step has no action; add one of %s", strings.Join(actionKeys, ", "))
		return ""
	case 1:
		return found[0].key.Value
	}
	c.errorf(found[1].key, "step has two actions, %s and %s; put each in its own step", found[0].key.Value, found[1].key.Value)
	return ""
}

// stepBody reads the action of a step into st.
func (c *compiler) stepBody(idx int, st *Step, m map[string]field, f field) {
	switch st.Kind {
	case KindSend:
		st.Send = c.send(f)
	case KindWait:
		st.Wait = c.wait(idx, f, m)
	case KindIf:
		st.If = c.ifStep(idx, f, m)
	case KindSplit:
		st.Split = c.split(idx, f)
	case KindUpdate:
		st.Update = c.update(f)
	case KindPoints:
		st.Points = c.points(f)
	case KindCoupon:
		st.Coupon = c.coupon(f)
	case KindTask:
		st.Task = c.task(f)
	case KindGoto:
		if target, ok := c.word(f, wordRe, "step id"); ok {
			c.gotos = append(c.gotos, gotoRef{step: idx, target: target, node: f.val})
		}
	case KindExit:
		reason, _ := c.word(f, wordRe, "exit reason (a lowercase word like converted)")
		st.Exit = &ExitStep{Reason: reason}
	}
}

func (c *compiler) send(f field) *SendStep {
	m, ok := c.mapping(f.val, "send", "send")
	if !ok {
		c.unreadSend = true
		return nil
	}
	s := &SendStep{}
	if ch, ok := m["channel"]; ok {
		v, _ := c.enum(ch, channels)
		s.Channel = Channel(v)
	}
	if t, ok := m["template"]; ok {
		if name, ok := c.word(t, wordRe, "template name"); ok {
			s.Template = name
			c.sends = append(c.sends, sendRef{template: name, channel: s.Channel, node: t.val})
		}
	}
	if s.Template == "" {
		c.unreadSend = true
	}
	if t, ok := m["transactional"]; ok {
		s.Transactional, _ = c.boolean(t)
	}
	return s
}

// wait reads the wait forms: a duration, { until }, { event } and
// { after_entry }. Their durations are calendar spans (see Span).
func (c *compiler) wait(idx int, f field, step map[string]field) *WaitStep {
	w := &WaitStep{OnEvent: End, OnTimeout: End}
	n := c.deref(f.val)
	if n == nil {
		return w
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
		w.Kind = WaitFor
		w.Span, w.Duration = c.span(f)
		c.noEventBranches(step)
		return w
	}
	if n.Kind != yaml.MappingNode {
		c.errorf(n, "wait: expected a duration like 3d, { until: \"09:00\" } or { event: purchase, timeout: 7d }, got %s", describe(n))
		return w
	}
	m, ok := c.mapping(n, "wait", "wait")
	if !ok {
		return w
	}
	_, hasUntil := m["until"]
	_, hasEvent := m["event"]
	_, hasAfterEntry := m["after_entry"]
	if forms := waitForms(m); len(forms) > 1 && slices.Contains(forms, "for") {
		c.errorf(m[forms[1]].key, "wait: for stands alone; use one of until, event, for and after_entry, not %s and %s", forms[0], forms[1])
		return w
	}
	switch {
	case hasUntil && hasEvent:
		c.errorf(m["event"].key, "wait: use either until or event, not both")
	case hasAfterEntry && (hasUntil || hasEvent):
		c.errorf(m["after_entry"].key, "wait: after_entry stands alone; use either after_entry, until or event")
	case hasAfterEntry:
		w.Kind = WaitAfterEntry
		w.Span, w.Duration = c.span(m["after_entry"])
		for _, k := range []string{"when", "timeout", "of"} {
			if kf, ok := m[k]; ok {
				c.errorf(kf.key, "%s is only allowed in a wait for an event", k)
			}
		}
		c.noEventBranches(step)
	case hasUntil:
		w.Kind = WaitUntil
		w.Until, _ = c.timeOfDay(m["until"])
		for _, k := range []string{"when", "timeout", "of"} {
			if kf, ok := m[k]; ok {
				c.errorf(kf.key, "%s is only allowed in a wait for an event", k)
			}
		}
		c.noEventBranches(step)
	case hasEvent:
		w.Kind = WaitEvent
		w.Event = c.eventName(m["event"])
		if of, ok := m["of"]; ok {
			w.Of = c.messageOf(of, w.Event, idx)
		}
		if wf, ok := m["when"]; ok {
			w.When, _ = c.whenRule(wf, w.Event)
		}
		if t, ok := m["timeout"]; ok {
			w.Span, w.Timeout = c.span(t)
		} else {
			c.errorf(n, "wait: waiting for an event needs a timeout (e.g. timeout: 7d)")
		}
		nest := &nested{}
		if l, ok := step["on_event"]; ok {
			nest.onEvent, _ = c.stepList(l)
		}
		if l, ok := step["on_timeout"]; ok {
			nest.onTimeout, _ = c.stepList(l)
		}
		c.nested[idx] = nest
	case m["for"].key != nil:
		c.waitEvents(idx, w, n, m, step)
	default:
		c.errorf(n, "wait: expected until, event, for or after_entry in the mapping (or a plain duration like wait: 3d)")
	}
	return w
}

// waitForms lists the forms of wait present in m, in the order of the keys
// in the file.
func waitForms(m map[string]field) []string {
	var forms []string
	for _, k := range []string{"until", "event", "for", "after_entry"} {
		if _, ok := m[k]; ok {
			forms = append(forms, k)
		}
	}
	sort.Slice(forms, func(i, j int) bool {
		a, b := m[forms[i]].key, m[forms[j]].key
		return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
	})
	return forms
}

// waitEvents reads a wait for several events:
//
//	wait:
//	  for:
//	    payment_succeeded: [steps…]
//	    subscription_cancelled: { when: rule, steps: [steps…] }
//	  timeout: 3d
//	on_timeout: [steps…]
//
// Each event's steps run when it arrives first (an empty list goes on with
// the step after the wait); on_timeout runs when none did in time.
func (c *compiler) waitEvents(idx int, w *WaitStep, n *yaml.Node, m map[string]field, step map[string]field) {
	w.Kind = WaitEvents
	if wf, ok := m["when"]; ok {
		c.errorf(wf.key, "when: in a wait for several events, give each event its own when (payment_failed: { when: …, steps: [...] })")
	}
	if of, ok := m["of"]; ok {
		c.errorf(of.key, "of: in a wait for several events, give each message event its own of (message_opened: { of: welcome, steps: [...] })")
	}
	if t, ok := m["timeout"]; ok {
		w.Span, w.Timeout = c.span(t)
	} else {
		c.errorf(n, "wait: waiting for events needs a timeout (e.g. timeout: 7d)")
	}
	if f, ok := step["on_event"]; ok {
		c.errorf(f.key, "on_event is for a wait for one event; in a wait for several, list each event's steps under for")
	}
	nest := &nested{}
	c.nested[idx] = nest
	// Branches first, then on_timeout: steps are numbered in document order.
	defer func() {
		if l, ok := step["on_timeout"]; ok {
			nest.onTimeout, _ = c.stepList(l)
		}
	}()
	fm := c.deref(m["for"].val)
	if fm == nil {
		return
	}
	if fm.Kind != yaml.MappingNode || len(fm.Content) == 0 {
		c.errorf(fm, "for: expected the events to wait for, each with its steps (payment_succeeded: [...]), got %s", describe(fm))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(fm.Content); i += 2 {
		f := field{c.deref(fm.Content[i]), fm.Content[i+1]}
		if f.key == nil {
			return
		}
		name := c.eventName(field{&yaml.Node{Value: "for"}, f.key})
		if seen[name] {
			c.errorf(f.key, "for: %s is listed twice; give each event one branch (use if inside it to tell cases apart)", name)
			continue
		}
		seen[name] = true
		br, list := c.eventBranch(idx, name, f)
		w.Branches = append(w.Branches, br)
		nest.branches = append(nest.branches, list)
	}
}

// eventBranch reads one event's branch of the wait for several events at
// step idx: a list of steps, or { of, when, steps }.
func (c *compiler) eventBranch(idx int, name string, f field) (EventBranch, []int) {
	br := EventBranch{Event: name, Start: End}
	v := c.deref(f.val)
	if v == nil {
		return br, nil
	}
	if v.Kind != yaml.MappingNode {
		list, _ := c.stepList(f)
		return br, list
	}
	bm, ok := c.mapping(v, name, "event_branch")
	if !ok {
		return br, nil
	}
	if of, ok := bm["of"]; ok {
		br.Of = c.messageOf(of, name, idx)
	}
	if wf, ok := bm["when"]; ok {
		br.When, _ = c.whenRule(wf, name)
	}
	var list []int
	if sf, ok := bm["steps"]; ok {
		list, _ = c.stepList(sf)
	}
	return br, list
}

// noEventBranches reports on_event/on_timeout on a wait that is not for an event.
func (c *compiler) noEventBranches(step map[string]field) {
	for _, k := range []string{"on_event", "on_timeout"} {
		if f, ok := step[k]; ok {
			c.errorf(f.key, "%s is only allowed with a wait for an event", k)
		}
	}
}

func (c *compiler) ifStep(idx int, f field, step map[string]field) *IfStep {
	s := &IfStep{Then: End, Else: End}
	s.Cond, _ = c.rule(f, rules.Bool)
	nest := &nested{}
	if t, ok := step["then"]; ok {
		var ok bool
		if nest.then, ok = c.stepList(t); ok && len(nest.then) == 0 {
			c.errorf(t.key, "then: needs at least one step")
		}
	} else {
		c.errorf(f.key, "if step needs a then list")
	}
	if e, ok := step["else"]; ok {
		nest.els, _ = c.stepList(e)
	}
	c.nested[idx] = nest
	return s
}

func (c *compiler) split(idx int, f field) *SplitStep {
	n := c.deref(f.val)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		c.errorf(n, "split: expected a list of branches ({ name, weight, steps }), got %s", describe(n))
		return nil
	}
	if len(n.Content) < 2 {
		c.errorf(f.key, "split: needs at least two branches, got %d", len(n.Content))
	}
	s := &SplitStep{}
	nest := &nested{}
	names := map[string]bool{}
	total, weightsOK := 0.0, true
	for _, bn := range n.Content {
		m, ok := c.mapping(bn, "split branch", "split_branch")
		if !ok {
			weightsOK = false
			continue
		}
		b := SplitBranch{Start: End}
		if nf, ok := m["name"]; ok {
			if name, ok := c.word(nf, wordRe, "branch name (a lowercase word like control)"); ok {
				if names[name] {
					c.errorf(nf.val, "split: duplicate branch name %q", name)
				}
				names[name] = true
				b.Name = name
			}
		}
		if wf, ok := m["weight"]; ok {
			if v, ok := c.number(wf); ok && (v <= 0 || v > 100) {
				c.errorf(wf.val, "weight: must be more than 0 and at most 100, got %s", wf.val.Value)
				weightsOK = false
			} else if ok {
				b.Weight = v
				total += v
			} else {
				weightsOK = false
			}
		} else {
			weightsOK = false
		}
		var list []int
		if sf, ok := m["steps"]; ok {
			list, _ = c.stepList(sf)
		}
		nest.branches = append(nest.branches, list)
		s.Branches = append(s.Branches, b)
	}
	if weightsOK && math.Abs(total-100) > 1e-9 {
		c.errorf(f.key, "split: weights add up to %s, not 100", formatNumber(total))
	}
	c.nested[idx] = nest
	return s
}

func formatNumber(v float64) string { return fmt.Sprintf("%g", v) }

func (c *compiler) update(f field) *UpdateStep {
	m, ok := c.mapping(f.val, "update", "update")
	if !ok {
		return nil
	}
	u := &UpdateStep{}
	if len(m) == 0 {
		c.errorf(f.key, "update: needs at least one of set, add_tags, remove_tags, tier, stage")
	}
	if sf, ok := m["set"]; ok {
		u.Set = c.updateSet(sf)
	}
	if tf, ok := m["add_tags"]; ok {
		u.AddTags = c.tags(tf)
	}
	if tf, ok := m["remove_tags"]; ok {
		u.RemoveTags = c.tags(tf)
	}
	if tf, ok := m["tier"]; ok {
		u.Tier, _ = c.word(tf, wordRe, "tier (a lowercase word like gold)")
	}
	if sf, ok := m["stage"]; ok {
		u.Stage, _ = c.enum(sf, CustomerStages)
	}
	return u
}

var attrKeyRe = regexp.MustCompile(`^attrs\.[a-z][a-z0-9_]*$`)

// updateSet reads set: field → Text rule.
func (c *compiler) updateSet(f field) map[string]*rules.Rule {
	n := c.deref(f.val)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		c.errorf(n, "set: expected a mapping of field: rule, got %s", describe(n))
		return nil
	}
	out := map[string]*rules.Rule{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := c.deref(n.Content[i])
		if k == nil {
			return out
		}
		if k.Kind != yaml.ScalarNode || (!contains(coreSetFields, k.Value) && !attrKeyRe.MatchString(k.Value)) {
			c.errorf(k, "set: cannot set %s; use one of %s or attrs.<name>%s", describe(k), strings.Join(coreSetFields, ", "), didYouMean(k.Value, coreSetFields))
			continue
		}
		if _, dup := out[k.Value]; dup {
			c.errorf(k, "set: %q is set twice", k.Value)
			continue
		}
		if name, isAttr := strings.CutPrefix(k.Value, "attrs."); isAttr {
			c.declaredAttr(k, name)
		}
		r, _ := c.ruleWith(field{k, n.Content[i+1]}, rules.Text, fixedTextAdvice)
		if name, isAttr := strings.CutPrefix(k.Value, "attrs."); isAttr && r != nil {
			c.declaredAttrValue(field{k, n.Content[i+1]}, name)
		}
		out[k.Value] = r
	}
	return out
}

// fixedTextAdvice explains a set value that is one unknown word (tier:
// gold): a set value is a rule, so a fixed text needs quotes of its own
// inside the YAML ones.
func fixedTextAdvice(n *yaml.Node, re *rules.Error) string {
	if re.Unknown == "" || strings.TrimSpace(n.Value) != re.Unknown {
		return ""
	}
	return fmt.Sprintf(`there is no field %q; to set the text %s, quote it twice: "'%s'"`, re.Unknown, re.Unknown, re.Unknown)
}

// tags reads a list of tag words.
func (c *compiler) tags(f field) []string {
	n := c.deref(f.val)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		c.errorf(n, "%s: expected a list of tags, got %s", f.key.Value, describe(n))
		return nil
	}
	var out []string
	for _, tn := range n.Content {
		if t, ok := c.word(field{f.key, tn}, regexp.MustCompile(`^[a-z0-9][a-z0-9_:-]*$`), "tag (lowercase letters, digits, _ : -)"); ok {
			out = append(out, t)
		}
	}
	return out
}

func (c *compiler) points(f field) *PointsStep {
	m, ok := c.mapping(f.val, "points", "points")
	if !ok {
		return nil
	}
	p := &PointsStep{}
	award, hasAward := m["award"]
	deduct, hasDeduct := m["deduct"]
	switch {
	case hasAward == hasDeduct:
		c.errorf(f.key, "points: use exactly one of award or deduct")
	case hasAward:
		p.Amount, _ = c.numberRule(award, MaxPoints, pointsBound)
	default:
		p.Deduct = true
		p.Amount, _ = c.numberRule(deduct, MaxPoints, pointsBound)
	}
	if r, ok := m["reason"]; ok {
		p.Reason, _ = c.word(r, wordRe, "reason (a lowercase word like purchase)")
	}
	return p
}

// numberRule compiles a Number rule; a constant must be more than 0 and at
// most max, the bound that over says in words ("a percent coupon must be
// at most 100"). The activities check computed values against the same
// bounds at run time (see values.go).
func (c *compiler) numberRule(f field, max float64, over string) (*rules.Rule, bool) {
	r, ok := c.rule(f, rules.Number)
	if !ok {
		return nil, false
	}
	n := c.deref(f.val)
	if n == nil || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
		return r, true
	}
	v, err := r.Number(rules.Env{})
	if err != nil {
		return r, true
	}
	switch {
	case v <= 0:
		c.errorf(n, "%s: must be more than 0, got %s", f.key.Value, n.Value)
		return nil, false
	case v > max:
		c.errorf(n, "%s: %s, got %s", f.key.Value, over, n.Value)
		return nil, false
	}
	return r, true
}

// couponBound is the largest value of a coupon of kind and the words that
// say so.
func couponBound(kind string) (float64, string) {
	if kind == CouponPercent {
		return MaxPercentCoupon, fmt.Sprintf("a percent coupon must be at most %d", MaxPercentCoupon)
	}
	return MaxCouponAmount, fmt.Sprintf("an amount coupon must be at most %s", formatValue(MaxCouponAmount))
}

var pointsBound = fmt.Sprintf("one step may award or deduct at most %s points", formatValue(MaxPoints))

func (c *compiler) coupon(f field) *CouponStep {
	m, ok := c.mapping(f.val, "coupon", "coupon")
	if !ok {
		return nil
	}
	cp := &CouponStep{}
	if k, ok := m["kind"]; ok {
		cp.Kind, _ = c.enum(k, couponKinds)
	}
	if v, ok := m["value"]; ok {
		max, over := couponBound(cp.Kind)
		cp.Value, _ = c.numberRule(v, max, over)
	}
	if e, ok := m["expires"]; ok {
		cp.Expires, _ = c.duration(e)
	}
	if p, ok := m["prefix"]; ok {
		cp.Prefix, _ = c.word(p, prefixRe, "coupon prefix (1 to 12 capital letters or digits)")
	}
	return cp
}

func (c *compiler) task(f field) *TaskStep {
	m, ok := c.mapping(f.val, "task", "task")
	if !ok {
		return nil
	}
	t := &TaskStep{Due: 24 * time.Hour, Priority: "normal"}
	if a, ok := m["assignee"]; ok {
		t.Assignee, _ = c.word(a, wordRe, "assignee (a role or queue like relationship_manager)")
	}
	if tf, ok := m["title"]; ok {
		t.Title, _ = c.text(tf, false)
	}
	if d, ok := m["due"]; ok {
		t.Due, _ = c.duration(d)
	}
	if p, ok := m["priority"]; ok {
		t.Priority, _ = c.enum(p, priorities)
	}
	return t
}

// assignIDs gives every step without an explicit id the id <kind>_<n>,
// n its 1-based position in document order, and builds StepIndex.
func (c *compiler) assignIDs() {
	for idx := range c.plan.Steps {
		st := &c.plan.Steps[idx]
		if st.ID != "" {
			c.plan.StepIndex[st.ID] = idx
			continue
		}
		kind := string(st.Kind)
		if kind == "" {
			kind = "step"
		}
		st.ID = fmt.Sprintf("%s_%d", kind, idx+1)
		if other, clash := c.ids[st.ID]; clash {
			c.errorf(c.idNodes[other], "step id %q is also the automatic id of the step at line %d; choose another id", st.ID, st.Line)
			continue
		}
		c.plan.StepIndex[st.ID] = idx
	}
}

// resolveGotos points each goto at its target.
func (c *compiler) resolveGotos() {
	ids := make([]string, 0, len(c.plan.StepIndex))
	for id := range c.plan.StepIndex {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, g := range c.gotos {
		target, ok := c.plan.StepIndex[g.target]
		if !ok {
			c.errorf(g.node, "goto: there is no step %q%s", g.target, didYouMean(g.target, ids))
			continue
		}
		c.plan.Steps[g.step].Next = target
	}
}

// first is the index a nested list starts at, or cont when it is empty.
func first(list []int, cont int) int {
	if len(list) == 0 {
		return cont
	}
	return list[0]
}

// link sets the successors of the steps of list; the last one continues
// at cont (the step after the parent, or End).
func (c *compiler) link(list []int, cont int) {
	for i, idx := range list {
		next := cont
		if i+1 < len(list) {
			next = list[i+1]
		}
		st := &c.plan.Steps[idx]
		switch st.Kind {
		case KindGoto:
			// Next is the target, set by resolveGotos.
		case KindExit, "":
			st.Next = End
		default:
			st.Next = next
		}
		nest := c.nested[idx]
		if nest == nil {
			continue
		}
		switch {
		case st.If != nil:
			st.If.Then, st.If.Else = first(nest.then, next), first(nest.els, next)
			c.link(nest.then, next)
			c.link(nest.els, next)
		case st.Wait != nil:
			st.Wait.OnEvent, st.Wait.OnTimeout = first(nest.onEvent, next), first(nest.onTimeout, next)
			c.link(nest.onEvent, next)
			c.link(nest.onTimeout, next)
			for b, list := range nest.branches {
				if b < len(st.Wait.Branches) {
					st.Wait.Branches[b].Start = first(list, next)
				}
				c.link(list, next)
			}
		case st.Split != nil:
			for b, list := range nest.branches {
				if b < len(st.Split.Branches) {
					st.Split.Branches[b].Start = first(list, next)
				}
				c.link(list, next)
			}
		}
	}
}

// successors are the steps control can pass to from step idx.
func (p *Plan) successors(idx int) []int {
	st := &p.Steps[idx]
	var out []int
	switch {
	case st.Kind == KindExit:
	case st.If != nil:
		out = []int{st.If.Then, st.If.Else}
	case st.Wait != nil && st.Wait.Kind == WaitEvent:
		out = []int{st.Wait.OnEvent, st.Wait.OnTimeout}
	case st.Wait != nil && st.Wait.Kind == WaitEvents:
		for _, b := range st.Wait.Branches {
			out = append(out, b.Start)
		}
		out = append(out, st.Wait.OnTimeout)
	case st.Split != nil:
		for _, b := range st.Split.Branches {
			out = append(out, b.Start)
		}
	default:
		out = []int{st.Next}
	}
	kept := out[:0]
	for _, s := range out {
		if s != End {
			kept = append(kept, s)
		}
	}
	return kept
}

// checkReachable reports the first step of each run of steps that no path
// from the start reaches (e.g. after a goto or exit, or after an if whose
// branches all exit).
func (c *compiler) checkReachable() {
	reached := make([]bool, len(c.plan.Steps))
	queue := []int{0}
	reached[0] = true
	for len(queue) > 0 {
		idx := queue[0]
		queue = queue[1:]
		for _, s := range c.plan.successors(idx) {
			if !reached[s] {
				reached[s] = true
				queue = append(queue, s)
			}
		}
	}
	for _, list := range c.lists {
		for i := 1; i < len(list); i++ {
			if !reached[list[i]] && reached[list[i-1]] {
				st := c.plan.Steps[list[i]]
				c.errorAt(st.Line, st.Col, fmt.Sprintf("step %q is unreachable: the step before it always jumps away or exits, and no goto leads here", st.ID))
			}
		}
	}
}

// checkLoops reports goto cycles that never pass a wait step: such a loop
// would spin forever without giving the customer (or the engine) a pause.
// Only gotos jump backwards, so every cycle contains one.
func (c *compiler) checkLoops() {
	steps := c.plan.Steps
	// An after_entry wait ends once: on every pass after the first it has
	// passed already, so it does not pause a loop.
	pauses := func(i int) bool { return steps[i].Kind == KindWait && steps[i].Wait.Kind != WaitAfterEntry }
	for _, scc := range c.plan.stronglyConnected(func(i int) bool { return !pauses(i) }) {
		loop := len(scc) > 1
		if len(scc) == 1 {
			for _, s := range c.plan.successors(scc[0]) {
				loop = loop || s == scc[0]
			}
		}
		if !loop {
			continue
		}
		sort.Ints(scc)
		var ids []string
		at := -1
		for _, i := range scc {
			ids = append(ids, steps[i].ID)
			if at < 0 && steps[i].Kind == KindGoto {
				at = i
			}
		}
		if at < 0 {
			at = scc[0]
		}
		g := steps[at]
		hint := ""
		for _, i := range scc {
			if steps[i].Kind == KindWait {
				hint = " (an after_entry wait ends once, not on every pass)"
			}
		}
		c.errorAt(g.Line, g.Col, fmt.Sprintf("step %q loops back without waiting (through %s); put a wait step in the loop%s", g.ID, strings.Join(ids, ", "), hint))
	}
}

// stronglyConnected returns the strongly connected components of the step
// graph restricted to the steps keep accepts (Tarjan's algorithm).
func (p *Plan) stronglyConnected(keep func(int) bool) [][]int {
	n := len(p.Steps)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var out [][]int
	next := 0
	var visit func(v int)
	visit = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range p.successors(v) {
			if !keep(w) {
				continue
			}
			if index[w] < 0 {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var scc []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				scc = append(scc, w)
				if w == v {
					break
				}
			}
			out = append(out, scc)
		}
	}
	for v := 0; v < n; v++ {
		if index[v] < 0 && keep(v) {
			visit(v)
		}
	}
	return out
}
