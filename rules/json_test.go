package rules

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRuleJSONRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		src  string
		kind Kind
		want any
	}{
		{`customer.tier == "gold" && event.amount > 50`, Bool, true},
		{`event.amount * 2`, Number, 160.0},
		{`customer.name`, Text, "Ada"},
	} {
		r, err := Compile(tc.src, tc.kind)
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back Rule
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if back.Source != tc.src || back.Kind != tc.kind {
			t.Fatalf("decoded %q (%v), want %q (%v)", back.Source, back.Kind, tc.src, tc.kind)
		}
		env := NewEnv(Customer{Name: "Ada", Tier: "gold"}, Event{Amount: 80}, time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
		var ev Evaluator
		got, err := ev.Value(&back, &env)
		if err != nil {
			t.Fatalf("%s: evaluate decoded rule: %v", tc.src, err)
		}
		if got != tc.want {
			t.Fatalf("%s = %v, want %v", tc.src, got, tc.want)
		}
	}
}

func TestRuleJSONRejectsWhatDoesNotCompile(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{`{"source":"customer.nope > 1","kind":"bool"}`, `decode rule "customer.nope > 1": 1:10: customer has no field "nope"`},
		{`{"source":"1","kind":"date"}`, `unknown rule kind "date"`},
	} {
		var r Rule
		err := json.Unmarshal([]byte(tc.data), &r)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("decode %s: err %v, want %q", tc.data, err, tc.want)
		}
	}
}

// TestCompileStartedAcceptsWhatEarlierReleasesAccepted: rules that today's
// rules refuse but the releases before 2026-11-25 accepted still compile
// for a journey already running, and evaluate deterministically; now()
// never does.
func TestCompileStartedAcceptsWhatEarlierReleasesAccepted(t *testing.T) {
	env := NewEnv(Customer{Tags: []string{"a", "b"}, Attrs: map[string]any{"b": 2.0, "a": 1.0, "c": 3.0}}, Event{}, time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{`reduce(customer.tags, #acc + 1, 0) == 2`, true},
		{`keys(customer.attrs)[0] == 1`, false},                                                       // keys were a list of any: comparing with a number type-checked
		{`indexOf(toJSON(customer.attrs), "\"a\"") < indexOf(toJSON(customer.attrs), "\"c\"")`, true}, // keys in order
	} {
		if _, err := Compile(tc.src, Bool); err == nil {
			t.Fatalf("%s: today's rules accept it; pick a rule they refuse", tc.src)
		}
		r, err := CompileStarted(tc.src, Bool)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		var ev Evaluator
		for range 50 {
			got, err := ev.Bool(r, &env)
			if err != nil || got != tc.want {
				t.Fatalf("%s = %v, %v; want %v", tc.src, got, err, tc.want)
			}
		}
	}
	if _, err := CompileStarted(`now() > now`, Bool); err == nil || !strings.Contains(err.Error(), "now is a value") {
		t.Fatalf("now(): err %v, want it refused in every dialect", err)
	}
	data, _ := json.Marshal(ruleJSON{Source: `reduce(customer.tags, #acc + 1, 0) == 2`, Kind: "bool"})
	var r Rule
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("a pinned rule an earlier release accepted does not decode: %v", err)
	}
}
