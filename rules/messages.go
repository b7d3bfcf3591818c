package rules

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
)

// expr reports a type error in Go's terms: "invalid operation: == (mismatched
// types string and int)". A marketer does not know what a string or an int64
// is, nor which side of the == was wrong. compileError reads the rule again
// (its syntax tree, at the position expr reported) to name the field the
// error is about and to show the rule written the way it works:
//
//	customer.tier == 3        customer.tier is text; compare it with text, like customer.tier == "gold"
//	customer.points > "100"   customer.points is a number; compare it with a number, like customer.points > 100
//
// Only compile errors are rewritten this way; what a message cannot name
// reliably keeps humanize's generic wording.

// compileError is the *Error for a failed expr.Compile of src as kind.
func compileError(src string, err error, kind Kind) *Error {
	e := toError(err)
	var fe *file.Error
	if !errors.As(err, &fe) {
		if msg := kindMismatch(src, err.Error(), kind); msg != "" {
			e.Msg = msg
		}
		return e
	}
	x := explainer{src: src, at: fe.From}
	if msg := x.explain(fe.Message, e); msg != "" {
		e.Msg = msg
	}
	return e
}

// Marketer names of the kinds of value a rule handles.
const (
	classText     = "text"
	classNumber   = "number"
	classBool     = "yes/no"
	classTime     = "date/time"
	classDuration = "duration"
	classList     = "list"
	classMap      = "map"
	classRecord   = "record"
	classNil      = "nil"
	classAny      = "any"
)

// classOf classifies a type as expr prints it (nature.String(): string,
// int64, time.Time, []string, map[string]interface {}, rules.Customer …).
func classOf(t string) string {
	switch t {
	case "string":
		return classText
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return classNumber
	case "bool":
		return classBool
	case "time.Time":
		return classTime
	case "time.Duration":
		return classDuration
	case "nil":
		return classNil
	case "unknown", "interface {}", "any":
		return classAny
	}
	switch {
	case strings.HasPrefix(t, "[]"):
		return classList
	case strings.HasPrefix(t, "map["):
		return classMap
	case goTypeNames[t] != "":
		return classRecord
	}
	return ""
}

// typeNoun names a type for "X is …": text, a number, a list of text.
func typeNoun(t string) string {
	switch c := classOf(t); c {
	case classText:
		return "text"
	case classNumber:
		return "a number"
	case classBool:
		return "a yes/no value"
	case classTime:
		return "a date/time"
	case classDuration:
		return "a duration"
	case classNil:
		return "nil"
	case classAny:
		return "a value of any kind"
	case classMap:
		return "a map"
	case classRecord:
		return "the whole " + goTypeNames[t] + " record"
	case classList:
		switch classOf(t[2:]) {
		case classText:
			return "a list of text"
		case classNumber:
			return "a list of numbers"
		case classBool:
			return "a list of yes/no values"
		case classTime:
			return "a list of dates/times"
		}
		return "a list"
	}
	return t
}

// textExamples are plausible values of the core text fields, for examples
// in messages (customer.tier == "gold").
var textExamples = map[string]string{
	"customer.tier":     "gold",
	"customer.stage":    "active",
	"customer.locale":   "en",
	"customer.timezone": "Europe/Berlin",
	"customer.name":     "Ana",
	"event.name":        "purchase",
	"event.currency":    "EUR",
	"event.category":    "shoes",
	"coupon.kind":       "percent",
}

// usage shows how each Rapport built-in is called.
var usage = map[string]string{
	"daysSince":     "daysSince(customer.last_purchase_at)",
	"hoursSince":    "hoursSince(event.time)",
	"localHour":     "localHour(customer.timezone)",
	"isBirthday":    "isBirthday(customer)",
	"isAnniversary": "isAnniversary(customer.signup_at, customer.timezone)",
	"duration":      `duration("3d")`,
}

// explainer rewrites one compile error of src reported at rune offset at.
type explainer struct {
	src   string
	at    int
	root  ast.Node
	nodes []ast.Node // every node, children before parents
}

