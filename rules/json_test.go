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
