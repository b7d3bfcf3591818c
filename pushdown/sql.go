package pushdown

import (
	"fmt"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
)

const (
	sqlTrue  = "TRUE"
	sqlFalse = "FALSE"
)

// cond is what the SQL knows about a boolean node of a rule. A rule node
// evaluates, for one customer, to true, to false, or to an error (a
// missing attribute compared with >, say); t holds for every customer for
// whom it is true and f for every customer for whom it is false — upper
// bounds, exact when exactT / exactF. A NULL reads as false: t and f are
// built from comparisons with AND and OR only (NOT appears only around
// expressions that cannot be NULL), and under AND and OR a NULL that
// means false gives the answer false would, so the SQL never needs the
// three-valued logic expr does not have.
type cond struct {
	t, f           string
	exactT, exactF bool
}

// unknownCond is a node the SQL cannot decide: anything may be true and
// anything false.
var unknownCond = cond{t: sqlTrue, f: sqlTrue}

// exactCond is a node decided exactly, never an error: f is the negation of
// t.
func exactCond(t, f string) cond { return cond{t: t, f: f, exactT: true, exactF: true} }

// constCond is a node with the same value for every customer.
func constCond(v bool) cond {
	if v {
		return exactCond(sqlTrue, sqlFalse)
	}
	return exactCond(sqlFalse, sqlTrue)
}

// not is the negation of a node: true where it is false.
func not(c cond) cond { return cond{t: c.f, f: c.t, exactT: c.exactF, exactF: c.exactT} }

// and is a && b as expr runs it: a first; false if a is false; b's value if
// a is true; an error if a fails.
func and(a, b cond) cond {
	return cond{
		t:      sqlAnd(a.t, b.t),
		f:      sqlOr(a.f, sqlAnd(a.t, b.f)),
		exactT: a.exactT && b.exactT,
		exactF: a.exactF && a.exactT && b.exactF,
	}
}

// or is a || b as expr runs it: true if a is true; b's value if a is false;
// an error if a fails.
func or(a, b cond) cond {
	return cond{
		t:      sqlOr(a.t, sqlAnd(a.f, b.t)),
		f:      sqlAnd(a.f, b.f),
		exactT: a.exactT && a.exactF && b.exactT,
		exactF: a.exactF && b.exactF,
	}
}

// ternary is c ? x : y.
func ternary(c, x, y cond) cond {
	return cond{
		t:      sqlOr(sqlAnd(c.t, x.t), sqlAnd(c.f, y.t)),
		f:      sqlOr(sqlAnd(c.t, x.f), sqlAnd(c.f, y.f)),
		exactT: c.exactT && c.exactF && x.exactT && y.exactT,
		exactF: c.exactT && c.exactF && x.exactF && y.exactF,
	}
}

func sqlAnd(a, b string) string {
	switch {
	case a == sqlFalse || b == sqlFalse:
		return sqlFalse
	case a == sqlTrue:
		return b
	case b == sqlTrue:
		return a
	}
	return paren(a) + " AND " + paren(b)
}

func sqlOr(a, b string) string {
	switch {
	case a == sqlTrue || b == sqlTrue:
		return sqlTrue
	case a == sqlFalse:
		return b
	case b == sqlFalse:
		return a
	}
	return paren(a) + " OR " + paren(b)
}

// sqlNot negates an expression that is never NULL.
func sqlNot(a string) string {
	switch a {
	case sqlTrue:
		return sqlFalse
	case sqlFalse:
		return sqlTrue
	}
	return "NOT " + paren(a)
}

// paren wraps a compound expression in parentheses.
func paren(s string) string {
	if s == sqlTrue || s == sqlFalse || !strings.ContainsAny(s, " ") || enclosed(s) {
		return s
	}
	return "(" + s + ")"
}

// enclosed reports whether s is one parenthesized expression.
func enclosed(s string) bool {
	if len(s) < 2 || s[0] != '(' || s[len(s)-1] != ')' {
		return false
	}
	depth := 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 && i != len(s)-1 {
				return false
			}
		}
	}
	return true
}

// builder collects the arguments of one Bind.
type builder struct {
	now   time.Time
	zones Zones
	src   string // the where rule's source, for InGo
	args  []any
	types []string
	notes []string
	inGo  []string
}

// arg adds an argument and returns its placeholder with an explicit type,
// so that PostgreSQL never has to guess it.
func (b *builder) arg(v any, sqlType, note string) string {
	for i, a := range b.args {
		if b.types[i] == sqlType && b.notes[i] == note && fmt.Sprint(a) == fmt.Sprint(v) {
			return fmt.Sprintf("$%d::%s", i+1, sqlType)
		}
	}
	b.args = append(b.args, v)
	b.types = append(b.types, sqlType)
	b.notes = append(b.notes, note)
	return fmt.Sprintf("$%d::%s", len(b.args), sqlType)
}

// nowArg is the scan time.
func (b *builder) nowArg() string {
	return b.arg(b.now, "timestamptz", "now (the scan time) = "+b.now.UTC().Format(time.RFC3339Nano))
}

// goOnly records that a part of the rule is left to Go and returns the
// unknown condition.
func (b *builder) goOnly(n ast.Node) cond {
	b.note(n)
	return unknownCond
}

// note records the source text of n as decided in Go only.
func (b *builder) note(n ast.Node) {
	text := sourceOf(b.src, n)
	for _, s := range b.inGo {
		if s == text {
			return
		}
	}
	b.inGo = append(b.inGo, text)
}

// sourceOf is the text of n in the rule's source src: expr keeps the
// location of each token, so the span of a node is that of its tokens,
// widened to the closing parentheses of the calls and groups it opens.
func sourceOf(src string, n ast.Node) string {
	runes := []rune(src)
	from, to := len(runes), 0
	ast.Walk(&n, spanVisitor(func(loc file.Location) {
		if loc.To > loc.From && loc.To <= len(runes) {
			from, to = min(from, loc.From), max(to, loc.To)
		}
	}))
	if from >= to {
		return strings.Join(strings.Fields(n.String()), " ")
	}
	open := strings.Count(string(runes[from:to]), "(") - strings.Count(string(runes[from:to]), ")")
	for ; open > 0 && to < len(runes); to++ {
		switch runes[to] {
		case ')':
			open--
		case ' ', '\t', '\n', '\r':
		default:
			open = 0
			to--
		}
	}
	return strings.Join(strings.Fields(string(runes[from:to])), " ")
}

// spanVisitor calls its function with the location of every node.
type spanVisitor func(file.Location)

func (f spanVisitor) Visit(n *ast.Node) { f((*n).Location()) }

// timeNote describes a time for explain: relative to now when it is a whole
// number of seconds away.
func (b *builder) timeNote(t time.Time) string {
	d := b.now.Sub(t)
	switch {
	case d == 0:
		return "now"
	case d%time.Second != 0:
		return t.UTC().Format(time.RFC3339Nano)
	case d > 0:
		return "now − " + formatDuration(d)
	}
	return "now + " + formatDuration(-d)
}
