package rules

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"
)

// Type is the declared type of a custom attribute (customer.attrs.x) or an
// event property (event.props.x), as a workspace file names it.
type Type string

// The declarable types. A date is kept as text in ISO 8601 form
// ("2024-05-01" or an RFC 3339 time): that is what the API stores, so a
// rule reads it as text and turns it into a date/time with date(…).
const (
	TypeText    Type = "text"
	TypeNumber  Type = "number"
	TypeBoolean Type = "boolean"
	TypeDate    Type = "date"
)

// TypeAny is what a rule sees for a property that events declare with
// different types, where the rule does not say which event it reads.
const TypeAny Type = "any"

// Types lists the declarable types, for messages and suggestions.
var Types = []string{string(TypeText), string(TypeNumber), string(TypeBoolean), string(TypeDate)}

// exprType is the type a rule sees for a declared value: what the API
// stores for it (JSON numbers are float64).
func (t Type) exprType() types.Type {
	switch t {
	case TypeNumber:
		return types.Float64
	case TypeBoolean:
		return types.Bool
	case TypeAny:
		return types.Any
	}
	return types.String
}

// Declared is what a workspace declares about the custom data one rule
// reads. A nil map leaves that part as it always was: any name, any value.
type Declared struct {
	// Attrs types customer.attrs.
	Attrs map[string]Type
	// Props types event.props; Event names the event they are the
	// properties of, "" when they are those of every declared event.
	Props map[string]Type
	Event string
	// File is the workspace file, named in messages.
	File string
}

// CheckDeclared type-checks a rule that Compile accepted once more, with
// customer.attrs and event.props typed as d declares them, so a misspelt
// or undeclared name and a comparison of the wrong kind are found before
// the rule runs. It changes nothing about how the rule compiles or runs:
// the program it builds is thrown away. The error is an *Error.
func CheckDeclared(src string, kind Kind, d Declared) error {
	opts := append(builtinOptions(), expr.MaxNodes(MaxNodes))
	opts = append(opts, safetyOptions()...)
	opts = append(opts, sortedMapOptions(todaysDialect)...)
	opts = append(opts, disabledOptions(todaysDialect)...)
	opts = append(opts, expr.Env(d.env()))
	switch kind {
	case Bool:
		opts = append(opts, expr.AsBool())
	case Number:
		opts = append(opts, expr.AsFloat64())
	}
	_, err := expr.Compile(src, opts...)
	if err == nil {
		return nil
	}
	var fe *file.Error
	if errors.As(err, &fe) && unknownFieldRe.MatchString(fe.Message) {
		e := toError(err)
		e.Msg = d.undeclared(src, fe)
		return e
	}
	e := compileError(src, err, kind)
	if d.File != "" {
		e.Msg += fmt.Sprintf(" (types as declared in %s)", d.File)
	}
	return e
}

// env is Env as expr sees it, with attrs and props typed by d.
func (d Declared) env() types.Map {
	env := structMap(reflect.TypeFor[Env](), nil)
	env["customer"] = structMap(reflect.TypeFor[Customer](), map[string]types.Type{"attrs": declaredMap(d.Attrs)})
	env["event"] = structMap(reflect.TypeFor[Event](), map[string]types.Type{"props": declaredMap(d.Props)})
	// Typed as a map of its fields too: expr's checker cannot look up a
	// field of a struct type given inside a types.Map environment.
	env["coupon"] = structMap(reflect.TypeFor[Coupon](), nil)
	return env
}

// structMap is a struct type as a types.Map of its expr fields, with the
// fields in override replaced.
func structMap(t reflect.Type, override map[string]types.Type) types.Map {
	m := types.Map{}
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("expr")
		if o, ok := override[name]; ok {
			m[name] = o
			continue
		}
		m[name] = types.TypeOf(reflect.Zero(t.Field(i).Type).Interface())
	}
	return m
}

