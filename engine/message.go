package engine

import (
	"fmt"
	htmltemplate "html/template"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rapport-crm/rapport/rules"
)

// Message is the raw template text of one variant, as written in the
// playbook (and carried in activities.SendRequest).
type Message struct{ Subject, Text, HTML string }

// Rendered is a message with every placeholder filled in.
type Rendered struct{ Subject, Text, HTML string }

// textTemplate is a compiled template text: literal parts and placeholder
// rules, alternating (parts[i].rule == nil for a literal).
type textTemplate struct {
	parts []textPart
	html  *htmltemplate.Template // set for HTML texts only
}

type textPart struct {
	lit  string
	rule *rules.Rule
}

// Compiled texts are cached by their source so that rendering inside
// activities does not recompile; the cache is bounded so that a stream of
// distinct texts (a fuzzer, a buggy caller) cannot grow it without limit.
const maxCachedTexts = 10_000

var (
	textCache  sync.Map // string → *textTemplate
	htmlCache  sync.Map // string → *textTemplate
	cacheCount atomic.Int64
)

// CheckText compiles a template text and reports its first problem, with
// the position (1-based line and column) inside s.
func CheckText(s string) error {
	_, err := compileText(s)
	return err
}

// checkHTML is CheckText for the html part of an email, which must also be
// a valid html/template once placeholders are substituted.
func checkHTML(s string) error {
	_, err := compileHTML(s)
	return err
}

// RenderText fills in the placeholders of s as plain text (subjects, SMS,
// task titles). It renders for journeys already running, so a placeholder
// that the release which started the journey accepted renders (see
// startedText).
func RenderText(s string, env *rules.Env) (string, error) {
	t, err := startedText(s, false)
	if err != nil {
		return "", err
	}
	vals, err := t.values(env)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i, p := range t.parts {
		if p.rule == nil {
			b.WriteString(p.lit)
		} else {
			b.WriteString(vals[i])
		}
	}
	return b.String(), nil
}

// RenderMessage renders every part of m. The HTML part escapes each
// interpolated value for its HTML context (text, attribute, URL), so a
// customer named "<script>" cannot inject markup; Subject and Text are
// plain.
func RenderMessage(m Message, env *rules.Env) (Rendered, error) {
	var out Rendered
	var err error
	if out.Subject, err = RenderText(m.Subject, env); err != nil {
		return Rendered{}, fmt.Errorf("render subject: %w", err)
	}
	if out.Text, err = RenderText(m.Text, env); err != nil {
		return Rendered{}, fmt.Errorf("render text: %w", err)
	}
	if out.HTML, err = renderHTML(m.HTML, env); err != nil {
		return Rendered{}, fmt.Errorf("render html: %w", err)
	}
	return out, nil
}

func renderHTML(s string, env *rules.Env) (string, error) {
	if s == "" {
		return "", nil
	}
	t, err := startedText(s, true)
	if err != nil {
		return "", err
	}
	vals, err := t.values(env)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.html.Execute(&b, htmlData{V: vals}); err != nil {
		return "", err
	}
	return b.String(), nil
}

// htmlData is what the generated html/template sees: .V holds the
// formatted placeholder values by part index.
type htmlData struct{ V []string }

// values evaluates the placeholders; vals[i] is set for rule parts.
func (t *textTemplate) values(env *rules.Env) ([]string, error) {
	if env == nil {
		env = &rules.Env{}
	}
	vals := make([]string, len(t.parts))
	var ev rules.Evaluator
	for i, p := range t.parts {
		if p.rule == nil {
			continue
		}
		v, err := ev.Value(p.rule, env)
		if err != nil {
			return nil, fmt.Errorf("placeholder {{ %s }}: %w", strings.TrimSpace(p.rule.Source), err)
		}
		vals[i] = rules.Format(v)
	}
	return vals, nil
}

func compileText(s string) (*textTemplate, error) {
	return cached(&textCache, s, func(s string) (*textTemplate, error) { return parseText(s, compileRule) })
}

func compileHTML(s string) (*textTemplate, error) {
	return cached(&htmlCache, s, func(s string) (*textTemplate, error) { return parseHTML(s, compileRule) })
}

