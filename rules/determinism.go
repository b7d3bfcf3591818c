package rules

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser/lexer"
)

// Rules run inside workflow code, so a rule must give the same answer every
// time it is evaluated on the same environment, or a replay would take a
// different branch than the original run. Go walks a map in a random order,
// and expr's keys(), values() and toPairs() return the map's entries in
// that order: keys(customer.attrs)[0] changed from one evaluation to the
// next. They are replaced here by versions that sort by key.
//
// Every other expr built-in was checked for map walks (see
// determinism_test.go, which fails when an expr upgrade adds a built-in
// nobody has classified):
//
//   - len, in, get, first, last, a member access (customer.attrs.plan) and
//     == on maps look entries up or count them, which does not depend on
//     the walk order; fromPairs, groupBy and fromJSON build maps (what a
//     rule can then walk goes through the sorted keys/values/toPairs).
//   - the list built-ins (all, any, filter, map, count, sortBy, sum, sort,
//     min, mean, uniq, concat …) never walk a map: expr refuses a map at
//     compile time when the rule's types show it (customer.attrs), and a
//     map hidden in an attribute (customer.attrs.prefs) fails as soon as
//     an element is read; a predicate that reads none, count(m, true),
//     answers from the map's size alone.
//   - toJSON and string() of a map would print keys in sorted order, but
//     both are refused in rules anyway (disabledBuiltins below; string()
//     in safety.go).

// sortedMapOptions replace expr's keys, values and toPairs with versions
// that answer in key order. keys of a text-keyed map (customer.attrs,
// event.props) is a list of texts, so keys(customer.attrs)[0] == "a" type
// checks as a text comparison.
func sortedMapOptions(d dialect) []expr.Option {
	keysType := func(m reflect.Type) reflect.Type {
		if d.typedKeys && m.Key().Kind() == reflect.String {
			return reflect.TypeFor[[]string]()
		}
		return reflect.TypeFor[[]any]()
	}
	return []expr.Option{
		expr.DisableBuiltin("keys"),
		expr.DisableBuiltin("values"),
		expr.DisableBuiltin("toPairs"),
		mapFunction("keys", sortedKeys, keysType),
		mapFunction("values", sortedValues, nil),
		mapFunction("toPairs", sortedPairs, nil),
	}
}

// mapFunction declares a one-argument function over a map. out gives the
// result type for an argument of map type m (nil: a list of any); an
// argument of unknown type (customer.attrs.prefs) gives a list of any.
func mapFunction(name string, fn func(any) (any, error), out func(m reflect.Type) reflect.Type) expr.Option {
	return func(c *conf.Config) {
		c.Functions[name] = &builtin.Function{
			Name: name,
			Func: func(args ...any) (any, error) {
				if len(args) != 1 {
					return nil, fmt.Errorf("%s() takes one map, got %d arguments", name, len(args))
				}
				return fn(args[0])
			},
			Validate: func(args []reflect.Type) (reflect.Type, error) {
				anyList := reflect.TypeFor[[]any]()
				if len(args) != 1 {
					return anyList, fmt.Errorf("%s() takes one map, such as customer.attrs, got %d arguments", name, len(args))
				}
				t := args[0]
				for t != nil && t.Kind() == reflect.Pointer {
					t = t.Elem()
				}
				switch {
				case t == nil:
					return anyList, fmt.Errorf("%s() takes a map, such as customer.attrs, not nil", name)
				case t.Kind() == reflect.Interface:
					return anyList, nil
				case t.Kind() != reflect.Map:
					return anyList, fmt.Errorf("%s() takes a map, such as customer.attrs or event.props, not %s", name, friendlyType(t))
				case out != nil:
					return out(t), nil
				}
				return anyList, nil
			},
		}
	}
}

// sortedKeys is keys(m) in key order: a []string for a text-keyed map,
// a []any otherwise.
func sortedKeys(m any) (any, error) {
	if sm, ok := m.(map[string]any); ok {
		return stringKeys(sm), nil
	}
	entries, textKeys, err := orderedEntries("keys", m)
	if err != nil {
		return nil, err
	}
	if textKeys {
		out := make([]string, len(entries))
		for i, e := range entries {
			out[i] = e.key.String()
		}
		return out, nil
	}
	out := make([]any, len(entries))
	for i, e := range entries {
		out[i] = e.key.Interface()
	}
	return out, nil
}

