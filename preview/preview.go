// Package preview renders a playbook's message templates for one customer,
// as `rapport preview` prints them: every template in every locale,
// through the renderer a send uses (engine.RenderMessageChecked), with the
// variant a send would choose marked, and flags for what a marketer should
// fix before customers see it: a template without a variant in the
// customer's locale (they get the fallback) and a placeholder that renders
// empty.
package preview

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/scan"
)

// UnsubscribeURL is the link a preview renders for {{ unsubscribe_url }};
// a send gets one per message.
const UnsubscribeURL = "https://example.invalid/u/preview"

// Options say what to preview, for whom.
type Options struct {
	Customer rules.Customer
	Locale   string    // overrides the customer's locale when set
	Template string    // only this template; "" for all
	At       time.Time // the time the messages are rendered at
}

// Result is a preview: the assumed event and coupon, and each template.
type Result struct {
	Playbook  string
	Customer  rules.Customer // with the locale previewed
	At        time.Time
	Event     rules.Event
	Coupon    *rules.Coupon // nil when the playbook issues none
	Templates []Template
}

// Template is one template's preview.
type Template struct {
	Name string
	// Chosen is the variant a send gives the customer; Missing says it
	// is the fallback, the template having none in their locale.
	Chosen   string
	Missing  bool
	Variants []Variant
}

// Variant is one locale of a template, rendered for the customer.
type Variant struct {
	Locale   string
	Rendered engine.Rendered
	Empty    []engine.EmptyPlaceholder
	Err      error // the variant cannot be rendered
}

// Render previews the templates of p for opts.Customer. The journey's
// data a template may read is assumed: the trigger event as the
// dispatcher or scan names it, without properties, and, when the playbook
// has a coupon step, the coupon its first one issues (code <prefix>-PREVIEW).
func Render(p *engine.Plan, opts Options) (*Result, error) {
	if opts.Template != "" && p.Templates[opts.Template] == nil {
		return nil, fmt.Errorf("playbook %s has no template %q", p.Name, opts.Template)
	}
	c := opts.Customer
	if opts.Locale != "" {
		c.Locale = opts.Locale
	}
	r := &Result{Playbook: p.Name, Customer: c, At: opts.At, Event: sampleEvent(p, c.ID, opts.At)}
	env := rules.NewEnv(c, r.Event, opts.At)
	coupon, err := sampleCoupon(p, &env)
	if err != nil {
		return nil, err
	}
	if coupon != nil {
		r.Coupon, env.Coupon = coupon, *coupon
	}
	env.UnsubscribeURL = UnsubscribeURL
	for _, name := range templateNames(p, opts.Template) {
		r.Templates = append(r.Templates, renderTemplate(p, name, &env))
	}
	return r, nil
}

