package engine

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// Explain writes a stable, human-readable dump of a compiled plan: the
// header, policies, templates and every flat step with its successors and
// rules. `rapport explain` prints it and the golden test pins it, so any
// change in how a playbook compiles shows up as a diff.
func Explain(w io.Writer, p *Plan) error {
	e := &explainer{p: p}
	e.header()
	e.steps()
	_, err := io.WriteString(w, e.b.String())
	return err
}

type explainer struct {
	p *Plan
	b strings.Builder
}

func (e *explainer) line(format string, args ...any) {
	fmt.Fprintf(&e.b, format+"\n", args...)
}

func (e *explainer) header() {
	p := e.p
	e.line("playbook %s (version %s)", p.Name, p.Version)
	if p.Description != "" {
		e.line("  description: %s", p.Description)
	}
	e.line("  stage: %s", p.Stage)
	if p.Owner != "" {
		e.line("  owner: %s", p.Owner)
	}
	e.line("  topic: %s", p.Topic)
	e.line("  trigger: %s", describeTrigger(p.Trigger))
	en := p.Entry
	entry := fmt.Sprintf("reentry %s", en.Reentry)
	if en.Reentry == ReentryAfter {
		entry += " " + formatDuration(en.Cooldown)
	}
	if en.Holdout > 0 {
		entry += fmt.Sprintf(", holdout %s%%", formatNumber(en.Holdout))
	}
	if en.Audience != nil {
		entry += ", audience " + ruleText(en.Audience)
	}
	if en.GlobalControl {
		entry += ", global control group"
	}
	e.line("  entry: %s", entry)
	if g := p.Goal; g != nil {
		goal := fmt.Sprintf("%s within %s", g.Event, formatDuration(g.Within))
		if g.When != nil {
			goal += " when " + ruleText(g.When)
		}
		if g.Continue {
			goal += "; records the conversion and goes on"
		} else {
			goal += "; ends the journey (exit)"
		}
		e.line("  goal: %s", goal)
	} else {
		e.line("  goal: none")
	}
	if p.ExitWhen != nil {
		e.line("  exit_when: %s", ruleText(p.ExitWhen))
	}
	if q := p.Policies.QuietHours; q != nil {
		e.line("  quiet_hours: %s-%s", q.Start, q.End)
	}
	if f := p.Policies.FrequencyCap; f != nil {
		e.line("  frequency_cap: %d per %s, %s", f.Max, formatDuration(f.Per), f.Action)
	}
	names := make([]string, 0, len(p.Templates))
	for name := range p.Templates {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) > 0 {
		e.line("  templates:")
	}
	for _, name := range names {
		t := p.Templates[name]
		locales := make([]string, 0, len(t.Variants))
		for l := range t.Variants {
			locales = append(locales, l)
		}
		sort.Strings(locales)
		e.line("    %s: %s", name, strings.Join(locales, ", "))
	}
}