var (
	mismatchedTypesRe = regexp.MustCompile(`^invalid operation: (\S+) \(mismatched types (.+) and (.+)\)$`)
	mismatchedTypeRe  = regexp.MustCompile(`^invalid operation: (\S+) \(mismatched type (.+)\)$`)
	argumentTypeRe    = regexp.MustCompile(`^cannot use (.+) as argument \(type (.+)\) to call (\w+)\s*$`)
	argumentCountRe   = regexp.MustCompile(`^(not enough|too many) arguments to call (\w+)$`)
	inArrayRe         = regexp.MustCompile(`^cannot use (.+) as type (.+) in (array|map key)$`)
	noFieldOfTypeRe   = regexp.MustCompile(`^type (.+) has no field (\w+)$`)
	conditionTypeRe   = regexp.MustCompile(`^non-bool expression \(type (.+)\) used as condition$`)
	indexTypeRe       = regexp.MustCompile(`^array elements can only be selected using an integer \(got (.+)\)$`)
	argumentForRe     = regexp.MustCompile(`^invalid argument for (\w+) \(type (.+)\)$`)
	unexpectedTokenRe = regexp.MustCompile(`^unexpected token (\w+)(?:\((".*")\))?$`)
)

// explain returns the marketer's version of expr message msg, or "" to
// keep humanize's. It may set e.Unknown.
func (x *explainer) explain(msg string, e *Error) string {
	if m := unknownNameRe.FindStringSubmatch(msg); m != nil {
		e.Unknown = m[1]
		return x.unknownName(m[1])
	}
	if msg == "literal not terminated" {
		return "a text in quotes is not closed; add the closing quote"
	}
	if m := unexpectedTokenRe.FindStringSubmatch(msg); m != nil {
		value, _ := strconv.Unquote(m[2]) // the token as Go quotes it
		return unexpected(m[1], value)
	}
	if msg == "unexpected end of expression" {
		return "the rule ends too early: something is missing at the end"
	}
	if !x.parse() {
		return ""
	}
	if m := mismatchedTypesRe.FindStringSubmatch(msg); m != nil {
		return x.binary(m[1], m[2], m[3])
	}
	if m := mismatchedTypeRe.FindStringSubmatch(msg); m != nil {
		return x.unary(m[1], m[2])
	}
	if m := argumentTypeRe.FindStringSubmatch(msg); m != nil {
		return x.argument(m[3], m[1], m[2])
	}
	if m := argumentCountRe.FindStringSubmatch(msg); m != nil {
		return argumentCount(m[2], m[1] == "too many")
	}
	if m := inArrayRe.FindStringSubmatch(msg); m != nil {
		return x.inCollection(m[1], m[2], m[3] == "map key")
	}
	if m := noFieldOfTypeRe.FindStringSubmatch(msg); m != nil && goTypeNames[m[1]] == "" {
		return x.noField(m[1], m[2])
	}
	if m := conditionTypeRe.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("the condition before ? must be true or false, but %s", x.is(x.nodeAt(anyNode), m[1]))
	}
	if m := indexTypeRe.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("an entry of a list is picked by its position, a whole number like [0], not %s", typeNoun(m[1]))
	}
	if m := argumentForRe.FindStringSubmatch(msg); m != nil && m[1] == "len" {
		return "len() counts the entries of a list or a map, or the letters of a text, not " + typeNoun(m[2])
	}
	return ""
}

// parse reads the rule's syntax tree; expr reports positions in it.
func (x *explainer) parse() bool {
	if x.root != nil {
		return true
	}
	tree, err := parser.Parse(x.src)
	if err != nil {
		return false
	}
	x.root = tree.Node
	ast.Walk(&x.root, collector{&x.nodes})
	return true
}

type collector struct{ nodes *[]ast.Node }

func (c collector) Visit(n *ast.Node) { *c.nodes = append(*c.nodes, *n) }

func anyNode(ast.Node) bool { return true }

// nodeAt is the node at the reported position that match accepts, or nil.
// Several nodes can share an offset (customer.tier and its property tier);
// the outermost, which comes last in x.nodes, is taken.
func (x *explainer) nodeAt(match func(ast.Node) bool) ast.Node {
	for i := len(x.nodes) - 1; i >= 0; i-- {
		if n := x.nodes[i]; n.Location().From == x.at && match(n) {
			return n
		}
	}
	return nil
}

// literal reports whether n is written out in the rule (3, "gold", true,
// -5) rather than read from the customer or the event.
func literal(n ast.Node) bool {
	switch v := n.(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NilNode, *ast.ConstantNode:
		return true
	case *ast.UnaryNode:
		return (v.Operator == "-" || v.Operator == "+") && literal(v.Node)
	}
	return false
}

