package rules_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/builtin"

	"github.com/rapport-crm/rapport/rules"
)

// Rules are evaluated inside workflow code: a replay must get the answer
// the original run got. These tests evaluate every rule built-in that can
// meet a map many times, on maps rebuilt each time, and require one answer.

// runs is how often each rule is evaluated. With the several keys of the
// maps below, a rule that depends on Go's map order gives more than one
// answer in 200 runs with overwhelming probability (issue #10: 76 true, 124
// false); TestHarnessCatchesMapOrder checks that it does.
const runs = 200

// Builtin classes: every expr built-in is one of these for rules.
const (
	// orderFree: never walks a map, or its answer does not depend on the
	// order of the walk.
	orderFree = "allowed, deterministic"
	// sortedByKey: expr's version lists a map in Go's random order; rules
	// get a replacement that lists it in key order.
	sortedByKey = "made deterministic"
	// disabled: refused at compile time (for determinism or safety).
	disabled = "disabled"
)

// builtinClasses classifies every expr built-in. An expr upgrade that adds
// a built-in fails TestEveryExprBuiltinIsClassified until it is added here:
// read its code in expr's builtin/builtin.go (and, for a list built-in, the
// compiler and vm) for a walk over a map (range, MapKeys, MapRange).
var builtinClasses = map[string]string{
	// List built-ins. expr rejects a map at compile time where the types
	// show it (customer.attrs); a map hidden in an attribute fails when an
	// element is read (vm Scope.Item indexes it as a list), so the answer
	// can depend on the map's size, never on its order. They walk lists in
	// list order; sort and sortBy use a deterministic (if unstable) sort.
	"all": orderFree, "none": orderFree, "any": orderFree, "one": orderFree,
	"filter": orderFree, "map": orderFree, "find": orderFree, "findIndex": orderFree,
	"findLast": orderFree, "findLastIndex": orderFree, "count": orderFree, "sum": orderFree,
	"groupBy": orderFree, "sortBy": orderFree, "sort": orderFree, "reverse": orderFree,
	"uniq": orderFree, "concat": orderFree, "flatten": orderFree, "take": orderFree,
	"first": orderFree, "last": orderFree,
	// Aggregates: lists and numbers only; a lone map is returned unchanged.
	"max": orderFree, "min": orderFree, "mean": orderFree, "median": orderFree,
	// Look-ups and sizes.
	"len": orderFree, "get": orderFree, "type": orderFree,
	// Build a map from a list or text; walking it goes through keys/values/toPairs.
	"fromPairs": orderFree, "fromJSON": orderFree,
	// Scalars and texts.
	"abs": orderFree, "ceil": orderFree, "floor": orderFree, "round": orderFree,
	"int": orderFree, "float": orderFree, "string": orderFree, // rules' string() refuses maps
	"trim": orderFree, "trimPrefix": orderFree, "trimSuffix": orderFree,
	"upper": orderFree, "lower": orderFree, "split": orderFree, "splitAfter": orderFree,
	"replace": orderFree, "repeat": orderFree, "join": orderFree,
	"indexOf": orderFree, "lastIndexOf": orderFree, "hasPrefix": orderFree, "hasSuffix": orderFree,
	"toBase64": orderFree, "fromBase64": orderFree,
	"duration": orderFree, "date": orderFree, "timezone": orderFree,
	"bitand": orderFree, "bitor": orderFree, "bitxor": orderFree, "bitnand": orderFree,
	"bitshl": orderFree, "bitshr": orderFree, "bitushr": orderFree, "bitnot": orderFree,

	"keys": sortedByKey, "values": sortedByKey, "toPairs": sortedByKey,

	"now":    disabled, // the wall clock; rules use the journey's now
	"reduce": disabled, // unbounded accumulator
	"toJSON": disabled, // prints whole records
}

