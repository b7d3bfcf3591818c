// Package pushdown compiles the trigger of a segment or date playbook — its
// `where` rule and, for a date trigger, "due today in the customer's zone"
// — into a SQL predicate over the customers table, so that a scan reads the
// customers that can match instead of every customer.
//
// The predicate is an upper bound: every customer the trigger matches
// satisfies it. Where the trigger is fully translated it is exact, and
// the scan takes its candidates as the matches; otherwise the parts it
// cannot express read as TRUE (for the rows where they decide) and the
// scan evaluates the trigger in Go on every candidate. Either way a scan
// selects exactly the customers that evaluating everyone would.
//
// It is a pure compiler: Bind returns SQL text with $1…$n placeholders and
// their arguments, and package store runs it (store.Candidates). The SQL
// reads the columns of customers under the alias c and the settings view
// rapport_metric_settings, and uses the SQL functions and the month-day
// expressions of migration 00010_scan_pushdown.sql, whose indexes it is
// written for.
package pushdown

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"time"

	"github.com/expr-lang/expr/ast"

	"github.com/rapport-crm/rapport/engine"
)

// Selection is the compiled selection of one trigger.
type Selection struct {
	trigger engine.Trigger
	window  time.Duration
	zones   zoneNeeds
}

// zoneNeeds says which lists of time zones Bind needs.
type zoneNeeds struct{ birthday, signup bool }

// New compiles the selection of a segment or date trigger. window is the
// width of a date scan's slot (scan.DateWindow): a date trigger selects the
// customers whose local `at` time fell in (now-window, now].
func New(t engine.Trigger, window time.Duration) *Selection {
	s := &Selection{trigger: t, window: window}
	switch t.Date {
	case dateBirthday:
		s.zones.birthday = true
	case dateSignup:
		s.zones.signup = true
	}
	if t.Where != nil {
		node := t.Where.Node()
		ast.Walk(&node, anniversaryVisitor(func(field string) {
			switch field {
			case "birthday":
				s.zones.birthday = true
			case "signup_at":
				s.zones.signup = true
			}
		}))
	}
	return s
}

// The date fields of a date trigger.
const (
	dateBirthday = "birthday"
	dateSignup   = "signup_anniversary"
)

// Zones are the distinct values of customers.timezone, as Bind needs them
// to select birthdays and anniversaries: the local date differs by zone,
// and a zone name Go does not know is UTC to rules (rules.Location), which
// SQL cannot decide by itself. store.TimeZones reads them.
type Zones struct {
	Birthday []string // zones of the customers with a birthday
	Signup   []string // zones of the customers with a signup time
}

// NeedsZones reports which zone lists Bind needs; it needs none for a
// trigger that looks at no anniversary.
func (s *Selection) NeedsZones() (birthday, signup bool) {
	return s.zones.birthday, s.zones.signup
}

// Predicate is a bound selection.
type Predicate struct {
	// SQL is a boolean expression over customers c (never NULL where it
	// matters: a NULL reads as false); $1…$len(Args) are Args.
	SQL  string
	Args []any
	// Exact is true when SQL alone selects exactly the customers the
	// trigger matches at that time; otherwise it selects more.
	Exact bool
	// Params says what each argument is, for `rapport explain`.
	Params []string
	// InGo lists the parts of the trigger only the Go check decides.
	InGo []string
}