// text is n as the rule writes it, or "" when it is too long to quote.
// Literals are taken from the source, so 'gold' stays in single quotes.
func (x *explainer) text(n ast.Node) string {
	if n == nil {
		return ""
	}
	s := n.String()
	switch v := n.(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		if loc := n.Location(); loc.From >= 0 && loc.To > loc.From {
			if runes := []rune(x.src); loc.To <= len(runes) {
				s = string(runes[loc.From:loc.To])
			}
		}
	case *ast.UnaryNode:
		if literal(v) {
			s = v.Operator + x.text(v.Node)
		}
	}
	if utf8.RuneCountInString(s) > 60 {
		return ""
	}
	return s
}

// is describes n as "customer.tier is text", or "it is text" when n cannot
// be quoted.
func (x *explainer) is(n ast.Node, typ string) string {
	if t := x.text(n); t != "" {
		return t + " is " + typeNoun(typ)
	}
	return "it is " + typeNoun(typ)
}

// operand is one side of a binary operation.
type operand struct {
	node ast.Node
	text string
	typ  string
}

func (o operand) literal() bool { return o.node != nil && literal(o.node) }

func (o operand) class() string { return classOf(o.typ) }

// named is "customer.tier is text", or "the left side is text".
func (o operand) named(side string) string {
	if o.text != "" {
		return o.text + " is " + typeNoun(o.typ)
	}
	return "the " + side + " side is " + typeNoun(o.typ)
}

// stringValue is the value of a text literal.
func (o operand) stringValue() (string, bool) {
	s, ok := o.node.(*ast.StringNode)
	if !ok {
		return "", false
	}
	return s.Value, true
}

var comparisons = map[string]bool{"==": true, "!=": true, "<": true, ">": true, "<=": true, ">=": true}

// binary explains "invalid operation: op (mismatched types lt and rt)".
func (x *explainer) binary(op, lt, rt string) string {
	var l, r operand
	if n, ok := x.nodeAt(func(n ast.Node) bool { b, ok := n.(*ast.BinaryNode); return ok && b.Operator == op }).(*ast.BinaryNode); ok {
		l = operand{n.Left, x.text(n.Left), lt}
		r = operand{n.Right, x.text(n.Right), rt}
	} else {
		l, r = operand{typ: lt}, operand{typ: rt}
	}
	pair := fmt.Sprintf("%s and %s", l.named("left"), r.named("right"))
	switch {
	case comparisons[op]:
		if msg := compare(op, l, r); msg != "" {
			return msg
		}
		return fmt.Sprintf("%s; %s compares two values of the same kind", pair, op)
	case op == "and" || op == "or" || op == "&&" || op == "||":
		var bad []string
		for _, o := range []struct {
			operand
			side string
		}{{l, "left"}, {r, "right"}} {
			if c := o.class(); c != classBool && c != classAny {
				bad = append(bad, o.named(o.side))
			}
		}
		return fmt.Sprintf("%s joins two conditions (true or false), but %s", op, strings.Join(bad, " and "))
	case op == "contains" || op == "startsWith" || op == "endsWith" || op == "matches":
		return textOperator(op, l, r)
	case op == "in":
		if c := r.class(); c != classList && c != classMap && c != classAny {
			msg := fmt.Sprintf("in looks for an entry of a list or a map, but %s", r.named("right"))
			if c == classText && l.class() == classText && l.text != "" && r.text != "" {
				msg += fmt.Sprintf("; to look inside a text, write %s contains %s", r.text, l.text)
			}
			return msg
		}
	case op == "+" || op == "-":
		if msg := timeArithmetic(op, l, r); msg != "" {
			return msg
		}
		if op == "+" && (l.class() == classText || r.class() == classText) {
			return fmt.Sprintf("%s; + adds two numbers or joins two texts, not one of each", pair)
		}
		return fmt.Sprintf("%s; %s works on two numbers", pair, op)
	case op == "*" || op == "/" || op == "%" || op == "**" || op == "^":
		return fmt.Sprintf("%s; %s works on two numbers", pair, op)
	}
	return fmt.Sprintf("%s; %s cannot combine them", pair, op)
}

