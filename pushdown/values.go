package pushdown

import (
	"math"
	"reflect"
	"sort"
	"time"

	"github.com/expr-lang/expr/ast"

	"github.com/rapport-crm/rapport/rules"
)

// kind is what a rule value is to the SQL.
type kind int

const (
	kUnknown kind = iota
	kConst        // a value known before the query: c
	kNum          // a number column or expression, never NULL: sql, num
	kStr          // a text column, never NULL: sql
	kBool         // a boolean: b
	kTime         // a timestamptz column, NULL for an unset (zero) time: col
	kDate         // a date column (the birthday), NULL when unset: col
	kSince        // base - col, a duration (base a constant time): col, base
	kDays         // whole units since col, -1 when unset (daysSince, hoursSince): col, unit
	kJSON         // a jsonb value, NULL when missing (customer.attrs.x): sql
	kTags         // customer.tags: sql
	kExtreme      // max(…) or min(…) of numbers: fn, args
)

// numType is how a kNum compares with a constant.
type numType int

const (
	numFloat numType = iota // double precision: compared as is
	numInt                  // bigint: a fractional bound rounds to the next whole number
	numDec                  // numeric(14,2): compared with the constant as a decimal
)

// value is a rule value as the SQL sees it.
type value struct {
	kind kind
	c    any
	sql  string
	num  numType
	b    cond
	col  string
	base time.Time
	unit time.Duration
	fn   string
	args []value
}

var unknownValue = value{kind: kUnknown}

func constValue(v any) value { return value{kind: kConst, c: v} }

// settings are the metric settings, read once per statement.
const (
	settingMargin     = "(SELECT ltv_margin FROM rapport_metric_settings)"
	settingChurn      = "(SELECT churn_factor FROM rapport_metric_settings)"
	settingDefaultGap = "(SELECT churn_default_gap_days FROM rapport_metric_settings)"
)

// LifetimeValueSQL is customer.lifetime_value as rules see it: revenue ×
// rapport.ltv_margin (migration 00010's rapport_lifetime_value).
const LifetimeValueSQL = "rapport_lifetime_value(c.lifetime_value, " + settingMargin + ")"

// ChurnRiskSQL is customer.churn_risk at the time placeholder at
// (migration 00010's rapport_churn_risk).
func ChurnRiskSQL(at string) string {
	return "rapport_churn_risk(c.order_count, c.last_purchase_at, c.purchase_gap_days, " + at + ", " +
		settingChurn + ", " + settingDefaultGap + ")"
}

// field is customer.<name> as a value.
func (b *builder) field(name string) value {
	switch name {
	case "id", "email", "phone", "name", "locale", "timezone", "tier", "stage":
		return value{kind: kStr, sql: "c." + name}
	case "points", "order_count":
		return value{kind: kNum, num: numInt, sql: "c." + name}
	case "avg_order_value":
		return value{kind: kNum, num: numDec, sql: "c.avg_order_value"}
	case "lifetime_value":
		return value{kind: kNum, num: numDec, sql: LifetimeValueSQL}
	case "purchase_gap_days":
		return value{kind: kNum, num: numFloat, sql: "c.purchase_gap_days"}
	case "churn_risk":
		churn := ChurnRiskSQL(b.nowArg())
		return value{kind: kBool, b: exactCond(churn, sqlNot(churn))}
	case "last_purchase_at", "signup_at":
		return value{kind: kTime, col: "c." + name}
	case "birthday":
		return value{kind: kDate, col: "c.birthday"}
	case "days_since_last_purchase":
		return value{kind: kDays, col: "c.last_purchase_at", unit: 24 * time.Hour}
	case "days_since_signup":
		return value{kind: kDays, col: "c.signup_at", unit: 24 * time.Hour}
	case "tags":
		return value{kind: kTags, sql: "c.tags"}
	}
	return unknownValue
}

// value translates a value node of the rule.
func (b *builder) value(n ast.Node) value {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return constValue(n.Value)
	case *ast.FloatNode:
		return constValue(n.Value)
	case *ast.StringNode:
		return constValue(n.Value)
	case *ast.BoolNode:
		return constValue(n.Value)
	case *ast.NilNode:
		return constValue(nil)
	case *ast.ConstantNode:
		return constValue(n.Value)
	case *ast.ArrayNode:
		list := make([]any, 0, len(n.Nodes))
		for _, e := range n.Nodes {
			v := b.value(e)
			if v.kind != kConst {
				return unknownValue
			}
			list = append(list, v.c)
		}
		return constValue(list)
	case *ast.IdentifierNode:
		if n.Value == "now" {
			return constValue(b.now)
		}
	case *ast.MemberNode:
		return b.member(n)
	case *ast.CallNode:
		return b.call(n)
	case *ast.BuiltinNode:
		return b.builtin(n)
	case *ast.UnaryNode:
		return b.unary(n)
	case *ast.BinaryNode:
		return b.arithmetic(n)
	}
	if isBool(n) {
		return value{kind: kBool, b: b.cond(n)}
	}
	return unknownValue
}