// Bind writes the selection for a scan at now, with the zone lists
// NeedsZones asked for. A now with a fraction of a microsecond (PostgreSQL
// keeps microseconds) selects everyone: the day counts of the SQL would not
// be Go's at the boundary. Scan times are whole milliseconds.
func (s *Selection) Bind(now time.Time, z Zones) (p Predicate) {
	// A rule shape the compiler mishandles costs a full read, never a
	// failed scan: Go decides everything then.
	defer func() {
		if r := recover(); r != nil {
			p = Predicate{SQL: sqlTrue, InGo: []string{fmt.Sprintf("everything: the trigger could not be compiled to SQL (%v)", r)}}
		}
	}()
	b := &builder{now: now, zones: z}
	if now.Nanosecond()%1000 != 0 {
		return Predicate{SQL: sqlTrue, InGo: []string{"everything: the scan time has a fraction of a microsecond"}}
	}
	c := exactCond(sqlTrue, sqlFalse)
	switch {
	case s.trigger.Kind == engine.TriggerDate:
		c = b.dateTrigger(s.trigger, s.window)
	case s.trigger.Kind != engine.TriggerSegment:
		return Predicate{SQL: sqlFalse, Exact: true}
	}
	if w := s.trigger.Where; w != nil {
		b.src = w.Source
		c = and(c, b.cond(w.Node()))
	}
	sql, args, notes := compact(c.t, b.args, b.notes)
	return Predicate{SQL: sql, Args: args, Exact: c.exactT, Params: notes, InGo: b.inGo}
}

// placeholder is an argument in the SQL the builder writes.
var placeholder = regexp.MustCompile(`\$([0-9]+)::`)

// compact drops the arguments the SQL no longer uses (a part folded away
// after it took one: PostgreSQL cannot type an unused parameter) and
// numbers the rest from 1.
func compact(sql string, args []any, notes []string) (string, []any, []string) {
	used := make([]bool, len(args))
	for _, m := range placeholder.FindAllStringSubmatch(sql, -1) {
		i, _ := strconv.Atoi(m[1])
		used[i-1] = true
	}
	renumber := make([]int, len(args))
	var outArgs []any
	var outNotes []string
	for i, u := range used {
		if u {
			outArgs = append(outArgs, args[i])
			outNotes = append(outNotes, notes[i])
			renumber[i] = len(outArgs)
		}
	}
	sql = placeholder.ReplaceAllStringFunc(sql, func(m string) string {
		i, _ := strconv.Atoi(m[1 : len(m)-2])
		return "$" + strconv.Itoa(renumber[i-1]) + "::"
	})
	return sql, outArgs, outNotes
}

// Explain writes what each argument is and what stays in Go, each line
// indented.
func (p Predicate) Explain(w io.Writer, indent string) {
	for i, n := range p.Params {
		fmt.Fprintf(w, "%s$%d = %s\n", indent, i+1, n)
	}
	if p.Exact {
		fmt.Fprintf(w, "%sexact: the SQL selects exactly the customers the trigger matches\n", indent)
		return
	}
	fmt.Fprintf(w, "%snot exact: the SQL selects a superset; Go decides on each candidate:\n", indent)
	for _, s := range p.InGo {
		fmt.Fprintf(w, "%s  - %s\n", indent, s)
	}
}

// anniversaryVisitor calls its function with the customer field of every
// isAnniversary(customer.<field>, customer.timezone) call (isBirthday is
// rewritten to one when compiled).
type anniversaryVisitor func(field string)

func (f anniversaryVisitor) Visit(n *ast.Node) {
	if field, ok := anniversaryField(*n); ok {
		f(field)
	}
}

// anniversaryField is the customer date field of an
// isAnniversary($env, customer.<field>, customer.timezone) call.
func anniversaryField(n ast.Node) (string, bool) {
	call, ok := n.(*ast.CallNode)
	if !ok || len(call.Arguments) != 3 {
		return "", false
	}
	if id, ok := call.Callee.(*ast.IdentifierNode); !ok || id.Value != "isAnniversary" {
		return "", false
	}
	field, ok := customerField(call.Arguments[1])
	if !ok || (field != "birthday" && field != "signup_at") {
		return "", false
	}
	if tz, ok := customerField(call.Arguments[2]); !ok || tz != "timezone" {
		return "", false
	}
	return field, true
}

// customerField is the name of a customer.<field> read.
func customerField(n ast.Node) (string, bool) {
	m, ok := n.(*ast.MemberNode)
	if !ok || m.Optional {
		return "", false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "customer" {
		return "", false
	}
	p, ok := m.Property.(*ast.StringNode)
	if !ok {
		return "", false
	}
	return p.Value, true
}