// declaredMap is a strict map of the declared names, or any text-keyed map
// when nothing is declared.
func declaredMap(decl map[string]Type) types.Type {
	if decl == nil {
		return types.TypeOf(map[string]any{})
	}
	m := types.Map{}
	for name, t := range decl {
		m[name] = t.exprType()
	}
	return m
}

// undeclared explains expr's "unknown field x" for a declared map.
func (d Declared) undeclared(src string, fe *file.Error) string {
	name := unknownFieldRe.FindStringSubmatch(fe.Message)[1]
	x := explainer{src: src, at: fe.From}
	owner := "customer.attrs"
	if x.parse() {
		if m, ok := x.nodeAt(func(n ast.Node) bool { _, ok := n.(*ast.MemberNode); return ok }).(*ast.MemberNode); ok {
			owner = x.text(m.Node)
		}
	}
	in := ""
	if d.File != "" {
		in = " in " + d.File
	}
	if owner != "event.props" {
		if s := DidYouMean(name, sortedNames(d.Attrs)); s != "" {
			return fmt.Sprintf("customer.attrs.%s is not declared%s%s", name, in, s)
		}
		return fmt.Sprintf("customer.attrs.%s is not declared%s; declare it under attrs: with its type (%s)", name, in, joinOr(Types))
	}
	what := "for any event"
	if d.Event != "" {
		what = "for the event " + d.Event
	}
	if s := DidYouMean(name, sortedNames(d.Props)); s != "" {
		return fmt.Sprintf("event.props.%s is not declared %s%s%s", name, what, in, s)
	}
	return fmt.Sprintf("event.props.%s is not declared %s%s; declare it under the event's props: with its type", name, what, in)
}

func sortedNames(m map[string]Type) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// joinOr lists words as "a, b, c or d".
func joinOr(words []string) string {
	if len(words) < 2 {
		return fmt.Sprint(words)
	}
	out := words[0]
	for _, w := range words[1 : len(words)-1] {
		out += ", " + w
	}
	return out + " or " + words[len(words)-1]
}

// dateLayouts are the forms a declared date may take (those expr's date()
// reads without a layout).
var dateLayouts = []string{"2006-01-02", time.RFC3339, time.RFC3339Nano}

// ParseDeclared reads a value sent for a field declared as t: text as
// text, a number or a numeric text as a number, a boolean, a date as ISO
// 8601 text. The error says what was expected, in a sender's words.
func ParseDeclared(t Type, v any) (any, error) {
	switch t {
	case TypeNumber:
		return declaredNumber(v)
	case TypeBoolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, fmt.Errorf("expected true or false, got %s", describeValue(v))
	case TypeDate:
		if s, ok := v.(string); ok {
			for _, layout := range dateLayouts {
				if _, err := time.Parse(layout, s); err == nil {
					return s, nil
				}
			}
		}
		return nil, fmt.Errorf("expected a date like \"2024-05-01\" or \"2024-05-01T09:00:00Z\", got %s", describeValue(v))
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	return nil, fmt.Errorf("expected text, got %s", describeValue(v))
}

var unknownFieldRe = regexp.MustCompile(`^unknown field (\w+)$`)

// declaredNumber accepts a JSON number or a number sent as text ("120.5"),
// which some sources do with money; it must be finite.
func declaredNumber(v any) (any, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f, nil
		}
	}
	return nil, fmt.Errorf("expected a number, got %s", describeValue(v))
}

// describeValue names a decoded JSON value for an error: a text is quoted
// (shortened), anything else named by its kind.
func describeValue(v any) string {
	if x, ok := v.(string); ok {
		if utf8.RuneCountInString(x) > 40 {
			x = string([]rune(x)[:40]) + "…"
		}
		return strconv.Quote(x)
	}
	return JSONKind(v)
}

// JSONKind names the JSON type of a decoded value for an error message:
// "null", "a string", "a number", "a boolean", "a list" or "an object".
func JSONKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
