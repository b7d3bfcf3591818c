package rules

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser/lexer"
	"github.com/expr-lang/expr/vm"
)

// Resource bounds of one rule evaluation. A playbook author must not be able
// to stall or crash a worker with a rule, so besides the size limits checked
// at compile time (MaxSourceLen, MaxNodes) every evaluation runs under two
// runtime bounds:
//
//   - EvalBudget is expr's memory budget: ranges, lists and maps count their
//     elements and every predicate (all, map, filter, count …) counts its
//     iterations against it, so `1..100000000` or nested loops fail cleanly
//     with "memory budget exceeded" instead of allocating without limit.
//   - MaxTextLen bounds every string a rule builds: `+` on strings, repeat,
//     join and replace check the size of their result before allocating it.
//
// Together they bound the memory of one evaluation to about
// EvalBudget × MaxTextLen (80 MB) in the worst case, and ordinary rules are
// nowhere near either limit (a rule over a customer's tags iterates over a
// handful of elements).
const (
	EvalBudget = 20_000
	MaxTextLen = 4096
)

// errTextTooLong is the evaluation error for a string over MaxTextLen.
var errTextTooLong = fmt.Errorf("text longer than %d bytes", MaxTextLen)

// safetyOptions replace the expr built-ins that can multiply a string's size
// with bounded versions and make `+` on two strings a bounded
// concatenation. The built-ins that turn a whole list into one string or
// accumulate without a typed bound (toJSON, reduce) are refused with the
// other disabled ones (disabledBuiltins in determinism.go).
func safetyOptions() []expr.Option {
	return []expr.Option{
		expr.Function("repeat", func(p ...any) (any, error) {
			return boundedRepeat(p[0].(string), p[1].(int))
		}, new(func(string, int) string)),
		expr.Function("join", func(p ...any) (any, error) {
			glue := ""
			if len(p) == 2 {
				glue = p[1].(string)
			}
			return boundedJoin(p[0], glue)
		}, new(func([]string, string) string), new(func([]string) string), new(func([]any, string) string), new(func([]any) string)),
		expr.Function("replace", func(p ...any) (any, error) {
			return boundedReplace(p[0].(string), p[1].(string), p[2].(string))
		}, new(func(string, string, string) string)),
		expr.Function("string", func(p ...any) (any, error) {
			return boundedString(p[0])
		}, new(func(any) string)),
		expr.Function("concatText", func(p ...any) (any, error) {
			a, b := p[0].(string), p[1].(string)
			if len(a)+len(b) > MaxTextLen {
				return nil, errTextTooLong
			}
			return a + b, nil
		}, new(func(string, string) string)),
		expr.Operator("+", "concatText"),
	}
}

func boundedRepeat(s string, n int) (string, error) {
	if n < 0 {
		return "", fmt.Errorf("repeat: count %d is negative", n)
	}
	if n > 0 && len(s) > MaxTextLen/n {
		return "", errTextTooLong
	}
	return strings.Repeat(s, n), nil
}

func boundedJoin(list any, glue string) (string, error) {
	var parts []string
	switch l := list.(type) {
	case []string:
		parts = l
	case []any:
		parts = make([]string, 0, len(l))
		for _, v := range l {
			s, ok := v.(string)
			if !ok {
				return "", fmt.Errorf("join: element of type %T is not text", v)
			}
			parts = append(parts, s)
		}
	default:
		return "", fmt.Errorf("join: want a list of text, got %T", list)
	}
	size := len(glue) * max(len(parts)-1, 0)
	for _, p := range parts {
		if size += len(p); size > MaxTextLen {
			return "", errTextTooLong
		}
	}
	if size > MaxTextLen {
		return "", errTextTooLong
	}
	return strings.Join(parts, glue), nil
}

func boundedReplace(s, old, repl string) (string, error) {
	n := strings.Count(s, old) // for old == "": runes + 1
	if old == "" {
		n = utf8.RuneCountInString(s) + 1
	}
	if grow := len(repl) - len(old); grow > 0 && n > 0 && (MaxTextLen-len(s))/n < grow {
		return "", errTextTooLong
	}
	return strings.ReplaceAll(s, old, repl), nil
}