func TestEveryExprBuiltinIsClassified(t *testing.T) {
	if len(builtin.Names) == 0 {
		t.Fatal("expr's builtin.Names is empty; the check below would pass vacuously")
	}
	for _, name := range builtin.Names {
		if _, ok := builtinClasses[name]; !ok {
			t.Errorf("expr built-in %s() is not classified for rules: check whether it walks a map and add it to builtinClasses (and, if allowed, to mapRules)", name)
		}
	}
	for name := range builtinClasses {
		if !slices.Contains(builtin.Names, name) {
			t.Errorf("builtinClasses lists %s(), which expr no longer has", name)
		}
	}
}

// mapEnv is a customer and an event with several map entries, each map
// built in a random insertion order so no answer can lean on it. The maps
// look like the store's: JSON numbers are float64.
func mapEnv(rng *rand.Rand) rules.Env {
	shuffled := func(kv map[string]any) map[string]any {
		keys := make([]string, 0, len(kv))
		for k := range kv {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		m := make(map[string]any, len(keys))
		for _, k := range keys {
			m[k] = kv[k]
		}
		return m
	}
	attrs := shuffled(map[string]any{
		"beta":     true,
		"industry": "retail",
		"plan":     "pro",
		"prefs":    shuffled(map[string]any{"sms": true, "email": false, "push": true}),
		"region":   "eu",
		"score":    4.5,
		"seats":    12.0,
		"spend":    shuffled(map[string]any{"jan": 10.0, "feb": 30.0, "mar": 20.0, "apr": 40.0}),
	})
	props := shuffled(map[string]any{"sku": "A-1", "qty": 2.0, "color": "red", "size": "M", "gift": false})
	c := rules.Customer{ID: "c1", Timezone: "Asia/Shanghai", Attrs: attrs}
	ev := rules.Event{Name: "purchase", Props: props}
	return rules.NewEnv(c, ev, time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC))
}

type mapRule struct {
	src  string
	kind rules.Kind
	want string // Format of the value, or "error: " and the message
}

