package rules_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// TestCompileErrors checks that bad rules fail at compile time, as a
// *rules.Error that points at the offending place in the source.
func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		kind     rules.Kind
		line     int
		column   int
		contains string
	}{
		{"unknown field", "customer.teir == 'gold'", rules.Bool, 1, 10, `"teir"`},
		{"unknown field on line 2", "customer.points > 10 &&\n  customer.teir == 'gold'", rules.Bool, 2, 12, `"teir"`},
		{"number plus string", `event.amount + "x"`, rules.Number, 1, 14, `event.amount is a number and "x" is text`},
		{"bool rule returning a number", "customer.points * 2", rules.Bool, 1, 1, "must be a condition (true or false)"},
		{"number rule returning a string", "customer.tier", rules.Number, 1, 1, "must give a number, but customer.tier is text"},
		{"text rule printing a list", "customer.tags", rules.Text, 1, 1, "cannot print"},
		{"text rule printing a map", "customer.attrs", rules.Text, 1, 1, "cannot print"},
		{"text rule printing event props", "event.props", rules.Text, 1, 1, "cannot print"},
		{"built-in with a wrong argument", "daysSince(customer.tier) > 3", rules.Bool, 1, 0, "daysSince"},
		{"built-in without its argument", "localHour() > 9", rules.Bool, 1, 0, "localHour"},
		{"syntax error", "customer.points >", rules.Bool, 1, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := rules.Compile(tt.src, tt.kind)
			var re *rules.Error
			if !errors.As(err, &re) {
				t.Fatalf("Compile(%q) = %v, %v; want a *rules.Error", tt.src, r, err)
			}
			if re.Line != tt.line || (tt.column > 0 && re.Column != tt.column) {
				t.Errorf("position %d:%d, want %d:%d (%s)", re.Line, re.Column, tt.line, tt.column, re.Msg)
			}
			if re.Column < 1 {
				t.Errorf("column %d is not 1-based", re.Column)
			}
			if !strings.Contains(re.Msg, tt.contains) {
				t.Errorf("message %q does not mention %q", re.Msg, tt.contains)
			}
		})
	}
}

func TestNumberRulesAcceptIntAndFloat(t *testing.T) {
	env := rules.NewEnv(rules.Customer{Points: 120}, rules.Event{Amount: 80}, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	for src, want := range map[string]float64{
		"customer.points * 2":  240,
		"event.amount * 0.05":  4,
		"100":                  100,
		"customer.points / 8":  15,
		"customer.points % 50": 20,
	} {
		r, err := rules.Compile(src, rules.Number)
		if err != nil {
			t.Errorf("Compile(%q): %v", src, err)
			continue
		}
		got, err := r.Number(env)
		if err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", src, got, err, want)
		}
	}
}

func TestTextRulesAcceptPrintableValues(t *testing.T) {
	for _, src := range []string{"customer.name", "customer.points", "event.amount", "now", `duration("3d")`, "customer.attrs.industry", "upper(customer.name)", "len(customer.tags)"} {
		if _, err := rules.Compile(src, rules.Text); err != nil {
			t.Errorf("Compile(%q, Text): %v", src, err)
		}
	}
}

func TestRuleSizeLimits(t *testing.T) {
	t.Run("source too long", func(t *testing.T) {
		src := "customer.name == '" + strings.Repeat("a", rules.MaxSourceLen) + "'"
		_, err := rules.Compile(src, rules.Bool)
		var re *rules.Error
		if !errors.As(err, &re) || !strings.Contains(re.Msg, "limit") {
			t.Errorf("Compile(%d bytes) error = %v, want a size-limit *rules.Error", len(src), err)
		}
	})
	t.Run("source at the limit compiles", func(t *testing.T) {
		src := "customer.name != '" + strings.Repeat("a", rules.MaxSourceLen-19) + "'"
		if len(src) != rules.MaxSourceLen {
			t.Fatalf("test source is %d bytes, want %d", len(src), rules.MaxSourceLen)
		}
		if _, err := rules.Compile(src, rules.Bool); err != nil {
			t.Errorf("Compile(at limit): %v", err)
		}
	})
	t.Run("too many nodes", func(t *testing.T) {
		// About 600 nodes in well under MaxSourceLen bytes.
		src := "customer.points" + strings.Repeat("+1", 300) + " > 0"
		if len(src) > rules.MaxSourceLen {
			t.Fatalf("test source is %d bytes; it must stay under the length limit", len(src))
		}
		_, err := rules.Compile(src, rules.Bool)
		var re *rules.Error
		if !errors.As(err, &re) || !strings.Contains(re.Msg, "nodes") {
			t.Errorf("Compile(600 nodes) error = %v, want a node-limit *rules.Error", err)
		}
	})
}

// TestRuntimeErrorsAreErrors checks that failures during evaluation come
// back as *rules.Error with a position, never as a panic.
func TestRuntimeErrorsAreErrors(t *testing.T) {
	env := rules.NewEnv(rules.Customer{Points: 7, Tags: []string{"vip"}}, rules.Event{}, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	tests := []struct {
		name, src string
		kind      rules.Kind
		contains  string
	}{
		{"index out of range", "customer.tags[5]", rules.Text, "out of range"},
		{"integer modulo by zero", "customer.points % 0", rules.Number, "divide by zero"},
		{"field of a missing attribute", "customer.attrs.company.size > 10", rules.Bool, "customer.attrs.company has no value for this customer"},
		{"bad conversion", "int(customer.tier) > 1", rules.Bool, "int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := rules.Compile(tt.src, tt.kind)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tt.src, err)
			}
			var ev rules.Evaluator
			_, err = ev.Value(r, &env)
			var re *rules.Error
			if !errors.As(err, &re) {
				t.Fatalf("evaluate %q: error %v (%T), want *rules.Error", tt.src, err, err)
			}
			if re.Line < 1 || re.Column < 1 || !strings.Contains(re.Msg, tt.contains) {
				t.Errorf("error %q, want a positioned message mentioning %q", re, tt.contains)
			}
		})
	}
}

// TestFloatDivisionByZero pins expr's semantics: `/` is float division and
// yields +Inf rather than an error, so a Number rule such as
// event.amount / customer.order_count can produce +Inf (reported on issue #2).
func TestFloatDivisionByZero(t *testing.T) {
	r, err := rules.Compile("customer.points / customer.order_count", rules.Text)
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.Value(rules.NewEnv(rules.Customer{Points: 5}, rules.Event{}, time.Time{}))
	if f, ok := v.(float64); err != nil || !ok || f <= 1e308 {
		t.Errorf("5 / 0 = %v, %v; want +Inf", v, err)
	}
}
