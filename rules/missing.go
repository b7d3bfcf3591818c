package rules

import (
	"errors"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// A rule that reads an attribute or property the customer or the event does
// not have fails in expr's words ("invalid operation: <nil> > int"), which
// tell a marketer reading why a journey ended nothing. missingValue names
// the value instead: "customer.attrs.balance has no value for this
// customer". The rule and its result are unchanged; only the words are.

// missingValue rewrites the message of run-time error e of program p when
// it is expr's own words about nil ("<nil>", "is nil"; the messages of
// Rapport's functions already say what they wanted) and the rule reads a missing customer.attrs or event.props
// value: the read nearest the failing operation is named.
func missingValue(p *vm.Program, env *Env, err error, e *Error) {
	var fe *file.Error
	if !errors.As(err, &fe) || !(strings.Contains(fe.Message, "<nil>") || strings.Contains(fe.Message, "is nil")) || env == nil {
		return
	}
	best, bestDist := "", -1
	node := p.Node()
	ast.Walk(&node, readVisitor(func(owner, name string, at int) {
		if present(env, owner, name) {
			return
		}
		if d := abs(at - fe.From); bestDist < 0 || d < bestDist {
			best, bestDist = owner+"."+name, d
		}
	}))
	switch {
	case strings.HasPrefix(best, "customer."):
		e.Msg = best + " has no value for this customer"
	case best != "":
		e.Msg = best + " has no value in this event"
	}
}

// readVisitor calls its function for every read of customer.attrs.<name>
// or event.props.<name> (or ["name"]), with the read's offset.
type readVisitor func(owner, name string, at int)

func (f readVisitor) Visit(n *ast.Node) {
	m, ok := (*n).(*ast.MemberNode)
	if !ok {
		return
	}
	prop, ok := m.Property.(*ast.StringNode)
	if !ok {
		return
	}
	inner, ok := m.Node.(*ast.MemberNode)
	if !ok {
		return
	}
	id, ok := inner.Node.(*ast.IdentifierNode)
	field, ok2 := inner.Property.(*ast.StringNode)
	if !ok || !ok2 {
		return
	}
	if owner := id.Value + "." + field.Value; owner == "customer.attrs" || owner == "event.props" {
		f(owner, prop.Value, m.Location().From)
	}
}

// present reports whether the value read is there and not null.
func present(env *Env, owner, name string) bool {
	values := env.Customer.Attrs
	if owner == "event.props" {
		values = env.Event.Props
	}
	return values[name] != nil
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