// sortedValues is values(m) in the order of the keys.
func sortedValues(m any) (any, error) {
	if sm, ok := m.(map[string]any); ok {
		keys := stringKeys(sm)
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = sm[k]
		}
		return out, nil
	}
	entries, _, err := orderedEntries("values", m)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(entries))
	for i, e := range entries {
		out[i] = e.val.Interface()
	}
	return out, nil
}

// sortedPairs is toPairs(m) in key order, as expr's [key, value] pairs.
func sortedPairs(m any) (any, error) {
	if sm, ok := m.(map[string]any); ok {
		keys := stringKeys(sm)
		out := make([][2]any, len(keys))
		for i, k := range keys {
			out[i] = [2]any{k, sm[k]}
		}
		return out, nil
	}
	entries, _, err := orderedEntries("toPairs", m)
	if err != nil {
		return nil, err
	}
	out := make([][2]any, len(entries))
	for i, e := range entries {
		out[i] = [2]any{e.key.Interface(), e.val.Interface()}
	}
	return out, nil
}

// stringKeys is the sorted keys of the common case, customer.attrs and
// event.props, without reflection.
func stringKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// entry is one map entry, read together with its key: a NaN key cannot be
// looked up again.
type entry struct {
	key, val reflect.Value
	order    mapKey
}

// orderedEntries returns the entries of map m in a total order of their
// keys: nil, then yes/no, numbers, texts and times; textKeys reports a map
// whose key type is text. Keys of different Go types that are equal in
// value (1 and 1.0, which groupBy and fromPairs can produce) are ordered by
// type name. Keys it cannot order (two NaNs, records, lists) are an error
// rather than an arbitrary order.
func orderedEntries(name string, m any) (entries []entry, textKeys bool, err error) {
	if m == nil {
		return nil, false, fmt.Errorf("%s() takes a map, not nil", name)
	}
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Map {
		return nil, false, fmt.Errorf("%s() takes a map, not %s", name, friendlyType(v.Type()))
	}
	entries = make([]entry, 0, v.Len())
	for it := v.MapRange(); it.Next(); {
		k := it.Key()
		order, ok := newMapKey(k)
		if !ok {
			return nil, false, fmt.Errorf("%s(): cannot put a key of type %s in order", name, friendlyType(reflect.TypeOf(k.Interface())))
		}
		entries = append(entries, entry{key: k, val: it.Value(), order: order})
	}
	slices.SortFunc(entries, func(a, b entry) int { return compareMapKeys(a.order, b.order) })
	for i := 1; i < len(entries); i++ {
		if compareMapKeys(entries[i-1].order, entries[i].order) == 0 {
			return nil, false, fmt.Errorf("%s(): cannot put keys %v and %v in order", name, entries[i-1].key, entries[i].key)
		}
	}
	return entries, v.Type().Key().Kind() == reflect.String, nil
}

// mapKey is one map key reduced to the fields it is ordered by.
type mapKey struct {
	rank int     // 0 nil, 1 yes/no, 2 number, 3 text, 4 time
	num  float64 // yes/no as 0 and 1, numbers (NaN first)
	when time.Time
	text string // texts; a time's zone
	typ  string // Go type, for keys equal in value but of different types
	i    int64  // exact value of whole numbers, beyond float64 precision
	u    uint64
}

