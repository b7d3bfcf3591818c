package engine

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/rapport-crm/rapport/rules"
)

// nodeBudget bounds how many YAML nodes one playbook may visit, counting
// alias expansions, so a "billion laughs" document fails fast.
const nodeBudget = 200_000

// field is one key/value pair of a YAML mapping.
type field struct{ key, val *yaml.Node }

// errorf records a diagnostic at node n.
func (c *compiler) errorf(n *yaml.Node, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, max(n.Column, 1)
	}
	c.errorAt(line, col, fmt.Sprintf(format, args...))
}

func (c *compiler) errorAt(line, col int, msg string) {
	c.diags = append(c.diags, Diagnostic{File: c.file, Line: line, Col: col, Msg: msg})
}

// deref follows aliases and charges the node budget; it returns nil once the
// budget is spent (after reporting it once).
func (c *compiler) deref(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode; depth++ {
		if depth > 100 {
			return nil
		}
		n = n.Alias
	}
	c.visited++
	if c.visited == nodeBudget {
		c.errorf(n, "playbook is too large (more than %d YAML nodes, counting aliases)", nodeBudget)
	}
	if c.visited >= nodeBudget {
		return nil
	}
	return n
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing (null)"
		case "!!int", "!!float":
			return fmt.Sprintf("the number %s", n.Value)
		case "!!bool":
			return fmt.Sprintf("%s (a yes/no value)", n.Value)
		}
		return fmt.Sprintf("%q", truncate(n.Value, 40))
	}
	return "an unsupported YAML node"
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// mapping checks that n is a mapping of the kind table (a key of
// mappingKeys), reports duplicate and unknown keys, and returns its fields
// by key. what names the mapping in messages.
func (c *compiler) mapping(n *yaml.Node, what, table string) (map[string]field, bool) {
	n = c.deref(n)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		c.errorf(n, "%s: expected a mapping, got %s", what, describe(n))
		return nil, false
	}
	known := mappingKeys[table]
	out := make(map[string]field, len(n.Content)/2)
	misspelt := map[string]bool{} // keys an unknown key was probably meant to be
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := c.deref(n.Content[i]), n.Content[i+1]
		if k == nil {
			return nil, false
		}
		if k.Kind != yaml.ScalarNode {
			c.errorf(k, "%s: keys must be plain words, got %s", what, describe(k))
			continue
		}
		if prev, dup := out[k.Value]; dup {
			c.errorf(k, "duplicate key %q in %s (first at line %d)", k.Value, what, prev.key.Line)
			continue
		}
		if known != nil && !contains(known, k.Value) {
			guess := suggest(k.Value, known)
			misspelt[guess] = true
			c.errorf(k, "unknown key %q in %s%s", k.Value, what, didYouMean(k.Value, known))
			continue
		}
		out[k.Value] = field{k, v}
	}
	for _, req := range requiredKeys[table] {
		if _, ok := out[req]; !ok && !misspelt[req] {
			c.errorf(n, "missing required key %q in %s", req, what)
		}
	}
	return out, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// scalar returns the value node when it is a non-null scalar.
func (c *compiler) scalar(f field, expected string) (*yaml.Node, bool) {
	n := c.deref(f.val)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		c.errorf(n, "%s: expected %s, got %s", f.key.Value, expected, describe(n))
		return nil, false
	}
	return n, true
}

// str reads a string value (any non-null scalar is taken as text).
func (c *compiler) str(f field) (string, bool) {
	n, ok := c.scalar(f, "a string")
	if !ok {
		return "", false
	}
	return n.Value, true
}

// word reads a value that must match re, described as what in the message.
func (c *compiler) word(f field, re *regexp.Regexp, what string) (string, bool) {
	s, ok := c.str(f)
	if !ok {
		return "", false
	}
	if !re.MatchString(s) {
		c.errorf(f.val, "%s: %q is not a valid %s", f.key.Value, truncate(s, 40), what)
		return "", false
	}
	return s, true
}