// mapRules apply every built-in a rule may use to customer.attrs and
// event.props (sorted keys: beta industry plan prefs region score seats
// spend; color gift qty size sku; spend: apr 40, feb 30, jan 10, mar 20).
// Each answer exposes order where the built-in has one (a first match, a
// joined list, an index), so a walk in map order would show.
var mapRules = []mapRule{
	// Made deterministic.
	{`join(keys(customer.attrs), ",")`, rules.Text, "beta,industry,plan,prefs,region,score,seats,spend"},
	{`keys(customer.attrs)[0] == "beta"`, rules.Bool, "true"},
	{`join(keys(event.props), ",")`, rules.Text, "color,gift,qty,size,sku"},
	{`join(event.props | keys(), ",")`, rules.Text, "color,gift,qty,size,sku"},
	{`join(map(values(event.props), string(#)), ",")`, rules.Text, "red,false,2,M,A-1"},
	{`values(customer.attrs.spend)[0]`, rules.Number, "40"},
	{`join(map(toPairs(event.props), #[0] + "=" + string(#[1])), "&")`, rules.Text, "color=red&gift=false&qty=2&size=M&sku=A-1"},
	{`toPairs(customer.attrs.spend)[0][0]`, rules.Text, "apr"},
	{`join(keys(customer.attrs.prefs), ",")`, rules.Text, "email,push,sms"},

	// List built-ins over a map's keys or values.
	{`all(keys(customer.attrs), len(#) >= 4)`, rules.Bool, "true"},
	{`none(values(customer.attrs.spend), # > 100)`, rules.Bool, "true"},
	{`any(keys(event.props), # == "sku")`, rules.Bool, "true"},
	{`one(values(event.props), # == "red")`, rules.Bool, "true"},
	{`join(filter(keys(customer.attrs), hasPrefix(#, "s")), ",")`, rules.Text, "score,seats,spend"},
	{`join(map(keys(customer.attrs.spend), upper(#)), ",")`, rules.Text, "APR,FEB,JAN,MAR"},
	{`find(keys(customer.attrs), hasPrefix(#, "p"))`, rules.Text, "plan"},
	{`findIndex(values(customer.attrs.spend), # < 25)`, rules.Number, "2"},
	{`findLast(keys(customer.attrs), hasPrefix(#, "p"))`, rules.Text, "prefs"},
	{`findLastIndex(values(customer.attrs.spend), # > 25)`, rules.Number, "1"},
	{`count(values(customer.attrs.prefs), #)`, rules.Number, "2"},
	{`sum(values(customer.attrs.spend))`, rules.Number, "100"},
	{`join(map(keys(groupBy(values(event.props), type(#))), string(#)), ",")`, rules.Text, "bool,float,string"},
	{`join(groupBy(keys(customer.attrs), len(#))[4], ",")`, rules.Text, "beta,plan"},
	{`join(groupBy(keys(customer.attrs), len(#))[5], ",")`, rules.Text, "prefs,score,seats,spend"},
	{`join(sortBy(keys(customer.attrs.spend), customer.attrs.spend[#]), ",")`, rules.Text, "jan,mar,feb,apr"},
	{`sortBy(toPairs(customer.attrs.spend), #[1], "desc")[0][0]`, rules.Text, "apr"},
	{`join(map(sort(values(customer.attrs.spend), "desc"), string(#)), ",")`, rules.Text, "40,30,20,10"},
	{`join(reverse(keys(event.props)), ",")`, rules.Text, "sku,size,qty,gift,color"},
	{`join(map(uniq(values(customer.attrs.prefs)), string(#)), ",")`, rules.Text, "false,true"},
	{`join(concat(keys(event.props), keys(customer.attrs.spend)), ",")`, rules.Text, "color,gift,qty,size,sku,apr,feb,jan,mar"},
	{`join(map(flatten(toPairs(customer.attrs.spend)), string(#)), ",")`, rules.Text, "apr,40,feb,30,jan,10,mar,20"},
	{`join(take(keys(event.props), 2), ",")`, rules.Text, "color,gift"},
	{`first(keys(customer.attrs))`, rules.Text, "beta"},
	{`last(keys(customer.attrs))`, rules.Text, "spend"},

	// Aggregates.
	{`max(values(customer.attrs.spend))`, rules.Number, "40"},
	{`min(values(customer.attrs.spend))`, rules.Number, "10"},
	{`mean(values(customer.attrs.spend))`, rules.Number, "25"},
	{`median(values(customer.attrs.spend))`, rules.Number, "25"},

	// Look-ups, sizes and maps built by a rule.
	{`len(customer.attrs) + len(event.props)`, rules.Number, "13"},
	{`get(customer.attrs, keys(customer.attrs)[2])`, rules.Text, "pro"},
	{`type(customer.attrs) + "/" + type(event.props)`, rules.Text, "map/map"},
	{`"spend" in customer.attrs && customer.attrs.spend.apr == 40`, rules.Bool, "true"},
	{`customer.attrs.prefs == {"sms": true, "email": false, "push": true}`, rules.Bool, "true"},
	{`join(keys(fromPairs(toPairs(event.props))), ",")`, rules.Text, "color,gift,qty,size,sku"},
	{`join(keys(fromPairs(map(keys(event.props), [upper(#), #]))), ",")`, rules.Text, "COLOR,GIFT,QTY,SIZE,SKU"},
	{`join(keys(fromJSON('{"z": 1, "y": 2, "x": 3, "w": 4}')), ",")`, rules.Text, "w,x,y,z"},

	// Scalars and texts taken from a map.
	{`abs(values(customer.attrs.spend)[2] - 50)`, rules.Number, "40"},
	{`ceil(customer.attrs.score) + floor(customer.attrs.score) + round(customer.attrs.score)`, rules.Number, "14"},
	{`int(customer.attrs.seats) + float(event.props.qty)`, rules.Number, "14"},
	{`string(first(values(event.props)))`, rules.Text, "red"},
	{`trim(" " + keys(event.props)[0] + " ")`, rules.Text, "color"},
	{`trimPrefix(keys(event.props)[4], "s") + trimSuffix(keys(event.props)[0], "or")`, rules.Text, "kucol"},
	{`upper(keys(event.props)[1]) + lower(values(event.props)[3])`, rules.Text, "GIFTm"},
	{`join(split(join(keys(event.props), "/"), "/", 2), "|")`, rules.Text, "color|gift/qty/size/sku"},
	{`splitAfter(join(keys(event.props), ","), ",")[1]`, rules.Text, "gift,"},
	{`replace(join(keys(event.props), ","), ",", ";")`, rules.Text, "color;gift;qty;size;sku"},
	{`repeat(keys(event.props)[2], 2)`, rules.Text, "qtyqty"},
	{`indexOf(join(keys(event.props), ","), "qty")`, rules.Number, "11"},
	{`lastIndexOf(join(keys(event.props), ","), "s")`, rules.Number, "20"},
	{`hasPrefix(join(keys(customer.attrs), ","), "beta,") && hasSuffix(join(keys(customer.attrs), ","), ",spend")`, rules.Bool, "true"},
	{`fromBase64(toBase64(join(keys(event.props), ",")))`, rules.Text, "color,gift,qty,size,sku"},
	{`duration(string(len(customer.attrs)) + "d") == duration("8d")`, rules.Bool, "true"},
	{`date("2026-01-0" + string(len(event.props))) == date("2026-01-05")`, rules.Bool, "true"},
	{`string(timezone(customer.timezone)) + "/" + keys(event.props)[0]`, rules.Text, "Asia/Shanghai/color"},
	{`bitand(len(customer.attrs), 12) + bitor(len(event.props), 2) + bitxor(len(event.props), 1)`, rules.Number, "19"},
	{`bitnand(len(customer.attrs), 8) + bitshl(len(event.props), 2) + bitshr(len(customer.attrs), 1)`, rules.Number, "24"},
	{`bitushr(len(customer.attrs), 2) + bitnot(len(event.props))`, rules.Number, "-4"},

	// List built-ins handed a map hidden in an attribute: expr cannot see
	// the type, so it is caught at run time; either the map's size decides
	// (the predicate never reads an element) or reading an element fails.
	{`all(customer.attrs.spend, true)`, rules.Bool, "true"},
	{`count(customer.attrs.spend, true)`, rules.Number, "4"},
	{`len(map(customer.attrs.spend, 1))`, rules.Number, "4"},
	{`any(customer.attrs.spend, # > 0)`, rules.Bool, "error: 1:27: a list function was given a map: use keys(…), values(…) or toPairs(…), which list a map's entries in key order"},
	{`len(filter(customer.attrs.spend, true))`, rules.Number, "4"},
	{`len(filter(customer.attrs.spend, # > 0))`, rules.Number, "error: 1:34: a list function was given a map: use keys(…), values(…) or toPairs(…), which list a map's entries in key order"},
	{`sum(customer.attrs.spend)`, rules.Number, "error: 1:1: a list function was given a map: use keys(…), values(…) or toPairs(…), which list a map's entries in key order"},
	{`len(sort(customer.attrs.spend))`, rules.Number, "0"},
	{`max(customer.attrs.prefs)`, rules.Text, "map[email:false push:true sms:true]"},
}