func describeTrigger(t Trigger) string {
	var s string
	switch t.Kind {
	case TriggerEvent:
		var parts []string
		for _, et := range t.EventTriggers() {
			p := "event " + et.Event
			if et.When != nil {
				p += " when " + ruleText(et.When)
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, " or ")
	case TriggerSegment:
		if t.Cron != "" {
			s = fmt.Sprintf("segment cron %q", t.Cron)
		} else {
			s = "segment every " + formatDuration(t.Every)
		}
	case TriggerDate:
		s = fmt.Sprintf("date %s at %s", t.Date, t.At)
	case TriggerManual:
		return "manual"
	}
	if t.Where != nil {
		s += " where " + ruleText(t.Where)
	}
	return s
}

func (e *explainer) steps() {
	e.line("  steps:")
	for i := range e.p.Steps {
		st := &e.p.Steps[i]
		e.line("    %d %s (line %d): %s", i, st.ID, st.Line, e.describeStep(st))
	}
}

// target names a step index for the dump.
func (e *explainer) target(i int) string {
	if i == End || i < 0 || i >= len(e.p.Steps) {
		return "end"
	}
	return e.p.Steps[i].ID
}

func (e *explainer) describeStep(st *Step) string {
	next := " -> " + e.target(st.Next)
	switch {
	case st.Send != nil:
		s := fmt.Sprintf("send %s template %s", st.Send.Channel, st.Send.Template)
		if st.Send.Transactional {
			s += " (transactional)"
		}
		return s + next
	case st.Wait != nil && (st.Wait.Kind == WaitEvent || st.Wait.Kind == WaitEvents):
		return e.describeWait(st.Wait)
	case st.Wait != nil:
		return e.describeWait(st.Wait) + next
	case st.If != nil:
		return fmt.Sprintf("if %s -> then %s, else %s", ruleText(st.If.Cond), e.target(st.If.Then), e.target(st.If.Else))
	case st.Split != nil:
		var parts []string
		for _, b := range st.Split.Branches {
			parts = append(parts, fmt.Sprintf("%s %s%% -> %s", b.Name, formatNumber(b.Weight), e.target(b.Start)))
		}
		return "split " + strings.Join(parts, ", ")
	case st.Update != nil:
		return describeUpdate(st.Update) + next
	case st.Points != nil:
		verb := "award"
		if st.Points.Deduct {
			verb = "deduct"
		}
		return fmt.Sprintf("points %s %s reason %s%s", verb, ruleText(st.Points.Amount), st.Points.Reason, next)
	case st.Coupon != nil:
		cp := st.Coupon
		s := fmt.Sprintf("coupon %s value %s expires %s", cp.Kind, ruleText(cp.Value), formatDuration(cp.Expires))
		if cp.Prefix != "" {
			s += " prefix " + cp.Prefix
		}
		return s + next
	case st.Task != nil:
		t := st.Task
		return fmt.Sprintf("task for %s %q due %s priority %s%s", t.Assignee, t.Title, formatDuration(t.Due), t.Priority, next)
	case st.Exit != nil:
		return "exit " + st.Exit.Reason
	case st.Kind == KindGoto:
		return "goto " + e.target(st.Next)
	}
	return string(st.Kind) + next
}

func (e *explainer) describeWait(w *WaitStep) string {
	switch w.Kind {
	case WaitFor:
		return "wait " + w.Length(w.Duration)
	case WaitUntil:
		return "wait until " + w.Until.String() + " local time"
	case WaitAfterEntry:
		return "wait until " + w.Length(w.Duration) + " after entry"
	case WaitEvents:
		var parts []string
		for _, b := range w.Branches {
			p := eventOf(b.Event, b.Of)
			if b.When != nil {
				p += " when " + ruleText(b.When)
			}
			parts = append(parts, p+" -> "+e.target(b.Start))
		}
		return fmt.Sprintf("wait for the first of: %s; timeout %s -> %s", strings.Join(parts, ", "), w.Length(w.Timeout), e.target(w.OnTimeout))
	}
	s := "wait for event " + eventOf(w.Event, w.Of)
	if w.When != nil {
		s += " when " + ruleText(w.When)
	}
	return fmt.Sprintf("%s, timeout %s -> on event %s, on timeout %s", s, w.Length(w.Timeout), e.target(w.OnEvent), e.target(w.OnTimeout))
}

// Length writes a wait's length as the playbook did: its calendar span,
// or, for a plan compiled before spans, d (the wait's Duration or Timeout).
func (w *WaitStep) Length(d time.Duration) string {
	if w.Span != nil {
		return w.Span.String()
	}
	return formatDuration(d)
}

func describeUpdate(u *UpdateStep) string {
	var parts []string
	keys := make([]string, 0, len(u.Set))
	for k := range u.Set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("set %s = %s", k, ruleText(u.Set[k])))
	}
	if len(u.AddTags) > 0 {
		parts = append(parts, "add tags "+strings.Join(u.AddTags, ", "))
	}
	if len(u.RemoveTags) > 0 {
		parts = append(parts, "remove tags "+strings.Join(u.RemoveTags, ", "))
	}
	if u.Tier != "" {
		parts = append(parts, "tier "+u.Tier)
	}
	if u.Stage != "" {
		parts = append(parts, "stage "+u.Stage)
	}
	return "update " + strings.Join(parts, "; ")
}

func ruleText(r *rules.Rule) string {
	if r == nil {
		return "<none>"
	}
	return "[" + strings.Join(strings.Fields(r.Source), " ") + "]"
}

// String formats a time of day as HH:MM.
func (t TimeOfDay) String() string { return fmt.Sprintf("%02d:%02d", t.Hour(), t.Minute()) }

// FormatDuration writes a duration in the playbook's own units: 180d,
// 1d12h, 30m (0s for none).
func FormatDuration(d time.Duration) string { return formatDuration(d) }

// formatDuration is FormatDuration.
func formatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit string
		size time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if n := d / u.size; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.unit)
			d -= n * u.size
		}
	}
	if b.Len() == 0 || d > 0 {
		fmt.Fprintf(&b, "%dns", d)
	}
	return b.String()
}
