package pushdown

import (
	"math"
	"reflect"
	"strconv"
	"time"

	"github.com/expr-lang/expr/ast"
)

// cond translates a boolean node of the rule.
func (b *builder) cond(n ast.Node) cond {
	switch n := n.(type) {
	case *ast.BoolNode:
		return constCond(n.Value)
	case *ast.UnaryNode:
		if n.Operator == "!" || n.Operator == "not" {
			return not(b.cond(n.Node))
		}
	case *ast.BinaryNode:
		switch n.Operator {
		case "&&", "and":
			return and(b.cond(n.Left), b.cond(n.Right))
		case "||", "or":
			return or(b.cond(n.Left), b.cond(n.Right))
		case "==", "!=", "<", "<=", ">", ">=":
			return b.known(n, b.compare(n.Operator, b.value(n.Left), b.value(n.Right)))
		case "in":
			return b.known(n, b.in(b.value(n.Left), n.Right))
		case "contains", "startsWith", "endsWith":
			return b.known(n, b.text(n.Operator, b.value(n.Left), b.value(n.Right)))
		case "??":
			return b.known(n, b.boolValue(b.value(n)))
		}
	case *ast.ConditionalNode:
		return ternary(b.cond(n.Cond), b.cond(n.Exp1), b.cond(n.Exp2))
	case *ast.MemberNode:
		return b.known(n, b.boolValue(b.member(n)))
	case *ast.CallNode:
		if field, ok := anniversaryField(n); ok {
			return b.anniversary(field)
		}
	}
	return b.goOnly(n)
}

// known records n as left to Go when c is not exact.
func (b *builder) known(n ast.Node, c cond) cond {
	if !c.exactT {
		b.note(n)
	}
	return c
}

// boolValue is a value read as a condition: customer.churn_risk, or an
// attribute that holds true or false (anything else fails in a condition).
func (b *builder) boolValue(v value) cond {
	switch v.kind {
	case kBool:
		return v.b
	case kConst:
		if x, ok := v.c.(bool); ok {
			return constCond(x)
		}
	case kJSON:
		return exactCond(v.sql+" = 'true'::jsonb", v.sql+" = 'false'::jsonb")
	}
	return unknownCond
}

