package rules

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Kind is the type a rule must produce.
type Kind int

const (
	// Bool rules decide: when, where, audience, exit_when, if.
	Bool Kind = iota
	// Number rules compute amounts: points, coupon values.
	Number
	// Text is a template placeholder: any printable value.
	Text
)

func (k Kind) String() string {
	switch k {
	case Bool:
		return "bool"
	case Number:
		return "number"
	default:
		return "text"
	}
}

// MaxSourceLen bounds a rule's source so a playbook cannot smuggle in a huge
// expression; MaxNodes bounds its syntax tree.
const (
	MaxSourceLen = 4096
	MaxNodes     = 500
)

// Rule is a compiled, type-checked rule. It is safe for concurrent use.
type Rule struct {
	Source  string
	Kind    Kind
	program *vm.Program
}

// Error is a compile or evaluation error with a position inside the rule
// source (1-based line and column, in runes).
type Error struct {
	Line, Column int
	Msg          string
	// Unknown is the name when the rule names something rules do not
	// have (customer.tier == gold: "gold"), so a caller can add advice of
	// its own, such as quoting a fixed text.
	Unknown string
}

func (e *Error) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg) }

// Compile type-checks src against Env and compiles it for kind, under
// today's rules: what validate and deploy accept.
func Compile(src string, kind Kind) (*Rule, error) { return compileIn(src, kind, todaysDialect) }

// CompileStarted compiles a rule of a journey that is already running: one
// that the release which started the journey accepted. It is Compile, but
// a rule that today's rules refuse and an earlier release's accepted
// (startedDialect) compiles as it did then, so that making the rules
// stricter never stops a journey in flight. An error is Compile's.
func CompileStarted(src string, kind Kind) (*Rule, error) {
	r, err := Compile(src, kind)
	if err == nil {
		return r, nil
	}
	if old, oldErr := compileIn(src, kind, startedDialect); oldErr == nil {
		return old, nil
	}
	return nil, err
}

func compileIn(src string, kind Kind, d dialect) (*Rule, error) {
	if len(src) > MaxSourceLen {
		return nil, &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("rule is %d bytes long; the limit is %d", len(src), MaxSourceLen)}
	}
	opts := append(builtinOptions(), expr.MaxNodes(MaxNodes))
	opts = append(opts, safetyOptions()...)
	opts = append(opts, sortedMapOptions(d)...)
	opts = append(opts, disabledOptions(d)...)
	switch kind {
	case Bool:
		opts = append(opts, expr.AsBool())
	case Number:
		opts = append(opts, expr.AsFloat64())
	}
	if err := sourceError(src, d); err != nil {
		return nil, err
	}
	if _, err := MessageRefs(src); err != nil {
		return nil, err
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, compileError(src, err, kind)
	}
	if kind == Text {
		if msg := printable(prog.Node().Type(), src); msg != "" {
			return nil, &Error{Line: 1, Column: 1, Msg: msg}
		}
	}
	return &Rule{Source: src, Kind: kind, program: prog}, nil
}

func toError(err error) *Error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return &Error{Line: max(fe.Line, 1), Column: fe.Column + 1, Msg: humanize(fe.Message)}
	}
	return &Error{Line: 1, Column: 1, Msg: humanize(err.Error())}
}

// goTypeNames are the Go type names expr puts in its messages, and the
// names a marketer knows them by.
var goTypeNames = map[string]string{"rules.Customer": "customer", "rules.Event": "event", "rules.Coupon": "coupon", "rules.Message": "message(…)", "rules.Env": "the rule environment"}

var (
	noFieldRe     = regexp.MustCompile(`^type (rules\.\w+) has no field (\w+)$`)
	unknownNameRe = regexp.MustCompile(`^unknown name (\w+)$`)
	// expr refuses a map given to a list built-in at compile time when the
	// types show it, and fails at run time when the map was hidden in an
	// attribute; both point the marketer at the key-ordered functions.
	listOfMapRe = regexp.MustCompile(`^builtin (\w+) takes only array \(got map\[`)
)

// mapAsListMsg is the run-time error of a list built-in reading an element
// of a map (a map hidden in an attribute, e.g. customer.attrs.prefs).
const mapAsListMsg = "reflect: call of reflect.Value.Index on map Value"