// enum reads a string value that must be one of values.
func (c *compiler) enum(f field, values []string) (string, bool) {
	s, ok := c.str(f)
	if !ok {
		return "", false
	}
	if !contains(values, s) {
		c.errorf(f.val, "%s: %q is not one of %s%s", f.key.Value, truncate(s, 40), strings.Join(values, ", "), didYouMean(s, values))
		return "", false
	}
	return s, true
}

// number reads a numeric value.
func (c *compiler) number(f field) (float64, bool) {
	n, ok := c.scalar(f, "a number")
	if !ok {
		return 0, false
	}
	if tag := n.ShortTag(); tag != "!!int" && tag != "!!float" {
		c.errorf(n, "%s: expected a number, got %s", f.key.Value, describe(n))
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
	if err != nil {
		c.errorf(n, "%s: %q is not a number", f.key.Value, n.Value)
		return 0, false
	}
	return v, true
}

// boolean reads a true/false value.
func (c *compiler) boolean(f field) (bool, bool) {
	n, ok := c.scalar(f, "true or false")
	if !ok {
		return false, false
	}
	if n.ShortTag() != "!!bool" {
		c.errorf(n, "%s: expected true or false, got %s", f.key.Value, describe(n))
		return false, false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		c.errorf(n, "%s: expected true or false, got %s", f.key.Value, describe(n))
		return false, false
	}
	return b, true
}

// duration reads a positive duration such as 3d or 1d12h.
// span reads the duration of a wait, months allowed, as a calendar span
// and its Approx.
func (c *compiler) span(f field) (*Span, time.Duration) {
	n := c.deref(f.val)
	if n == nil {
		return nil, 0
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		c.errorf(n, "%s: expected a duration like 3d or 6mo, got %s", f.key.Value, describe(n))
		return nil, 0
	}
	sp, err := ParseSpan(n.Value)
	if err != nil {
		c.errorf(n, "%s: bad duration %q: expected a number and a unit (mo, w, d, h, m or s) like 3d, 6mo or 1d12h", f.key.Value, truncate(n.Value, 40))
		return nil, 0
	}
	if sp.IsZero() || sp.Approx() <= 0 {
		c.errorf(n, "%s: duration %q must be greater than zero", f.key.Value, n.Value)
		return nil, 0
	}
	return &sp, sp.Approx()
}

func (c *compiler) duration(f field) (time.Duration, bool) {
	n := c.deref(f.val)
	if n == nil {
		return 0, false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		c.errorf(n, "%s: expected a duration like 3d, got %s", f.key.Value, describe(n))
		return 0, false
	}
	d, err := rules.ParseDuration(n.Value)
	if err != nil {
		if sp, spanErr := ParseSpan(n.Value); spanErr == nil && sp.Months > 0 {
			c.errorf(n, "%s: months (%s) are for waits only; write days here, like %dd", f.key.Value, n.Value, sp.Months*30)
			return 0, false
		}
		c.errorf(n, "%s: bad duration %q: expected a number and a unit (w, d, h, m or s) like 3d, 36h or 1d12h", f.key.Value, truncate(n.Value, 40))
		return 0, false
	}
	if d <= 0 {
		c.errorf(n, "%s: duration %q must be greater than zero", f.key.Value, n.Value)
		return 0, false
	}
	return d, true
}

var timeOfDayRe = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)

// timeOfDay reads "HH:MM" (24h).
func (c *compiler) timeOfDay(f field) (TimeOfDay, bool) {
	n, ok := c.scalar(f, `a time of day like "09:00"`)
	if !ok {
		return TimeOfDay{}, false
	}
	m := timeOfDayRe.FindStringSubmatch(n.Value)
	if m == nil {
		c.errorf(n, "%s: bad time of day %q: expected HH:MM (24h) like \"09:00\"", f.key.Value, truncate(n.Value, 40))
		return TimeOfDay{}, false
	}
	h, _ := strconv.Atoi(m[1])
	mm, _ := strconv.Atoi(m[2])
	return TimeOfDay{Minutes: h*60 + mm}, true
}