// decimalRe is a number as a rule writes it, for a number written in quotes.
var decimalRe = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// compare explains a comparison of a field with a literal of another kind,
// showing the comparison written with a value of the field's kind.
func compare(op string, l, r operand) string {
	field, other, left := l, r, true
	switch {
	case !l.literal() && l.text != "" && r.literal():
	case l.literal() && !r.literal() && r.text != "":
		field, other, left = r, l, false
	default:
		return ""
	}
	like := func(value string) string {
		if left {
			return fmt.Sprintf("%s %s %s", field.text, op, value)
		}
		return fmt.Sprintf("%s %s %s", value, op, field.text)
	}
	otherText, isText := other.stringValue()
	switch c := field.class(); c {
	case classText:
		example, ok := textExamples[field.text]
		if !ok {
			example = other.text
			if other.class() == classNil || example == "" {
				example = "gold"
			}
		}
		return fmt.Sprintf("%s is text; compare it with text, like %s", field.text, like(strconv.Quote(example)))
	case classNumber:
		example := "100"
		if n := strings.TrimSpace(otherText); isText && decimalRe.MatchString(n) {
			example = n
		}
		return fmt.Sprintf("%s is a number; compare it with a number, like %s", field.text, like(example))
	case classBool:
		example := "true"
		if isText && slices.Contains([]string{"no", "false", "n", "off"}, strings.ToLower(strings.TrimSpace(otherText))) {
			example = "false"
		} else if other.text == "0" {
			example = "false"
		}
		return fmt.Sprintf("%s is a yes/no value; compare it with true or false, like %s", field.text, like(example))
	case classTime:
		example := `date("2026-01-01")`
		switch {
		case isText && isDate(otherText):
			example = fmt.Sprintf("date(%q)", otherText)
		case isText && isDuration(otherText):
			example = fmt.Sprintf("now - duration(%q)", otherText)
		}
		msg := fmt.Sprintf("%s is a date/time; compare it with a date/time, like %s", field.text, like(example))
		if other.class() == classNumber && left {
			if _, ok := field.node.(*ast.MemberNode); ok {
				msg += fmt.Sprintf(", or count the days with daysSince(%s) %s %s", field.text, op, other.text)
			}
		}
		return msg
	case classDuration:
		example := `duration("3d")`
		switch {
		case isText && isDuration(otherText):
			example = fmt.Sprintf("duration(%q)", otherText)
		case other.class() == classNumber && !strings.HasPrefix(other.text, "-"):
			example = fmt.Sprintf(`duration("%sd")`, other.text)
		}
		return fmt.Sprintf("%s is a duration; compare it with a duration, like %s", field.text, like(example))
	case classList:
		elem := strings.TrimPrefix(field.typ, "[]")
		switch {
		case left && (op == "==" || op == "!=") && (classOf(elem) == other.class() || classOf(elem) == classAny):
			in := "in"
			if op == "!=" {
				in = "not in"
			}
			return fmt.Sprintf("%s is %s; to check for an entry, write %s %s %s", field.text, typeNoun(field.typ), other.text, in, field.text)
		case other.class() == classNumber:
			count := fmt.Sprintf("len(%s)", field.text)
			if left {
				count = fmt.Sprintf("%s %s %s", count, op, other.text)
			} else {
				count = fmt.Sprintf("%s %s %s", other.text, op, count)
			}
			return fmt.Sprintf("%s is %s; to count its entries, write %s", field.text, typeNoun(field.typ), count)
		}
	}
	return ""
}

// timeArithmetic explains a date/time plus or minus something that is not
// a duration (now - "3d").
func timeArithmetic(op string, l, r operand) string {
	if l.class() != classTime || l.text == "" || r.class() == classDuration {
		return ""
	}
	example := `duration("3d")`
	if s, ok := r.stringValue(); ok && isDuration(s) {
		example = fmt.Sprintf("duration(%q)", s)
	} else if r.class() == classNumber && r.literal() && !strings.HasPrefix(r.text, "-") {
		example = fmt.Sprintf(`duration("%sd")`, r.text)
	}
	verb := "subtract"
	if op == "+" {
		verb = "add"
	}
	return fmt.Sprintf("%s is a date/time; %s a duration, like %s %s %s", l.text, verb, l.text, op, example)
}