// answers evaluates eval runs times and returns the distinct answers.
func answers(eval func(run int) string) []string {
	seen := map[string]bool{}
	for i := range runs {
		seen[eval(i)] = true
	}
	distinct := make([]string, 0, len(seen))
	for a := range seen {
		distinct = append(distinct, a)
	}
	slices.Sort(distinct)
	return distinct
}

func TestMapBuiltinsAreDeterministic(t *testing.T) {
	for _, tt := range mapRules {
		t.Run(tt.src, func(t *testing.T) {
			r, err := rules.Compile(tt.src, tt.kind)
			if err != nil {
				t.Fatalf("Compile(%s, %v): %v", tt.src, tt.kind, err)
			}
			rng := rand.New(rand.NewPCG(10, 4))
			var ev rules.Evaluator
			got := answers(func(int) string {
				env := mapEnv(rng)
				v, err := ev.Value(r, &env)
				if err != nil {
					return "error: " + err.Error()
				}
				return rules.Format(v)
			})
			if len(got) != 1 {
				t.Fatalf("%d different answers in %d runs: %q", len(got), runs, got)
			}
			if got[0] != tt.want {
				t.Errorf("= %q, want %q", got[0], tt.want)
			}
		})
	}
}

// TestMapRulesCoverEveryAllowedBuiltin keeps mapRules complete: every
// built-in a rule may call is exercised on a map.
func TestMapRulesCoverEveryAllowedBuiltin(t *testing.T) {
	for name, class := range builtinClasses {
		if class == disabled {
			continue
		}
		call := regexp.MustCompile(`(^|[^\w.])` + name + `\(`)
		if !slices.ContainsFunc(mapRules, func(r mapRule) bool { return call.MatchString(r.src) }) {
			t.Errorf("no rule in mapRules calls %s()", name)
		}
	}
}