// isBool reports whether n has the static type bool.
func isBool(n ast.Node) bool {
	t := n.Type()
	return t != nil && t.Kind() == reflect.Bool
}

// member translates customer.<field> and customer.attrs.<name>.
func (b *builder) member(n *ast.MemberNode) value {
	if name, ok := customerField(n); ok {
		return b.field(name)
	}
	if n.Optional {
		return unknownValue
	}
	key, ok := n.Property.(*ast.StringNode)
	if !ok {
		return unknownValue
	}
	if inner, ok := customerField(n.Node); ok && inner == "attrs" {
		return value{kind: kJSON, sql: "(c.attrs -> " + b.arg(key.Value, "text", quote(key.Value)) + ")"}
	}
	return unknownValue
}

// call translates duration("…"), daysSince(customer.x) and
// hoursSince(customer.x).
func (b *builder) call(n *ast.CallNode) value {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok {
		return unknownValue
	}
	switch id.Value {
	case "duration":
		if len(n.Arguments) != 1 {
			return unknownValue
		}
		s, ok := n.Arguments[0].(*ast.StringNode)
		if !ok {
			return unknownValue
		}
		d, err := rules.ParseDuration(s.Value)
		if err != nil {
			return unknownValue
		}
		return constValue(d)
	case "daysSince", "hoursSince":
		// The patcher put the environment first.
		if len(n.Arguments) != 2 {
			return unknownValue
		}
		v := b.value(n.Arguments[1])
		if v.kind != kTime {
			return unknownValue
		}
		unit := 24 * time.Hour
		if id.Value == "hoursSince" {
			unit = time.Hour
		}
		return value{kind: kDays, col: v.col, unit: unit}
	}
	return unknownValue
}

// builtin translates max and min of numbers and len(customer.tags).
func (b *builder) builtin(n *ast.BuiltinNode) value {
	switch n.Name {
	case "max", "min":
		if len(n.Arguments) < 2 {
			return unknownValue
		}
		v := value{kind: kExtreme, fn: n.Name}
		for _, a := range n.Arguments {
			av := b.value(a)
			if !numeric(av) {
				return unknownValue
			}
			v.args = append(v.args, av)
		}
		return v
	case "len":
		if len(n.Arguments) == 1 && b.value(n.Arguments[0]).kind == kTags {
			return value{kind: kNum, num: numInt, sql: "cardinality(c.tags)"}
		}
	}
	return unknownValue
}

// numeric reports whether v is a number the SQL can compute with.
func numeric(v value) bool {
	switch v.kind {
	case kNum, kDays, kExtreme:
		return true
	case kConst:
		_, ok := toFloat(v.c)
		return ok
	}
	return false
}

func (b *builder) unary(n *ast.UnaryNode) value {
	switch n.Operator {
	case "-":
		v := b.value(n.Node)
		if v.kind == kConst {
			switch x := v.c.(type) {
			case int:
				return constValue(-x)
			case float64:
				return constValue(-x)
			}
			return unknownValue
		}
		if numeric(v) {
			return value{kind: kNum, sql: "(-" + paren(b.numSQL(v)) + ")"}
		}
	case "+":
		return b.value(n.Node)
	}
	if isBool(n) {
		return value{kind: kBool, b: b.cond(n)}
	}
	return unknownValue
}

// arithmetic translates +, -, * and / of numbers, time minus time (a
// duration), time plus or minus a constant duration, and ??.
func (b *builder) arithmetic(n *ast.BinaryNode) value {
	switch n.Operator {
	case "+", "-", "*", "/":
	case "??":
		return b.coalesce(n)
	default:
		if isBool(n) {
			return value{kind: kBool, b: b.cond(n)}
		}
		return unknownValue
	}
	l, r := b.value(n.Left), b.value(n.Right)
	if l.kind == kConst && r.kind == kConst {
		return constArithmetic(n.Operator, l.c, r.c)
	}
	if n.Operator == "-" && l.kind == kConst && r.kind == kTime {
		if base, ok := l.c.(time.Time); ok {
			return value{kind: kSince, col: r.col, base: base}
		}
		return unknownValue
	}
	if !numeric(l) || !numeric(r) {
		return unknownValue
	}
	if n.Operator == "/" {
		// Go divides by zero into an infinity, SQL fails: only a
		// constant non-zero divisor.
		f, ok := toFloat(r.c)
		if r.kind != kConst || !ok || f == 0 {
			return unknownValue
		}
	}
	// Double precision throughout: expr's integer arithmetic agrees with it
	// on every value below 2^53.
	return value{kind: kNum, sql: "(" + b.floatSQL(l) + " " + n.Operator + " " + b.floatSQL(r) + ")"}
}

