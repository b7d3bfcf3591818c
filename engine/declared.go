package engine

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rapport-crm/rapport/rules"
)

// The compiler's side of the workspace declaration (workspace.go): event
// names must be declared, and every rule is checked once more with
// customer.attrs and event.props typed as declared (rules.CheckDeclared).
// The check only adds diagnostics: plans are what they were without a
// workspace, and a journey already running never sees the declaration.

// notAnEventName says why name, which is not a word, cannot name an
// event: for a name as a source sends it ("Order Completed"), with the
// word the event API stores it as, which is what a playbook names.
func notAnEventName(name string) string {
	if w := rules.NormalizeEvent(name); w != name && wordRe.MatchString(w) {
		return fmt.Sprintf("%q is not a valid event name: the event API stores it as %s; write that", truncate(name, 40), w)
	}
	return fmt.Sprintf("%q is not a valid event name (a lowercase word like order_completed)", truncate(name, 40))
}

// eventName reads the event name of a trigger, a wait or a goal and, when
// the workspace declares events, checks that this one is declared. Every
// place a playbook names an event reads it here.
func (c *compiler) eventName(f field) string {
	if f.val != nil && f.val.Kind == yaml.ScalarNode && !wordRe.MatchString(f.val.Value) {
		c.errorf(f.val, "%s: %s", f.key.Value, notAnEventName(f.val.Value))
		return ""
	}
	name, ok := c.word(f, wordRe, "event name (a lowercase word like order_completed)")
	if !ok || c.ws == nil || c.ws.Events == nil || rules.IsMessageEvent(name) {
		return name // the message events are built in
	}
	if _, declared := c.ws.Events[name]; !declared {
		names := declaredNames(c.ws.Events)
		if s := didYouMean(name, names); s != "" {
			c.errorf(f.val, "%s: event %q is not declared in %s%s", f.key.Value, name, c.ws.File, s)
		} else {
			c.errorf(f.val, "%s: event %q is not declared in %s; add it under events:", f.key.Value, name, c.ws.File)
		}
	}
	return name
}

// whenRule compiles the when rule of a trigger, wait or goal for event:
// its event.props are that event's declared props.
func (c *compiler) whenRule(f field, event string) (*rules.Rule, bool) {
	prev := c.propsOf
	c.propsOf = &event
	defer func() { c.propsOf = prev }()
	return c.rule(f, rules.Bool)
}

// declaredAttr checks the attrs.<name> an update sets against the
// declared attrs.
func (c *compiler) declaredAttr(k *yaml.Node, name string) {
	if c.ws == nil || c.ws.Attrs == nil {
		return
	}
	if _, ok := c.ws.Attrs[name]; ok {
		return
	}
	if s := didYouMean(name, declaredNames(c.ws.Attrs)); s != "" {
		c.errorf(k, "set: attrs.%s is not declared in %s%s", name, c.ws.File, s)
		return
	}
	c.errorf(k, "set: attrs.%s is not declared in %s; declare it under attrs: with its type", name, c.ws.File)
}

// declaredAttrValue checks that the value an update sets a declared
// number or boolean attr to is of that type (a text attr takes any value,
// which is stored as it comes).
func (c *compiler) declaredAttrValue(f field, name string) {
	if c.ws == nil || c.ws.Attrs == nil || c.started {
		return
	}
	kind, what := rules.Text, ""
	switch c.ws.Attrs[name] {
	case rules.TypeNumber:
		kind, what = rules.Number, "a number"
	case rules.TypeBoolean:
		kind, what = rules.Bool, "true or false"
	default:
		return
	}
	n := c.deref(f.val)
	if n == nil || n.Kind != yaml.ScalarNode {
		return
	}
	if err := rules.CheckDeclared(n.Value, kind, c.ws.declared(c.propsOf)); err != nil {
		line, col := c.scalarPos(n, 1, 1)
		c.errorAt(line, col, fmt.Sprintf("set: attrs.%s is declared %s in %s; set it to %s, not %s", name, c.ws.Attrs[name], c.ws.File, what, strings.TrimSpace(n.Value)))
	}
}

// checkDeclared checks rule n (which compiled) against the declaration and
// reports what does not fit at its place in the file.
func (c *compiler) checkDeclared(f field, n *yaml.Node, kind rules.Kind) {
	if c.ws == nil || c.started {
		return
	}
	err := rules.CheckDeclared(n.Value, kind, c.ws.declared(c.propsOf))
	if err == nil {
		return
	}
	re, ok := err.(*rules.Error)
	if !ok {
		re = &rules.Error{Line: 1, Column: 1, Msg: err.Error()}
	}
	line, col := c.scalarPos(n, re.Line, re.Column)
	c.errorAt(line, col, fmt.Sprintf("%s: %s", f.key.Value, re.Msg))
}

// declared is what a rule may read. event is the event a when rule is
// for; nil elsewhere, where `event` can be the trigger event or the last
// event waited for, so a property is checked against those of every
// declared event (its type when they agree on it).
func (ws *Workspace) declared(event *string) rules.Declared {
	d := rules.Declared{Attrs: ws.Attrs, File: ws.File}
	switch {
	case ws.Events == nil:
	case event != nil && rules.IsMessageEvent(*event):
		d.Props, d.Event = messageEventProps(), *event
	case event != nil:
		if props, ok := ws.Events[*event]; ok {
			d.Props, d.Event = props, *event
		}
	default:
		d.Props = messageEventProps()
		for _, props := range ws.Events {
			for name, t := range props {
				if prev, seen := d.Props[name]; seen && prev != t {
					t = rules.TypeAny
				}
				d.Props[name] = t
			}
		}
	}
	return d
}

func declaredNames[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