// TestHarnessCatchesMapOrder shows that the test above would catch the bug
// of issue #10: expr's own keys() on the same maps gives several answers.
func TestHarnessCatchesMapOrder(t *testing.T) {
	prog, err := expr.Compile(`join(keys(customer.attrs), ",")`, expr.Env(rules.Env{}))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(10, 4))
	got := answers(func(int) string {
		out, err := expr.Run(prog, mapEnv(rng))
		if err != nil {
			t.Fatal(err)
		}
		return out.(string)
	})
	if len(got) < 2 {
		t.Errorf("expr's keys() gave one answer in %d runs (%q); the determinism harness cannot tell a map walk from a sorted one", runs, got)
	}
}

// TestSortedMapBuiltins pins the exact answers: keys in key order, values
// and pairs in the order of their keys.
func TestSortedMapBuiltins(t *testing.T) {
	c := rules.Customer{Attrs: map[string]any{"c": 3, "a": 1, "b": 2}}
	for _, src := range []string{
		`keys(customer.attrs) == ["a", "b", "c"]`,
		`values(customer.attrs) == [1, 2, 3]`,
		`map(toPairs(customer.attrs), #[0]) == ["a", "b", "c"] && map(toPairs(customer.attrs), #[1]) == [1, 2, 3]`,
		`len(toPairs(customer.attrs)) == 3 && all(toPairs(customer.attrs), len(#) == 2)`,
		// keys of a text-keyed map are texts to the type checker.
		`keys(customer.attrs)[0] + "!" == "a!"`,
		`keys({"b": 1, "a": 2}) == ["a", "b"] && values({"b": 1, "a": 2}) == [2, 1]`,
		`keys(fromJSON('{"b": {"y": 1, "x": 2}, "a": 0}').b) == ["x", "y"]`,
		`keys(customer.attrs.missing ?? {}) == []`,
		`keys(event.props) == [] && values(event.props) == [] && len(toPairs(event.props)) == 0`,
		// Non-text keys (groupBy, fromPairs): nil, yes/no, numbers, texts.
		`keys(groupBy(["x", 3, true, nil, 1.5, 2], #)) == [nil, true, 1.5, 2, 3, "x"]`,
		`values(groupBy([3, 1, 2, 1], #)) == [[1, 1], [2], [3]]`,
		`keys(fromPairs([[2, "b"], [1, "a"], ["0", "z"]])) == [1, 2, "0"]`,
	} {
		r, err := rules.Compile(src, rules.Bool)
		if err != nil {
			t.Errorf("Compile(%s): %v", src, err)
			continue
		}
		for range runs {
			got, err := r.Bool(rules.Env{Customer: c})
			if err != nil || !got {
				t.Errorf("%s = %v, %v; want true", src, got, err)
				break
			}
		}
	}
}