// textOperator explains contains, startsWith, endsWith or matches on a
// value that is not text.
func textOperator(op string, l, r operand) string {
	var bad []string
	sides := []operand{l, r}
	for i, o := range sides {
		if c := o.class(); c != classText && c != classAny {
			bad = append(bad, o.named([]string{"left", "right"}[i]))
		}
	}
	msg := fmt.Sprintf("%s works on text, but %s", op, strings.Join(bad, " and "))
	if l.class() == classText && l.text != "" && r.literal() && r.class() == classNumber {
		msg += fmt.Sprintf("; put the number in quotes, like %s %s %q", l.text, op, r.text)
	}
	return msg
}

// unary explains "invalid operation: op (mismatched type t)".
func (x *explainer) unary(op, t string) string {
	var subject string
	if n, ok := x.nodeAt(func(n ast.Node) bool { u, ok := n.(*ast.UnaryNode); return ok && u.Operator == op }).(*ast.UnaryNode); ok {
		subject = x.is(n.Node, t)
	} else {
		subject = "it is " + typeNoun(t)
	}
	switch op {
	case "not", "!":
		return fmt.Sprintf("%s turns a condition (true or false) around, but %s", op, subject)
	case "-", "+":
		return fmt.Sprintf("%s needs a number, but %s", op, subject)
	}
	return fmt.Sprintf("%s cannot be used here: %s", op, subject)
}

// argument explains a function argument of the wrong type.
func (x *explainer) argument(fn, got, want string) string {
	wanted := typeNoun(want)
	if classOf(want) == classRecord {
		wanted = goTypeNames[want]
	}
	msg := fmt.Sprintf("%s() takes %s, but %s", fn, wanted, x.is(x.nodeAt(anyNode), got))
	if got == "nil" {
		msg = fmt.Sprintf("%s() takes %s, not nil", fn, wanted)
	}
	if u, ok := usage[fn]; ok {
		msg += "; write it like " + u
	}
	return msg
}

// argumentCount explains a call with too few or too many arguments.
func argumentCount(fn string, tooMany bool) string {
	msg := fmt.Sprintf("%s() is missing a value", fn)
	if tooMany {
		msg = fmt.Sprintf("%s() is given too many values", fn)
	}
	if u, ok := usage[fn]; ok {
		msg += "; write it like " + u
	}
	return msg
}

// inCollection explains "x in list" where x is not of the list's kind.
func (x *explainer) inCollection(got, want string, mapKey bool) string {
	var l, r operand
	if n, ok := x.nodeAt(func(n ast.Node) bool { b, ok := n.(*ast.BinaryNode); return ok && b.Operator == "in" }).(*ast.BinaryNode); ok {
		l = operand{n.Left, x.text(n.Left), got}
		r = operand{n.Right, x.text(n.Right), "[]" + want}
	} else {
		l, r = operand{typ: got}, operand{typ: "[]" + want}
	}
	if mapKey {
		what := "the names of the map"
		if r.text != "" {
			what = "the names in " + r.text
		}
		return fmt.Sprintf("%s, but %s are %s", l.named("left"), what, strings.TrimPrefix(typeNoun(want), "a "))
	}
	msg := fmt.Sprintf("%s, but %s", l.named("left"), r.named("right"))
	if r.text == "" {
		msg = fmt.Sprintf("%s, but the list is %s", l.named("left"), typeNoun("[]"+want))
	}
	if l.literal() && l.class() == classNumber && classOf(want) == classText && r.text != "" {
		msg += fmt.Sprintf("; write %q in %s", l.text, r.text)
	}
	return msg
}

// noField explains a field read on a value that has no fields.
func (x *explainer) noField(t, name string) string {
	n := x.nodeAt(func(n ast.Node) bool {
		m, ok := n.(*ast.MemberNode)
		if !ok {
			return false
		}
		p, ok := m.Property.(*ast.StringNode)
		return ok && p.Value == name
	})
	if m, ok := n.(*ast.MemberNode); ok && x.text(m.Node) != "" {
		return fmt.Sprintf("%s is %s; it has no field %q", x.text(m.Node), typeNoun(t), name)
	}
	return fmt.Sprintf("%s has no field %q", typeNoun(t), name)
}