func newMapKey(k reflect.Value) (mapKey, bool) {
	for k.Kind() == reflect.Interface {
		if k.IsNil() {
			return mapKey{rank: 0}, true
		}
		k = k.Elem()
	}
	key := mapKey{typ: k.Type().String()}
	switch k.Kind() {
	case reflect.Bool:
		key.rank = 1
		if k.Bool() {
			key.num = 1
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		key.rank, key.num, key.i = 2, float64(k.Int()), k.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		key.rank, key.num, key.u = 2, float64(k.Uint()), k.Uint()
	case reflect.Float32, reflect.Float64:
		key.rank, key.num = 2, k.Float()
	case reflect.String:
		key.rank, key.text = 3, k.String()
	case reflect.Struct:
		t, ok := k.Interface().(time.Time)
		if !ok {
			return key, false
		}
		key.rank, key.when, key.text = 4, t, t.Location().String()
	default:
		return key, false
	}
	return key, true
}

// compareMapKeys orders keys field by field; cmp.Compare puts NaN first
// and treats two NaNs as equal, so two NaN keys are a tie (an error).
func compareMapKeys(a, b mapKey) int {
	for _, c := range [...]int{
		cmp.Compare(a.rank, b.rank),
		cmp.Compare(a.num, b.num),
		a.when.Compare(b.when),
		cmp.Compare(a.text, b.text),
		cmp.Compare(a.typ, b.typ),
		cmp.Compare(a.i, b.i),
		cmp.Compare(a.u, b.u),
	} {
		if c != 0 {
			return c
		}
	}
	return 0
}

// disabledBuiltins are the expr built-ins a rule may not call, with the
// reason the marketer is told. expr.DisableBuiltin alone is not enough:
// expr's parser recognises the list built-ins (reduce among them) before
// it looks at the disabled list, so `reduce(…)` compiled and ran. The
// source is therefore also checked for calls to these names
// (forbiddenCallError), which refuses them at compile time with this
// message.
var disabledBuiltins = map[string]string{
	"now":    nowIsAValue,
	"reduce": "its running value has no size bound; use sum(), count(), filter() or map()",
	"toJSON": "it turns whole records into text; name the fields you want",
}

// nowIsAValue is the whole message for now(): expr's now() reads the
// computer's clock, while a rule's now is the journey's time, a value.
const nowIsAValue = "now is a value; write now, not now()"

// dialect is what a compile refuses beyond expr's own type errors: the
// rules of a release. Compile uses today's; CompileStarted falls back to
// startedDialect for rules that a journey already running carries.
type dialect struct {
	disabled  map[string]string // built-ins refused, with the reason
	typedKeys bool              // keys() of a text-keyed map is a list of texts
}

var (
	todaysDialect = dialect{disabled: disabledBuiltins, typedKeys: true}
	// startedDialect accepts what the releases before 2026-11-25 accepted
	// (reduce, toJSON, keys() as a list of any), so that a journey started
	// then still loads its rules. Evaluation is today's: keys, values and
	// toPairs still answer in key order. now() stays refused: it read the
	// computer's clock, never the journey's.
	startedDialect = dialect{disabled: map[string]string{"now": nowIsAValue}}
)

// disabledOptions switch the disabled built-ins off in expr as well.
func disabledOptions(d dialect) []expr.Option {
	names := make([]string, 0, len(d.disabled))
	for name := range d.disabled {
		names = append(names, name)
	}
	slices.Sort(names)
	opts := make([]expr.Option, len(names))
	for i, name := range names {
		opts[i] = expr.DisableBuiltin(name)
	}
	return opts
}

// forbiddenCallError refuses a call to a disabled built-in: name( not
// preceded by a dot, so a method or map entry of the same name is not
// mistaken for it.
func forbiddenCallError(src string, tokens []lexer.Token, disabled map[string]string) *Error {
	for i, tok := range tokens {
		if tok.Kind != lexer.Identifier || i+1 >= len(tokens) || !tokens[i+1].Is(lexer.Bracket, "(") {
			continue
		}
		if i > 0 && (tokens[i-1].Is(lexer.Operator, ".") || tokens[i-1].Is(lexer.Operator, "?.")) {
			continue
		}
		if reason, ok := disabled[tok.Value]; ok {
			msg := fmt.Sprintf("%s() is not allowed in rules: %s", tok.Value, reason)
			if reason == nowIsAValue {
				msg = reason
			}
			fe := &file.Error{Location: tok.Location, Message: msg}
			return toError(fe.Bind(file.NewSource(src)))
		}
	}
	return nil
}