// TestSortedMapBuiltinsRefuseUnorderableKeys: keys that cannot be put in
// one order (two NaNs, records) are an error, never an arbitrary order.
func TestSortedMapBuiltinsRefuseUnorderableKeys(t *testing.T) {
	for src, want := range map[string]string{
		`len(keys(groupBy([0/0, 0/0], #)))`:         "keys(): cannot put keys NaN and NaN in order",
		`len(values(groupBy([coupon, coupon], #)))`: "values(): cannot put a key of type coupon in order",
		`len(keys(customer.attrs.missing))`:         "keys() takes a map, not nil",
		`len(toPairs(customer.attrs.plan))`:         "toPairs() takes a map, not text",
	} {
		r, err := rules.Compile(src, rules.Number)
		if err != nil {
			t.Errorf("Compile(%s): %v", src, err)
			continue
		}
		got := answers(func(int) string {
			_, err := r.Number(rules.Env{Customer: rules.Customer{Attrs: map[string]any{"plan": "pro"}}})
			return fmt.Sprint(err)
		})
		if len(got) != 1 || !strings.HasSuffix(got[0], want) {
			t.Errorf("%s: errors %q, want one ending in %q", src, got, want)
		}
	}
}

// TestMapBuiltinCompileErrors: disabled built-ins, and maps handed to list
// built-ins or to keys() of a non-map, are refused when the playbook is
// validated, with a message in the marketer's terms.
func TestMapBuiltinCompileErrors(t *testing.T) {
	tests := []struct {
		src  string
		want string
	}{
		{`toJSON(customer.attrs) != ""`, "1:1: toJSON() is not allowed in rules: it turns whole records into text; name the fields you want"},
		{`reduce(values(customer.attrs), #acc + #, 0) > 1`, "1:1: reduce() is not allowed in rules: its running value has no size bound; use sum(), count(), filter() or map()"},
		{`values(customer.attrs) | reduce(#acc + #) > 1`, "1:26: reduce() is not allowed in rules: its running value has no size bound; use sum(), count(), filter() or map()"},
		{`now() > customer.signup_at`, "1:1: now is a value; write now, not now()"},
		{`all(customer.attrs, # != nil)`, "1:14: all() goes through a list, not a map: use keys(…), values(…) or toPairs(…), which list a map's entries in key order"},
		{`len(map(event.props, #)) > 0`, "1:15: map() goes through a list, not a map: use keys(…), values(…) or toPairs(…), which list a map's entries in key order"},
		{`count(groupBy(customer.tags, #), true) > 0`, "1:7: count() goes through a list, not a map: use keys(…), values(…) or toPairs(…), which list a map's entries in key order"},
		{`len(keys(customer.tags)) > 0`, "1:5: keys() takes a map, such as customer.attrs or event.props, not a list of text"},
		{`len(values(customer)) > 0`, "1:5: values() takes a map, such as customer.attrs or event.props, not customer"},
		{`len(toPairs(customer.attrs, 1)) > 0`, "1:5: toPairs() takes one map, such as customer.attrs, got 2 arguments"},
		{`keys(customer.attrs)[0] > 1`, `1:25: keys(customer.attrs)[0] is text; compare it with text, like keys(customer.attrs)[0] > "1"`},
	}
	for _, tt := range tests {
		_, err := rules.Compile(tt.src, rules.Bool)
		var re *rules.Error
		if !errors.As(err, &re) {
			t.Errorf("Compile(%s) = %v; want a *rules.Error", tt.src, err)
			continue
		}
		if re.Error() != tt.want {
			t.Errorf("Compile(%s):\n got %s\nwant %s", tt.src, re, tt.want)
		}
	}
	// A map entry or method of a disabled name is not a call to it.
	if _, err := rules.Compile(`customer.attrs.reduce == nil && customer.attrs?.toJSON == nil`, rules.Bool); err != nil {
		t.Errorf("attribute named like a disabled built-in: %v", err)
	}
	for name, class := range builtinClasses {
		if class != disabled {
			continue
		}
		_, err := rules.Compile(name+`(customer.attrs)`, rules.Text)
		want := name + "() is not allowed in rules: "
		if name == "now" {
			want = "now is a value; write now, not now()"
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s(…) compiled or gave %v; want it refused as not allowed", name, err)
		}
	}
}