// boundedString is expr's string() for scalars. Lists and maps are refused:
// printing one can multiply its size (every element may be the same long
// text) and would put whole records in a message.
func boundedString(v any) (string, error) {
	if v == nil {
		return "nil", nil
	}
	switch reflect.TypeOf(v).Kind() {
	case reflect.Slice, reflect.Array, reflect.Map, reflect.Struct:
		if _, ok := v.(time.Time); !ok {
			return "", fmt.Errorf("string() of a %T is not allowed in a rule", v)
		}
	}
	s := fmt.Sprint(v)
	if len(s) > MaxTextLen {
		return "", errTextTooLong
	}
	return s, nil
}

// run evaluates a program on the evaluator's VM under EvalBudget.
func (ev *Evaluator) run(p *vm.Program, env *Env) (any, error) {
	ev.vm.MemoryBudget = EvalBudget
	out, err := ev.vm.Run(p, env)
	if err != nil {
		e := toError(err)
		missingValue(p, env, err, e)
		return nil, e
	}
	return out, nil
}

// checkFinite rejects NaN and ±Inf results of Number rules.
func checkFinite(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("the value is %v, not a finite number (a division by zero?)", f)}
	}
	return nil
}

// printable reports why a Text placeholder's static type cannot be printed
// in a message, or "" when it can. Maps, lists and functions have no
// message form; whole records (customer, event, coupon) would leak every
// field, email and phone included, into the text. src is the placeholder,
// quoted in the advice when it is short.
func printable(t reflect.Type, src string) string {
	if t == nil {
		return ""
	}
	name := strings.TrimSpace(src)
	if utf8.RuneCountInString(name) > 40 || strings.ContainsAny(name, "\n") {
		name = ""
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if t == reflect.TypeOf([]byte(nil)) {
			return ""
		}
		msg := fmt.Sprintf("cannot print %s in a message", friendlyType(t))
		if name == "" {
			return msg + "; print one of its entries"
		}
		msg += fmt.Sprintf("; print one entry, like %s[0]", name)
		if e := t.Elem().Kind(); e == reflect.String || e == reflect.Interface {
			msg += fmt.Sprintf(", or join them with join(%s, \", \")", name)
		}
		return msg
	case reflect.Map:
		msg := "cannot print a map in a message; print one of its entries"
		switch name {
		case "customer.attrs":
			return msg + ", like customer.attrs.industry"
		case "event.props":
			return msg + ", like event.props.sku"
		}
		return msg + " by its name"
	case reflect.Func, reflect.Chan:
		return fmt.Sprintf("cannot print %s in a message", friendlyType(t))
	case reflect.Struct, reflect.Pointer:
		if t == reflect.TypeOf(time.Time{}) {
			return ""
		}
		return fmt.Sprintf("cannot print a whole %s in a message: pick a field, e.g. customer.name", friendlyType(t))
	}
	return ""
}

// friendlyType names a type in the marketer's terms: customer, text,
// a number, a list of text, a map.
func friendlyType(t reflect.Type) string {
	if name, ok := goTypeNames[t.String()]; ok {
		return name
	}
	if t.Kind() == reflect.Interface {
		return "a value of any kind"
	}
	return typeNoun(t.String())
}

// sourceError refuses, before compiling, what a rule may not name: `$env`
// (rootEnvError) and calls to disabled built-ins (forbiddenCallError).
func sourceError(src string, d dialect) *Error {
	tokens, err := lexer.Lex(file.NewSource(src))
	if err != nil {
		return nil // the compiler reports it
	}
	if err := rootEnvError(src, tokens); err != nil {
		return err
	}
	return forbiddenCallError(src, tokens, d.disabled)
}

// rootEnvError refuses `$env`, expr's name for the whole environment: it
// would let a rule print or hand around every record at once (the
// customer's email and phone included), which no rule needs. The source is
// checked, not the compiled tree, because the compiler's own patches pass
// the environment to the time built-ins.
func rootEnvError(src string, tokens []lexer.Token) *Error {
	for _, tok := range tokens {
		if tok.Kind == lexer.Identifier && tok.Value == "$env" {
			fe := &file.Error{Location: tok.Location, Message: "$env is not available in rules: name the field you need, e.g. customer.name"}
			return toError(fe.Bind(file.NewSource(src)))
		}
	}
	return nil
}