// unknownName explains a name the rule environment does not have.
func (x *explainer) unknownName(name string) string {
	if !x.parse() {
		return fmt.Sprintf("there is no %q in rules%s", name, DidYouMean(name, exprFields("rules.Env")))
	}
	ident := x.nodeAt(func(n ast.Node) bool { id, ok := n.(*ast.IdentifierNode); return ok && id.Value == name })
	for _, n := range x.nodes {
		if c, ok := n.(*ast.CallNode); ok && ident != nil && c.Callee == ident {
			return fmt.Sprintf("there is no function %q%s", name, DidYouMean(name, functionNames()))
		}
	}
	msg := fmt.Sprintf("there is no %q in rules", name)
	if s := DidYouMean(name, exprFields("rules.Env")); s != "" {
		return msg + s
	}
	for _, n := range x.nodes {
		b, ok := n.(*ast.BinaryNode)
		if !ok || ident == nil || (b.Left != ident && b.Right != ident) || !(comparisons[b.Operator] || b.Operator == "in") {
			continue
		}
		other := b.Right
		if other == ident {
			other = b.Left
		}
		if literal(other) && !isStringNode(other) {
			continue // foo > 3 is not a text that lost its quotes
		}
		quoted := fmt.Sprintf("%q", name)
		written := strings.Replace(b.String(), name, quoted, 1)
		if b.Right == ident && b.Operator != "in" {
			written = fmt.Sprintf("%s %s %s", b.Left.String(), b.Operator, quoted)
		}
		if utf8.RuneCountInString(written) > 80 {
			written = quoted
		}
		return fmt.Sprintf("%s; to compare with the text %s, put it in quotes: %s", msg, name, written)
	}
	return msg + "; a rule reads customer, event, coupon and now"
}

func isStringNode(n ast.Node) bool { _, ok := n.(*ast.StringNode); return ok }

// functionNames are the functions a rule can call, for suggestions.
func functionNames() []string {
	names := []string{"keys", "values", "toPairs", "repeat", "join", "replace", "string"}
	for name := range usage {
		names = append(names, name)
	}
	for _, name := range builtin.Names {
		if _, off := disabledBuiltins[name]; !off && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// unexpected explains a syntax error at a token of kind and value.
func unexpected(kind, value string) string {
	switch {
	case kind == "EOF":
		return "the rule ends too early: something is missing at the end"
	case kind == "Operator" && value == "=":
		return "a single = does not compare; write == to compare two values"
	case kind == "Identifier" && (value == "AND" || value == "OR" || value == "NOT"):
		return fmt.Sprintf("write %s in lowercase: and, or, not (or &&, ||, !)", value)
	case kind == "Identifier" && (value == "is" || value == "equals"):
		return fmt.Sprintf("%q does not fit here; to compare two values, write ==", value)
	case value != "":
		return fmt.Sprintf("%q does not fit here", value)
	}
	return "the rule does not fit together here"
}

// kindMismatch explains a rule whose result is not of the kind its place
// needs: "expected bool, but got string" from expr.AsBool.
func kindMismatch(src, msg string, kind Kind) string {
	m := expectedKindRe.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	x := explainer{src: src}
	var subject string
	if x.parse() && !literal(x.root) && x.text(x.root) != "" {
		subject = x.text(x.root) + " is " + typeNoun(m[2])
	} else {
		subject = "it gives " + typeNoun(m[2])
	}
	if m[1] == "bool" && kind == Bool {
		out := "the rule must be a condition (true or false), but " + subject
		if t := x.text(x.root); t != "" && !literal(x.root) {
			switch classOf(m[2]) {
			case classText:
				example, ok := textExamples[t]
				if !ok {
					example = "gold"
				}
				out += fmt.Sprintf("; compare it, like %s == %q", t, example)
			case classNumber:
				out += fmt.Sprintf("; compare it, like %s > 0", t)
			case classList:
				out += fmt.Sprintf("; check it, like len(%s) > 0", t)
			}
		}
		return out
	}
	if kind == Number {
		out := "the rule must give a number, but " + subject
		if classOf(m[2]) == classTime && x.text(x.root) != "" {
			out += fmt.Sprintf("; count the days with daysSince(%s)", x.text(x.root))
		}
		return out
	}
	return ""
}

var expectedKindRe = regexp.MustCompile(`^expected (bool|float64), but got (.+)$`)

// isDate reports whether s is a date as date() reads it.
func isDate(s string) bool {
	for _, layout := range []string{"2006-01-02", "2006-01-02 15:04:05", time.RFC3339} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

// isDuration reports whether s is a duration as duration() reads it.
func isDuration(s string) bool {
	_, err := ParseDuration(s)
	return err == nil
}