// useSortedMapFunctions is the advice for a map given to a list built-in.
const useSortedMapFunctions = "use keys(…), values(…) or toPairs(…), which list a map's entries in key order"

// humanize rewrites expr's messages in the marketer's terms: the rule
// variables instead of Go type names, and a "did you mean" for typos.
func humanize(msg string) string {
	if m := noFieldRe.FindStringSubmatch(msg); m != nil {
		if name, ok := goTypeNames[m[1]]; ok {
			return fmt.Sprintf("%s has no field %q%s", name, m[2], DidYouMean(m[2], exprFields(m[1])))
		}
	}
	if m := unknownNameRe.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("there is no %q in rules%s", m[1], DidYouMean(m[1], exprFields("rules.Env")))
	}
	if m := listOfMapRe.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s() goes through a list, not a map: %s", m[1], useSortedMapFunctions)
	}
	if msg == mapAsListMsg {
		return "a list function was given a map: " + useSortedMapFunctions
	}
	for goName, name := range goTypeNames {
		msg = strings.ReplaceAll(msg, goName, name)
	}
	return msg
}

// exprFields lists the rule names of a rule type's fields (its expr tags),
// plus the built-in functions for the environment itself.
func exprFields(goName string) []string {
	var t reflect.Type
	switch goName {
	case "rules.Customer":
		t = reflect.TypeOf(Customer{})
	case "rules.Event":
		t = reflect.TypeOf(Event{})
	case "rules.Coupon":
		t = reflect.TypeOf(Coupon{})
	case "rules.Message":
		t = reflect.TypeOf(Message{})
	default:
		t = reflect.TypeOf(Env{})
	}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if name := t.Field(i).Tag.Get("expr"); name != "-" {
			names = append(names, name)
		}
	}
	if t == reflect.TypeOf(Env{}) {
		for name := range nowFunctions {
			names = append(names, name)
		}
		names = append(names, "duration")
	}
	sort.Strings(names)
	return names
}

// Node is the rule's syntax tree as it runs: type-checked, with the
// built-ins' hidden arguments added and constants folded. Package pushdown
// translates it to SQL. The tree is shared: do not modify it.
func (r *Rule) Node() ast.Node { return r.program.Node() }

// Evaluator runs rules. It reuses one VM so that evaluation does not
// allocate a fresh stack per call; an Evaluator is not safe for concurrent
// use, keep one per goroutine.
type Evaluator struct {
	vm vm.VM
}

// Bool evaluates a Bool rule.
func (ev *Evaluator) Bool(r *Rule, env *Env) (bool, error) {
	out, err := ev.run(r.program, env)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

// Number evaluates a Number rule. NaN and ±Inf are errors: they would
// corrupt a points balance or a coupon value.
func (ev *Evaluator) Number(r *Rule, env *Env) (float64, error) {
	out, err := ev.run(r.program, env)
	if err != nil {
		return 0, err
	}
	f, _ := out.(float64)
	if err := checkFinite(f); err != nil {
		return 0, err
	}
	return f, nil
}

// Value evaluates any rule and returns its raw result.
func (ev *Evaluator) Value(r *Rule, env *Env) (any, error) {
	return ev.run(r.program, env)
}

// Bool evaluates r with a fresh evaluator; convenient outside hot paths.
func (r *Rule) Bool(env Env) (bool, error) { var ev Evaluator; return ev.Bool(r, &env) }

// Number evaluates r with a fresh evaluator.
func (r *Rule) Number(env Env) (float64, error) { var ev Evaluator; return ev.Number(r, &env) }

// Value evaluates r with a fresh evaluator.
func (r *Rule) Value(env Env) (any, error) { var ev Evaluator; return ev.Value(r, &env) }

// Format renders a rule result for a message: times in RFC 3339 date form,
// an unset (zero) time as nothing at all, never 0001-01-01; whole floats
// without decimals.
func Format(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprintf("%.2f", x)
	case time.Time:
		if x.IsZero() {
			return ""
		}
		return x.Format("2006-01-02")
	case *time.Time:
		if x == nil {
			return ""
		}
		return Format(*x)
	case time.Duration:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}