// Texts that today's rules refuse but an earlier release accepted, compiled
// as that release did (rules.CompileStarted), for the journeys it started.
var (
	startedTextCache sync.Map // string → *textTemplate
	startedHTMLCache sync.Map
)

// startedText compiles a text of a journey already running: with today's
// rules, or, where they refuse it, with the rules of the release that
// started the journey. The error is today's.
func startedText(s string, html bool) (*textTemplate, error) {
	strict, cache, parse := compileText, &startedTextCache, parseText
	if html {
		strict, cache, parse = compileHTML, &startedHTMLCache, parseHTML
	}
	t, err := strict(s)
	if err == nil {
		return t, nil
	}
	if old, oldErr := cached(cache, s, func(s string) (*textTemplate, error) { return parse(s, compileStartedRule) }); oldErr == nil {
		return old, nil
	}
	return nil, err
}

// cached returns the compiled form of s from cache, compiling it with
// compile (and keeping it, within the cache's bound) on a miss.
func cached(cache *sync.Map, s string, compile func(string) (*textTemplate, error)) (*textTemplate, error) {
	if t, ok := cache.Load(s); ok {
		return t.(*textTemplate), nil
	}
	t, err := compile(s)
	if err != nil {
		return nil, err
	}
	store(cache, s, t)
	return t, nil
}

// parseHTML parses s like parseText and builds the html/template that
// escapes each placeholder's value for its HTML context.
func parseHTML(s string, compile ruleCompiler) (*textTemplate, error) {
	t, err := parseText(s, compile)
	if err != nil {
		return nil, err
	}
	var src strings.Builder
	for i, p := range t.parts {
		if p.rule == nil {
			src.WriteString(p.lit)
		} else {
			fmt.Fprintf(&src, "{{index .V %d}}", i)
		}
	}
	h, err := htmltemplate.New("html").Parse(src.String())
	if err == nil {
		// Escaping is decided on first execution; do it now so a placeholder
		// in an impossible HTML context fails at compile time.
		err = h.Execute(io.Discard, htmlData{V: make([]string, len(t.parts))})
	}
	if err != nil {
		return nil, &rules.Error{Line: 1, Column: 1, Msg: "html is not a valid HTML template: " + strings.TrimPrefix(err.Error(), "html/template:")}
	}
	t.html = h
	return t, nil
}

// cacheTexts switches the text cache; benchmarks turn it off to measure
// compilation of texts that differ between playbooks.
var cacheTexts = true

func store(m *sync.Map, key string, t *textTemplate) {
	if !cacheTexts || cacheCount.Load() >= maxCachedTexts {
		return
	}
	if _, loaded := m.LoadOrStore(key, t); !loaded {
		cacheCount.Add(1)
	}
}

// parseText splits s into literals and {{ rule }} placeholders and compiles
// each rule with compile as a printable (Text) rule. Errors carry positions
// inside s.
func parseText(s string, compile ruleCompiler) (*textTemplate, error) {
	t := &textTemplate{}
	rest, off := s, 0
	for {
		open := strings.Index(rest, "{{")
		if open < 0 {
			if rest != "" {
				t.parts = append(t.parts, textPart{lit: rest})
			}
			return t, nil
		}
		if open > 0 {
			t.parts = append(t.parts, textPart{lit: rest[:open]})
		}
		closeAt := strings.Index(rest[open+2:], "}}")
		if closeAt < 0 {
			line, col := textPos(s, off+open)
			return nil, &rules.Error{Line: line, Column: col, Msg: "unclosed placeholder: {{ without a matching }}"}
		}
		exprStart := off + open + 2
		src := rest[open+2 : open+2+closeAt]
		if strings.TrimSpace(src) == "" {
			line, col := textPos(s, off+open)
			return nil, &rules.Error{Line: line, Column: col, Msg: "empty placeholder {{ }}"}
		}
		r, err := compile(src, rules.Text)
		if err != nil {
			return nil, shiftError(s, exprStart, err)
		}
		t.parts = append(t.parts, textPart{rule: r})
		consumed := open + 2 + closeAt + 2
		rest, off = rest[consumed:], off+consumed
	}
}