// coalesce translates customer.attrs.x ?? fallback.
func (b *builder) coalesce(n *ast.BinaryNode) value {
	l := b.value(n.Left)
	if l.kind != kJSON {
		return unknownValue
	}
	var fallback string
	switch r := b.value(n.Right); r.kind {
	case kConst:
		j, ok := b.jsonConst(r.c)
		if !ok {
			return unknownValue
		}
		fallback = j
	case kStr:
		fallback = "to_jsonb(" + r.sql + ")"
	case kNum:
		fallback = "to_jsonb(" + b.floatSQL(r) + ")"
	default:
		return unknownValue
	}
	return value{kind: kJSON, sql: "coalesce(nullif(" + l.sql + ", 'null'::jsonb), " + fallback + ")"}
}

// jsonConst is a constant as a jsonb expression.
func (b *builder) jsonConst(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "'null'::jsonb", true
	case bool:
		if x {
			return "'true'::jsonb", true
		}
		return "'false'::jsonb", true
	case string:
		return "to_jsonb(" + b.arg(x, "text", quote(x)) + ")", true
	}
	if f, ok := toFloat(v); ok && !math.IsInf(f, 0) && !math.IsNaN(f) {
		return "to_jsonb(" + b.arg(f, "float8", formatFloat(f)) + ")", true
	}
	return "", false
}

// constArithmetic folds constant time arithmetic the optimizer leaves:
// now ± duration and differences of times.
func constArithmetic(op string, l, r any) value {
	switch x := l.(type) {
	case time.Time:
		switch y := r.(type) {
		case time.Duration:
			if op == "+" {
				return constValue(x.Add(y))
			}
			if op == "-" {
				return constValue(x.Add(-y))
			}
		case time.Time:
			if op == "-" {
				return constValue(x.Sub(y))
			}
		}
	case time.Duration:
		if y, ok := r.(time.Time); ok && op == "+" {
			return constValue(y.Add(x))
		}
	}
	return unknownValue
}

// numSQL is a numeric value as SQL.
func (b *builder) numSQL(v value) string {
	switch v.kind {
	case kNum:
		return v.sql
	case kDays:
		return b.daysSQL(v)
	case kConst:
		f, _ := toFloat(v.c)
		return b.arg(f, "float8", formatFloat(f))
	case kExtreme:
		fn := "greatest"
		if v.fn == "min" {
			fn = "least"
		}
		parts := make([]string, len(v.args))
		for i, a := range v.args {
			parts[i] = b.floatSQL(a)
		}
		return fn + "(" + joinComma(parts) + ")"
	}
	return "NULL"
}

// floatSQL is a numeric value as double precision.
func (b *builder) floatSQL(v value) string {
	s := b.numSQL(v)
	if v.kind == kConst || (v.kind == kNum && v.num == numFloat) || v.kind == kExtreme {
		return s
	}
	return paren(s) + "::float8"
}

// daysSQL is whole units since a time column, -1 when it is unset, as
// rules.DaysSince and HoursSince compute it (Go's integer division
// truncates toward zero, as trunc does).
func (b *builder) daysSQL(v value) string {
	return "(CASE WHEN " + v.col + " IS NULL THEN -1 ELSE trunc(extract(epoch FROM " + b.nowArg() + " - " + v.col +
		") / " + formatFloat(v.unit.Seconds()) + ")::bigint END)"
}

func joinComma(parts []string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += ", "
		}
		out += p
	}
	return out
}

// toFloat reads a Go number.
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// listOf reads a constant list: an array, or the set expr's optimizer makes
// of a list of strings or integers.
func listOf(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case map[string]struct{}:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = k
		}
		return out, true
	case map[int]struct{}:
		keys := make([]int, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Ints(keys)
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = k
		}
		return out, true
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).Interface()
		}
		return out, true
	}
	return nil, false
}