// rule compiles the scalar value of f as a rule of kind, mapping any error
// position inside the rule onto the YAML file.
func (c *compiler) rule(f field, kind rules.Kind) (*rules.Rule, bool) {
	return c.ruleWith(f, kind, nil)
}

// ruleWith is rule with advice of the caller's: when advise returns a
// message for the error, it replaces the rules package's.
func (c *compiler) ruleWith(f field, kind rules.Kind, advise func(n *yaml.Node, re *rules.Error) string) (*rules.Rule, bool) {
	n, ok := c.scalar(f, "a rule")
	if !ok {
		return nil, false
	}
	compile := compileRule
	if c.started {
		compile = compileStartedRule
	}
	r, err := compile(n.Value, kind)
	if err != nil {
		re, _ := err.(*rules.Error)
		if re == nil {
			re = &rules.Error{Line: 1, Column: 1, Msg: err.Error()}
		}
		msg := re.Msg
		if advise != nil {
			if m := advise(n, re); m != "" {
				msg = m
			}
		}
		line, col := c.scalarPos(n, re.Line, re.Column)
		c.errorAt(line, col, fmt.Sprintf("%s: %s", f.key.Value, msg))
		return nil, false
	}
	c.checkDeclared(f, n, kind)
	c.noteMessageCalls(n, f.key.Value)
	return r, true
}

// scalarPos maps a 1-based line and column inside the value of scalar n to
// the position in the YAML file. Plain and quoted scalars shift the column
// (past the opening quote); block scalars (| and >) shift the line, and the
// column by the block's indentation. Folded and multi-line flow scalars are
// approximated line by line.
func (c *compiler) scalarPos(n *yaml.Node, line, col int) (int, int) {
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return c.blockPos(n, line, col)
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		if line == 1 {
			return n.Line, n.Column + 1 + c.quotedOffset(n, col-1)
		}
	default:
		if line == 1 {
			return n.Line, n.Column + col - 1
		}
	}
	return n.Line + line - 1, col
}

// blockPos maps a position in a block scalar's value to the file. The value
// starts on the line after the indicator; its indentation is that of the
// first non-empty content line.
func (c *compiler) blockPos(n *yaml.Node, line, col int) (int, int) {
	first := n.Line // 1-based line of the indicator; content starts after it
	indent := -1
	for i := first; i < len(c.lines); i++ {
		if t := strings.TrimLeft(c.lines[i], " "); t != "" {
			indent = len(c.lines[i]) - len(t)
			break
		}
	}
	if indent < 0 {
		return n.Line, n.Column
	}
	if n.Style&yaml.FoldedStyle != 0 && line == 1 {
		// Lines of a folded scalar are joined by spaces: walk them.
		for i := first; i < len(c.lines); i++ {
			content := []rune(strings.TrimLeft(c.lines[i], " "))
			if col <= len(content)+1 || i == len(c.lines)-1 {
				return i + 1, indent + col
			}
			col -= len(content) + 1
		}
	}
	return first + line, indent + col
}

// quotedOffset converts an offset of runes in the value of a quoted scalar
// into an offset of runes in its source line, where escapes (\" \n \u00e9
// in double quotes, a doubled quote in single quotes) take more than one
// character.
func (c *compiler) quotedOffset(n *yaml.Node, runes int) int {
	if n.Line < 1 || n.Line > len(c.lines) {
		return runes
	}
	src := []rune(c.lines[n.Line-1])
	i := n.Column // index of the first rune after the opening quote
	if i > len(src) {
		return runes
	}
	double := n.Style&yaml.DoubleQuotedStyle != 0
	for k := 0; k < runes && i < len(src); k++ {
		switch {
		case double && src[i] == '\\' && i+1 < len(src):
			i += escapeLen(src[i+1])
		case !double && src[i] == '\'' && i+1 < len(src) && src[i+1] == '\'':
			i += 2
		default:
			i++
		}
	}
	return i - n.Column
}

// escapeLen is the source length of a double-quoted escape whose letter
// follows the backslash.
func escapeLen(letter rune) int {
	switch letter {
	case 'x':
		return 4
	case 'u':
		return 6
	case 'U':
		return 10
	}
	return 2
}