// shiftError moves a rule error from its position inside the placeholder
// expression (starting at byte offset start of s) to its position in s.
func shiftError(s string, start int, err error) error {
	re, ok := err.(*rules.Error)
	if !ok {
		line, col := textPos(s, start)
		return &rules.Error{Line: line, Column: col, Msg: err.Error()}
	}
	line, col := textPos(s, start)
	if re.Line <= 1 && re.Column <= 1 {
		// An error about the whole rule: point at its first character.
		lead := len(s[start:]) - len(strings.TrimLeft(s[start:], " \t"))
		return &rules.Error{Line: line, Column: col + lead, Msg: "placeholder: " + re.Msg}
	}
	if re.Line <= 1 {
		col += re.Column - 1
	} else {
		line += re.Line - 1
		col = re.Column
	}
	return &rules.Error{Line: line, Column: col, Msg: "placeholder: " + re.Msg}
}

// textPos converts a byte offset of s to a 1-based line and rune column.
func textPos(s string, off int) (int, int) {
	line, col := 1, 1
	for _, r := range s[:min(off, len(s))] {
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// checkText checks a template text (html: the html part of an email) as
// CheckText and checkHTML do; compiling the source of a journey already
// running (c.started), a text that only an earlier release accepted passes.
func (c *compiler) checkText(s string, html bool) error {
	check := CheckText
	if html {
		check = checkHTML
	}
	err := check(s)
	if err != nil && c.started {
		if _, oldErr := startedText(s, html); oldErr == nil {
			return nil
		}
	}
	if err == nil && !c.started {
		err = noMessageInText(s)
	}
	if err == nil {
		err = c.checkPlaceholdersDeclared(s)
	}
	return err
}

// checkPlaceholdersDeclared checks the placeholders of a template text
// against the workspace declaration, as rules are checked: a misspelt or
// undeclared customer.attrs or event.props name would render empty.
func (c *compiler) checkPlaceholdersDeclared(s string) error {
	if c.ws == nil || c.started {
		return nil
	}
	_, err := parseText(s, func(src string, kind rules.Kind) (*rules.Rule, error) {
		if err := rules.CheckDeclared(src, kind, c.ws.declared(nil)); err != nil {
			return nil, err
		}
		return compileRule(src, kind)
	})
	return err
}

// EmptyPlaceholder is a placeholder of a message that rendered as nothing
// (or only spaces): a customer field not set, a property the event lacks.
type EmptyPlaceholder struct {
	Part   string // subject, text or html
	Source string // the placeholder's rule, as written
}

// RenderMessageChecked renders m exactly as RenderMessage does (a send's
// path) and reports each placeholder that rendered empty, so that a
// preview can flag "Hello ," before a customer sees it.
func RenderMessageChecked(m Message, env *rules.Env) (Rendered, []EmptyPlaceholder, error) {
	out, err := RenderMessage(m, env)
	if err != nil {
		return Rendered{}, nil, err
	}
	var empty []EmptyPlaceholder
	for _, part := range []struct {
		name, src string
		html      bool
	}{{"subject", m.Subject, false}, {"text", m.Text, false}, {"html", m.HTML, true}} {
		sources, err := emptyPlaceholders(part.src, part.html, env)
		if err != nil {
			return Rendered{}, nil, fmt.Errorf("render %s: %w", part.name, err)
		}
		for _, s := range sources {
			empty = append(empty, EmptyPlaceholder{Part: part.name, Source: s})
		}
	}
	return out, empty, nil
}

// emptyPlaceholders lists the rules of the placeholders of s whose value
// is empty once formatted, as the renderer formats it.
func emptyPlaceholders(s string, html bool, env *rules.Env) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	t, err := startedText(s, html)
	if err != nil {
		return nil, err
	}
	vals, err := t.values(env)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, p := range t.parts {
		if p.rule != nil && strings.TrimSpace(vals[i]) == "" {
			out = append(out, strings.TrimSpace(p.rule.Source))
		}
	}
	return out, nil
}