func templateNames(p *engine.Plan, only string) []string {
	if only != "" {
		return []string{only}
	}
	names := make([]string, 0, len(p.Templates))
	for name := range p.Templates {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func renderTemplate(p *engine.Plan, name string, env *rules.Env) Template {
	t := p.Templates[name]
	_, chosen := p.Template(name, env.Customer.Locale)
	out := Template{Name: name, Chosen: chosen, Missing: !t.HasLocale(env.Customer.Locale)}
	locales := make([]string, 0, len(t.Variants))
	for l := range t.Variants {
		locales = append(locales, l)
	}
	slices.Sort(locales)
	for _, l := range locales {
		v := t.Variants[l]
		rv := Variant{Locale: l}
		rv.Rendered, rv.Empty, rv.Err = engine.RenderMessageChecked(engine.Message{Subject: v.Subject, Text: v.Text, HTML: v.HTML}, env)
		out.Variants = append(out.Variants, rv)
	}
	return out
}

// sampleEvent is the event the journey starts with, as production names
// it: the first trigger event, the scan's event, or a manual start.
func sampleEvent(p *engine.Plan, customerID string, at time.Time) rules.Event {
	switch p.Trigger.Kind {
	case engine.TriggerSegment, engine.TriggerDate:
		return scan.TriggerEvent(p, customerID, at)
	case engine.TriggerManual:
		return rules.Event{ID: "preview", Name: "manual", Time: at}
	}
	name := ""
	if ets := p.Trigger.EventTriggers(); len(ets) > 0 {
		name = ets[0].Event
	}
	return rules.Event{ID: "preview", Name: name, Time: at}
}

// sampleCoupon is the coupon the playbook's first coupon step would issue
// to the customer, its value computed by the step's rule.
func sampleCoupon(p *engine.Plan, env *rules.Env) (*rules.Coupon, error) {
	for _, st := range p.Steps {
		cp := st.Coupon
		if cp == nil {
			continue
		}
		var ev rules.Evaluator
		value, err := ev.Number(cp.Value, env)
		if err != nil {
			return nil, fmt.Errorf("coupon of step %s: %w", st.ID, err)
		}
		code := "PREVIEW"
		if cp.Prefix != "" {
			code = cp.Prefix + "-" + code
		}
		return &rules.Coupon{Code: code, Value: value, Kind: cp.Kind, ExpiresAt: env.Now.Add(cp.Expires)}, nil
	}
	return nil, nil
}

// Flags are the problems the preview found, one sentence each.
func (r *Result) Flags() []string {
	var out []string
	for _, t := range r.Templates {
		if t.Missing {
			out = append(out, fmt.Sprintf("template %s has no variant for locale %q: the customer gets %s, the fallback", t.Name, r.Customer.Locale, t.Chosen))
		}
		for _, v := range t.Variants {
			if v.Err != nil {
				out = append(out, fmt.Sprintf("template %s [%s] cannot be rendered: %v", t.Name, v.Locale, v.Err))
			}
			for _, e := range v.Empty {
				out = append(out, fmt.Sprintf("template %s [%s] %s: {{ %s }} renders empty", t.Name, v.Locale, e.Part, e.Source))
			}
		}
	}
	return out
}

// Failed says whether some variant could not be rendered at all.
func (r *Result) Failed() bool {
	for _, t := range r.Templates {
		for _, v := range t.Variants {
			if v.Err != nil {
				return true
			}
		}
	}
	return false
}

// String writes the preview for a terminal: what was assumed, each
// template's variants with the customer's marked, and the flags.
func (r *Result) String() string {
	var b strings.Builder
	c := r.Customer
	fmt.Fprintf(&b, "preview of %s for customer %s (%s), locale %q, at %s\n", r.Playbook, c.ID, c.Name, c.Locale, r.At.Format(time.RFC3339))
	fmt.Fprintf(&b, "assumed: trigger event %s (id %s, no properties)", r.Event.Name, r.Event.ID)
	if cp := r.Coupon; cp != nil {
		fmt.Fprintf(&b, ", coupon %s (%s %s, expires %s)", cp.Code, cp.Kind, rules.Format(cp.Value), cp.ExpiresAt.Format(time.RFC3339))
	}
	fmt.Fprintf(&b, ", unsubscribe_url %s\n", UnsubscribeURL)
	for _, t := range r.Templates {
		fmt.Fprintf(&b, "\ntemplate %s\n", t.Name)
		for _, v := range t.Variants {
			writeVariant(&b, v, v.Locale == t.Chosen)
		}
	}
	flags := r.Flags()
	fmt.Fprintf(&b, "\n%d %s\n", len(flags), plural(len(flags), "flag", "flags"))
	for _, f := range flags {
		b.WriteString("  ! " + f + "\n")
	}
	return b.String()
}

func writeVariant(b *strings.Builder, v Variant, chosen bool) {
	mark := ""
	if chosen {
		mark = " ← this customer's"
	}
	fmt.Fprintf(b, "  [%s]%s\n", v.Locale, mark)
	if v.Err != nil {
		fmt.Fprintf(b, "    cannot be rendered: %v\n", v.Err)
		return
	}
	if v.Rendered.Subject != "" {
		fmt.Fprintf(b, "    subject: %s\n", v.Rendered.Subject)
	}
	writeBlock(b, "text", v.Rendered.Text)
	writeBlock(b, "html", v.Rendered.HTML)
}

// writeBlock writes a multi-line part indented under its name.
func writeBlock(b *strings.Builder, name, s string) {
	if s == "" {
		return
	}
	fmt.Fprintf(b, "    %s:\n", name)
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(strings.TrimRight("      "+l, " ") + "\n")
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