// mirror is the operator that compares the other way round.
var mirror = map[string]string{"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

// negate is the operator of the opposite comparison (on values that are
// totally ordered and never NULL).
var negate = map[string]string{"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}

// sqlOp is an operator in SQL.
func sqlOp(op string) string {
	switch op {
	case "==":
		return "="
	case "!=":
		return "<>"
	}
	return op
}

// compare translates l op r.
func (b *builder) compare(op string, l, r value) cond {
	if l.kind == kConst && r.kind != kConst {
		l, r, op = r, l, mirror[op]
	}
	if r.kind == kExtreme && l.kind != kExtreme {
		l, r, op = r, l, mirror[op]
	}
	switch l.kind {
	case kConst:
		if r.kind == kConst {
			return constCompare(op, l.c, r.c)
		}
	case kExtreme:
		return b.compareExtreme(op, l, r)
	case kNum:
		return b.compareNum(op, l, r)
	case kDays:
		if r.kind == kConst {
			if n, ok := toFloat(r.c); ok {
				return b.daysCond(l, op, n)
			}
			return unknownCond
		}
		return b.compareNum(op, l, r)
	case kStr:
		return b.compareStr(op, l, r)
	case kBool:
		if x, ok := r.c.(bool); ok && r.kind == kConst && (op == "==" || op == "!=") {
			if x == (op == "==") {
				return l.b
			}
			return not(l.b)
		}
	case kTime:
		if t, ok := r.c.(time.Time); ok && r.kind == kConst {
			return b.timeCond(l.col, op, t, goCompare(op, time.Time{}, t))
		}
	case kSince:
		// base - col op d  ⇔  col op' base - d, for a set col; an unset
		// col is the zero time, which Go's Sub saturates.
		if d, ok := r.c.(time.Duration); ok && r.kind == kConst {
			return b.timeCond(l.col, mirror[op], l.base.Add(-d), goCompare(op, l.base.Sub(time.Time{}), d))
		}
	case kDate:
		if t, ok := r.c.(time.Time); ok && r.kind == kConst {
			return b.dateCond(l.col, op, t)
		}
	case kJSON:
		if r.kind == kConst {
			return b.jsonCompare(op, l, r.c)
		}
	}
	return unknownCond
}

// compareExtreme splits a comparison with max(…) or min(…): x < max(a, b)
// is x < a || x < b, x > max(a, b) is x > a && x > b, and so on, so each
// part can use an index.
func (b *builder) compareExtreme(op string, l, r value) cond {
	// l is the extreme; rewrite as r op' l.
	op = mirror[op]
	if op == "==" || op == "!=" || !numeric(r) {
		return b.compareNum(mirror[op], value{kind: kNum, sql: b.numSQL(l)}, r)
	}
	any := (op == "<" || op == "<=") == (l.fn == "max")
	var c cond
	for i, a := range l.args {
		part := b.compare(op, r, a)
		switch {
		case i == 0:
			c = part
		case any:
			c = orPure(c, part)
		default:
			c = andPure(c, part)
		}
	}
	return c
}

// andPure and orPure combine conditions on values that never fail (numbers
// here): no short-circuit to respect.
func andPure(a, b cond) cond {
	return cond{t: sqlAnd(a.t, b.t), f: sqlOr(a.f, b.f), exactT: a.exactT && b.exactT, exactF: a.exactF && b.exactF}
}

func orPure(a, b cond) cond {
	return cond{t: sqlOr(a.t, b.t), f: sqlAnd(a.f, b.f), exactT: a.exactT && b.exactT, exactF: a.exactF && b.exactF}
}

// compareNum compares a number with a number.
func (b *builder) compareNum(op string, l, r value) cond {
	if r.kind == kConst {
		n, ok := toFloat(r.c)
		if !ok || math.IsNaN(n) || math.IsInf(n, 0) {
			return unknownCond
		}
		switch l.num {
		case numInt:
			if l.kind == kNum {
				return b.intCond(l.sql, op, n)
			}
		case numDec:
			k := b.arg(strconv.FormatFloat(n, 'f', -1, 64), "numeric", formatFloat(n))
			return exactCond(l.sql+" "+sqlOp(op)+" "+k, l.sql+" "+sqlOp(negate[op])+" "+k)
		}
		k := b.arg(n, "float8", formatFloat(n))
		x := b.floatSQL(l)
		return exactCond(x+" "+sqlOp(op)+" "+k, x+" "+sqlOp(negate[op])+" "+k)
	}
	if !numeric(r) {
		return unknownCond
	}
	x, y := b.floatSQL(l), b.floatSQL(r)
	return exactCond(x+" "+sqlOp(op)+" "+y, x+" "+sqlOp(negate[op])+" "+y)
}

// intCond compares a whole-number column with n, rounding a fractional
// bound so that the column's index serves.
func (b *builder) intCond(col, op string, n float64) cond {
	lo, hi, ok := intRange(op, n)
	if !ok {
		return not(b.intCond(col, negate[op], n))
	}
	var t []string
	if lo != math.MinInt64 {
		t = append(t, col+" >= "+b.arg(lo, "bigint", strconv.FormatInt(lo, 10)))
	}
	if hi != math.MaxInt64 {
		t = append(t, col+" <= "+b.arg(hi, "bigint", strconv.FormatInt(hi, 10)))
	}
	switch {
	case lo > hi:
		return constCond(false)
	case len(t) == 0:
		return constCond(true)
	case len(t) == 1:
		return exactCond(t[0], sqlNot(t[0]))
	}
	both := sqlAnd(t[0], t[1])
	return exactCond(both, sqlNot(both))
}

// intRange is the whole numbers k with k op n, as [lo, hi]; false for !=,
// which is not a range.
func intRange(op string, n float64) (lo, hi int64, ok bool) {
	lo, hi = math.MinInt64, math.MaxInt64
	switch op {
	case ">":
		lo = clampInt(math.Floor(n) + 1)
	case ">=":
		lo = clampInt(math.Ceil(n))
	case "<":
		hi = clampInt(math.Ceil(n) - 1)
	case "<=":
		hi = clampInt(math.Floor(n))
	case "==":
		if n != math.Trunc(n) {
			return 1, 0, true
		}
		lo, hi = clampInt(n), clampInt(n)
	default:
		return 0, 0, false
	}
	return lo, hi, true
}

// clampInt converts a whole float to int64, saturating.
func clampInt(f float64) int64 {
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

// compareStr compares a text column with a string: byte order, as Go
// compares strings, whatever the database's collation.
func (b *builder) compareStr(op string, l, r value) cond {
	var y string
	switch r.kind {
	case kConst:
		s, ok := r.c.(string)
		if !ok {
			if op == "==" || op == "!=" {
				return constCond(op == "!=") // a string never equals anything else
			}
			return unknownCond
		}
		y = b.arg(s, "text", quote(s))
	case kStr:
		y = r.sql
	default:
		return unknownCond
	}
	x := l.sql
	if op != "==" && op != "!=" {
		x += ` COLLATE "C"`
	}
	return exactCond(x+" "+sqlOp(op)+" "+y, x+" "+sqlOp(negate[op])+" "+y)
}

// timeCond compares a time column with t; an unset time (NULL) is Go's zero
// time, for which the comparison is zero. PostgreSQL keeps microseconds,
// so t is rounded the way that keeps the comparison the same.
func (b *builder) timeCond(col, op string, t time.Time, zero bool) cond {
	var x, y string
	switch op {
	case "<=", ">":
		k := b.arg(floorMicro(t), "timestamptz", b.timeNote(t))
		x, y = col+" "+op+" "+k, col+" "+negate[op]+" "+k
	case ">=", "<":
		k := b.arg(ceilMicro(t), "timestamptz", b.timeNote(t))
		x, y = col+" "+op+" "+k, col+" "+negate[op]+" "+k
	case "==", "!=":
		x, y = sqlFalse, col+" IS NOT NULL"
		if floorMicro(t).Equal(t) {
			k := b.arg(t, "timestamptz", b.timeNote(t))
			x, y = col+" = "+k, col+" <> "+k
		}
		if op == "!=" {
			x, y = y, x
		}
	default:
		return unknownCond
	}
	if zero {
		return exactCond(sqlOr(col+" IS NULL", x), y)
	}
	return exactCond(x, sqlOr(col+" IS NULL", y))
}

// dateCond compares the birthday (a date, midnight UTC to rules) with t.
func (b *builder) dateCond(col, op string, t time.Time) cond {
	t = t.UTC()
	floor := t.Truncate(24 * time.Hour)
	ceil := floor
	if !ceil.Equal(t) {
		ceil = ceil.Add(24 * time.Hour)
	}
	day := func(d time.Time) string { return b.arg(d, "date", d.Format("2006-01-02")) }
	var x, y string
	switch op {
	case "<=", ">":
		k := day(floor)
		x, y = col+" "+op+" "+k, col+" "+negate[op]+" "+k
	case ">=", "<":
		k := day(ceil)
		x, y = col+" "+op+" "+k, col+" "+negate[op]+" "+k
	case "==", "!=":
		x, y = sqlFalse, col+" IS NOT NULL"
		if floor.Equal(t) {
			k := day(floor)
			x, y = col+" = "+k, col+" <> "+k
		}
		if op == "!=" {
			x, y = y, x
		}
	default:
		return unknownCond
	}
	if goCompare(op, time.Time{}, t) {
		return exactCond(sqlOr(col+" IS NULL", x), y)
	}
	return exactCond(x, sqlOr(col+" IS NULL", y))
}

// daysCond compares whole units since a time column (-1 when unset) with
// n, as ranges of the column, so that its index serves: more than 90 days
// since is a time at least 91 days before now.
func (b *builder) daysCond(v value, op string, n float64) cond {
	if math.IsNaN(n) {
		return unknownCond
	}
	if op == "!=" {
		return not(b.daysCond(v, "==", n))
	}
	lo, hi, _ := intRange(op, n)
	if lo > hi {
		return constCond(false)
	}
	// k = trunc(d / unit) for d = now - col. k >= m ⇔ d >= m·unit when
	// m >= 1, d > (m-1)·unit when m <= 0; k <= m ⇔ d < (m+1)·unit when
	// m >= 0, d <= m·unit when m <= -1. d >= x ⇔ col <= now - x.
	limit := int64(math.MaxInt64/int64(v.unit)) - 1 // Go's Sub saturates beyond
	t := sqlTrue
	if lo != math.MinInt64 {
		switch {
		case lo > limit:
			t = sqlFalse
		case lo < -limit:
		case lo >= 1:
			t = sqlAnd(t, v.col+" <= "+b.nowMinus(time.Duration(lo)*v.unit))
		default:
			t = sqlAnd(t, v.col+" < "+b.nowMinus(time.Duration(lo-1)*v.unit))
		}
	}
	if hi != math.MaxInt64 {
		switch {
		case hi < -limit:
			t = sqlFalse
		case hi > limit:
		case hi >= 0:
			t = sqlAnd(t, v.col+" > "+b.nowMinus(time.Duration(hi+1)*v.unit))
		default:
			t = sqlAnd(t, v.col+" >= "+b.nowMinus(time.Duration(hi)*v.unit))
		}
	}
	set := v.col + " IS NOT NULL"
	if t == sqlTrue {
		t = set
	}
	if lo <= -1 && -1 <= hi {
		return exactCond(sqlOr(v.col+" IS NULL", t), sqlAnd(set, sqlNot(t)))
	}
	return exactCond(t, sqlOr(v.col+" IS NULL", sqlNot(t)))
}

// nowMinus is the argument now - d, exact to the microsecond since now and
// d are.
func (b *builder) nowMinus(d time.Duration) string {
	return b.arg(b.now.Add(-d), "timestamptz", b.timeNote(b.now.Add(-d)))
}

// in translates l in list and s in customer.tags.
func (b *builder) in(l value, right ast.Node) cond {
	r := b.value(right)
	if r.kind == kTags {
		s, ok := l.c.(string)
		if l.kind != kConst || !ok {
			return unknownCond
		}
		t := "c.tags @> ARRAY[" + b.arg(s, "text", quote(s)) + "]"
		return exactCond(t, sqlNot(t))
	}
	if r.kind != kConst {
		return unknownCond
	}
	if set, ok := r.c.(map[string]struct{}); ok {
		return b.inStringSet(l, set)
	}
	list, ok := listOf(r.c)
	if !ok {
		return unknownCond
	}
	if _, isIntSet := r.c.(map[int]struct{}); isIntSet && !numeric(l) {
		return unknownCond // expr looks an int up in the set: anything else fails
	}
	if len(list) > 64 {
		return unknownCond
	}
	// A list is searched with ==: true if one element equals.
	c := constCond(false)
	for _, e := range list {
		c = orPure(c, b.compare("==", l, constValue(e)))
	}
	return c
}

// inStringSet is l in a list of strings, which expr's optimizer turns into a
// set looked up by key: nil looks up "", anything but a string fails.
func (b *builder) inStringSet(l value, set map[string]struct{}) cond {
	list, _ := listOf(set)
	strs := make([]string, len(list))
	for i, s := range list {
		strs[i] = s.(string)
	}
	_, hasEmpty := set[""]
	switch l.kind {
	case kStr:
		if len(strs) == 0 {
			return constCond(false)
		}
		k := b.arg(strs, "text[]", quoteList(strs))
		return exactCond(l.sql+" = ANY("+k+")", l.sql+" <> ALL("+k+")")
	case kJSON:
		missing := "(" + l.sql + " IS NULL OR " + l.sql + " = 'null'::jsonb)"
		isStr := "jsonb_typeof(" + l.sql + ") = 'string'"
		in, out := sqlFalse, isStr
		if len(strs) > 0 {
			k := b.arg(strs, "text[]", quoteList(strs))
			in = "CASE WHEN " + isStr + " THEN (" + l.sql + " #>> '{}') = ANY(" + k + ") ELSE false END"
			out = "CASE WHEN " + isStr + " THEN (" + l.sql + " #>> '{}') <> ALL(" + k + ") ELSE false END"
		}
		if hasEmpty {
			return exactCond(sqlOr(in, missing), out)
		}
		return exactCond(in, sqlOr(out, missing))
	case kConst:
		s, ok := l.c.(string)
		if !ok {
			return unknownCond
		}
		_, found := set[s]
		return constCond(found)
	}
	return unknownCond
}

// text translates contains, startsWith and endsWith on a text column.
func (b *builder) text(op string, l, r value) cond {
	s, ok := r.c.(string)
	if l.kind != kStr || r.kind != kConst || !ok {
		return unknownCond
	}
	k := b.arg(s, "text", quote(s))
	var t string
	switch op {
	case "contains":
		t = "strpos(" + l.sql + ", " + k + ") > 0"
	case "startsWith":
		t = "starts_with(" + l.sql + ", " + k + ")"
	case "endsWith":
		t = "right(" + l.sql + ", length(" + k + ")) = " + k
	}
	return exactCond(t, sqlNot(t))
}

// jsonCompare compares an attribute with a constant as expr does: == is
// never an error (different kinds are unequal, nil equals a missing
// attribute or a JSON null); an order between an attribute and a number
// or a string fails unless the attribute is one too.
func (b *builder) jsonCompare(op string, l value, c any) cond {
	j := l.sql
	if op == "!=" {
		return not(b.jsonCompare("==", l, c))
	}
	if op == "==" {
		switch x := c.(type) {
		case nil:
			return exactCond("("+j+" IS NULL OR "+j+" = 'null'::jsonb)", "("+j+" IS NOT NULL AND "+j+" <> 'null'::jsonb)")
		case bool, string:
			k, _ := b.jsonConst(x)
			return exactCond(j+" = "+k, j+" IS DISTINCT FROM "+k)
		}
	}
	if n, ok := toFloat(c); ok {
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return unknownCond
		}
		k := b.arg(n, "float8", formatFloat(n))
		guard := "CASE WHEN jsonb_typeof(" + j + ") = 'number' THEN (" + j + ")::float8 "
		if op == "==" {
			return exactCond(guard+"= "+k+" ELSE false END", guard+"<> "+k+" ELSE true END")
		}
		return exactCond(guard+sqlOp(op)+" "+k+" ELSE false END", guard+sqlOp(negate[op])+" "+k+" ELSE false END")
	}
	if s, ok := c.(string); ok {
		k := b.arg(s, "text", quote(s))
		guard := "CASE WHEN jsonb_typeof(" + j + ") = 'string' THEN (" + j + ` #>> '{}') COLLATE "C" `
		return exactCond(guard+op+" "+k+" ELSE false END", guard+negate[op]+" "+k+" ELSE false END")
	}
	return unknownCond
}

// constCompare compares two constants as expr would.
func constCompare(op string, l, r any) cond {
	x, okx := toFloat(l)
	y, oky := toFloat(r)
	if okx && oky {
		return constCond(goCompare(op, x, y))
	}
	switch a := l.(type) {
	case string:
		if s, ok := r.(string); ok {
			return constCond(goCompare(op, a, s))
		}
	case time.Time:
		if t, ok := r.(time.Time); ok {
			return constCond(goCompare(op, a, t))
		}
	case time.Duration:
		if d, ok := r.(time.Duration); ok {
			return constCond(goCompare(op, a, d))
		}
	case bool:
		if c, ok := r.(bool); ok && (op == "==" || op == "!=") {
			return constCond((a == c) == (op == "=="))
		}
	}
	if op == "==" || op == "!=" {
		if l == nil || r == nil {
			return constCond((l == nil && r == nil) == (op == "=="))
		}
	}
	return unknownCond
}

// goCompare is a op b on ordered Go values.
func goCompare[T float64 | string | time.Duration | time.Time](op string, a, b T) bool {
	c := cmp(a, b)
	switch op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

func cmp[T float64 | string | time.Duration | time.Time](a, b T) int {
	switch x := any(a).(type) {
	case time.Time:
		return x.Compare(any(b).(time.Time))
	case float64:
		y := any(b).(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		case x == y:
			return 0
		}
		return 2 // NaN: unordered, unequal
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() == reflect.String {
		switch {
		case va.String() < vb.String():
			return -1
		case va.String() > vb.String():
			return 1
		}
		return 0
	}
	switch {
	case va.Int() < vb.Int():
		return -1
	case va.Int() > vb.Int():
		return 1
	}
	return 0
}

// floorMicro and ceilMicro round a time to PostgreSQL's microseconds.
func floorMicro(t time.Time) time.Time {
	r := t.Truncate(time.Microsecond)
	if r.After(t) {
		r = r.Add(-time.Microsecond)
	}
	return r
}

func ceilMicro(t time.Time) time.Time {
	r := floorMicro(t)
	if r.Before(t) {
		r = r.Add(time.Microsecond)
	}
	return r
}
