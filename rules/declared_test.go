package rules_test

import (
	"errors"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

var declared = rules.Declared{
	Attrs: map[string]rules.Type{"balance": rules.TypeNumber, "favourite_category": rules.TypeText, "vip": rules.TypeBoolean, "vip_since": rules.TypeDate},
	Props: map[string]rules.Type{"sku": rules.TypeText, "quantity": rules.TypeNumber},
	Event: "purchase",
	File:  "rapport.yaml",
}

// TestCheckDeclared checks rules against declared attrs and props: each
// error has its position and the marketer's message.
func TestCheckDeclared(t *testing.T) {
	tests := []struct {
		src       string
		line, col int
		msg       string
	}{
		{"customer.attrs.favourte_category == 'shoes'", 1, 16, `customer.attrs.favourte_category is not declared in rapport.yaml (did you mean "favourite_category"?)`},
		{"customer.attrs['balanse'] > 3", 1, 16, `customer.attrs.balanse is not declared in rapport.yaml (did you mean "balance"?)`},
		{"customer.attrs.shoe_size > 3", 1, 16, `customer.attrs.shoe_size is not declared in rapport.yaml; declare it under attrs: with its type (text, number, boolean or date)`},
		{"event.props.colour == 'red'", 1, 13, `event.props.colour is not declared for the event purchase in rapport.yaml; declare it under the event's props: with its type`},
		{"event.props.quantiy > 1", 1, 13, `event.props.quantiy is not declared for the event purchase in rapport.yaml (did you mean "quantity"?)`},
		{"customer.attrs.favourite_category > 3", 1, 35, `customer.attrs.favourite_category is text; compare it with text, like customer.attrs.favourite_category > "3" (types as declared in rapport.yaml)`},
		{"customer.attrs.balance > '100'", 1, 24, `customer.attrs.balance is a number; compare it with a number, like customer.attrs.balance > 100 (types as declared in rapport.yaml)`},
	}
	for _, tt := range tests {
		if _, err := rules.Compile(tt.src, rules.Bool); err != nil {
			t.Fatalf("%s: Compile must accept it (untyped): %v", tt.src, err)
		}
		err := rules.CheckDeclared(tt.src, rules.Bool, declared)
		var re *rules.Error
		if !errors.As(err, &re) {
			t.Fatalf("%s: got %v, want a *rules.Error", tt.src, err)
		}
		if re.Line != tt.line || re.Column != tt.col || re.Msg != tt.msg {
			t.Errorf("%s:\n got %d:%d: %s\nwant %d:%d: %s", tt.src, re.Line, re.Column, re.Msg, tt.line, tt.col, tt.msg)
		}
	}
}

// TestCheckDeclaredAccepts checks that typed reads that fit pass, and that
// what is not declared (a nil map) stays untyped.
func TestCheckDeclaredAccepts(t *testing.T) {
	for _, src := range []string{
		"customer.attrs.balance > 100000",
		"customer.attrs.balance != nil and customer.attrs.vip",
		"daysSince(date(customer.attrs.vip_since)) > 365",
		"event.props.quantity >= 2 and event.props.sku startsWith 'X'",
		"isBirthday(customer) and len(keys(customer.attrs)) > 0",
		"customer.points > 10 and now > customer.signup_at",
	} {
		if err := rules.CheckDeclared(src, rules.Bool, declared); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
	if err := rules.CheckDeclared("customer.attrs.anything > 3 and event.props.x == 1", rules.Bool, rules.Declared{}); err != nil {
		t.Errorf("nothing declared: %v", err)
	}
}

// TestMissingValue checks the run-time words for a value a customer or an
// event does not have.
func TestMissingValue(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct{ src, msg string }{
		{"customer.attrs.balance > 100000", "customer.attrs.balance has no value for this customer"},
		{"customer.points > 1 and 100000 < customer.attrs.balance", "customer.attrs.balance has no value for this customer"},
		{"event.props.quantity * 2 > 3", "event.props.quantity has no value in this event"},
	}
	for _, tt := range tests {
		r, err := rules.Compile(tt.src, rules.Bool)
		if err != nil {
			t.Fatal(err)
		}
		c := rules.Customer{ID: "c1", Points: 5, Attrs: map[string]any{"other": 1.0}}
		_, err = r.Bool(rules.NewEnv(c, rules.Event{Name: "purchase"}, now))
		var re *rules.Error
		if !errors.As(err, &re) || re.Msg != tt.msg {
			t.Errorf("%s: got %v, want %q", tt.src, err, tt.msg)
		}
	}
}

// TestParseDeclared checks how values sent for declared fields are read.
func TestParseDeclared(t *testing.T) {
	good := []struct {
		typ  rules.Type
		in   any
		want any
	}{
		{rules.TypeNumber, 120.5, 120.5},
		{rules.TypeNumber, " 120.5", 120.5},
		{rules.TypeText, "shoes", "shoes"},
		{rules.TypeBoolean, true, true},
		{rules.TypeDate, "2024-05-01", "2024-05-01"},
	}
	for _, g := range good {
		got, err := rules.ParseDeclared(g.typ, g.in)
		if err != nil || got != g.want {
			t.Errorf("%s %v: got %v, %v; want %v", g.typ, g.in, got, err, g.want)
		}
	}
	bad := []struct {
		typ rules.Type
		in  any
		msg string
	}{
		{rules.TypeNumber, "abc", `expected a number, got "abc"`},
		{rules.TypeNumber, "NaN", `expected a number, got "NaN"`},
		{rules.TypeText, 3.0, "expected text, got a number"},
		{rules.TypeBoolean, "yes", `expected true or false, got "yes"`},
		{rules.TypeDate, "May 1st", `expected a date like "2024-05-01" or "2024-05-01T09:00:00Z", got "May 1st"`},
	}
	for _, b := range bad {
		if _, err := rules.ParseDeclared(b.typ, b.in); err == nil || err.Error() != b.msg {
			t.Errorf("%s %v: got %v, want %q", b.typ, b.in, err, b.msg)
		}
	}
}
