package rules

import (
	"math"
	"reflect"
	"testing"
	"time"
)

// TestSortedMapFunctionsExactValues pins the Go values keys, values and
// toPairs hand to the rest of a rule: a []string for text keys, expr's
// [key, value] pairs, and one total order for the mixed keys groupBy and
// fromPairs produce.
func TestSortedMapFunctionsExactValues(t *testing.T) {
	attrs := map[string]any{"c": 3, "a": 1, "b": 2}
	jan := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mixed := map[any]any{"x": 1, 2: 2, 1.5: 3, int64(2): 4, true: 5, false: 6, nil: 7, jan.Add(time.Hour): 8, jan: 9, math.NaN(): 10, time.Duration(1): 11}
	tests := []struct {
		name string
		fn   func(any) (any, error)
		in   any
		want any
	}{
		{"keys", sortedKeys, attrs, []string{"a", "b", "c"}},
		{"values", sortedValues, attrs, []any{1, 2, 3}},
		{"toPairs", sortedPairs, attrs, [][2]any{{"a", 1}, {"b", 2}, {"c", 3}}},
		{"keys of a nil map", sortedKeys, map[string]any(nil), []string{}},
		{"keys of another text-keyed map", sortedKeys, map[string]int{"b": 1, "a": 2}, []string{"a", "b"}},
		{"values of another text-keyed map", sortedValues, map[string]int{"b": 1, "a": 2}, []any{2, 1}},
		// nil, no, yes, NaN, then numbers by value (a Duration is a number
		// of nanoseconds; 2 and int64(2) by type name), texts, times.
		{"keys of mixed types", sortedKeys, mixed, []any{nil, false, true, math.NaN(), time.Duration(1), 1.5, 2, int64(2), "x", jan, jan.Add(time.Hour)}},
		{"values of mixed types", sortedValues, mixed, []any{7, 6, 5, 10, 11, 3, 2, 4, 1, 9, 8}},
		{"pairs of groupBy", sortedPairs, map[any][]any{"b": {2}, 1: {1}}, [][2]any{{1, []any{1}}, {"b", []any{2}}}},
	}
	for _, tt := range tests {
		for range 50 {
			got, err := tt.fn(tt.in)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if !equalNaN(got, tt.want) {
				t.Fatalf("%s = %#v, want %#v", tt.name, got, tt.want)
			}
		}
	}
}

// equalNaN is reflect.DeepEqual with NaN equal to NaN.
func equalNaN(a, b any) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	x, ok1 := a.([]any)
	y, ok2 := b.([]any)
	if !ok1 || !ok2 || len(x) != len(y) {
		return false
	}
	for i := range x {
		fx, okx := x[i].(float64)
		fy, oky := y[i].(float64)
		if okx && oky && math.IsNaN(fx) && math.IsNaN(fy) {
			continue
		}
		if !reflect.DeepEqual(x[i], y[i]) {
			return false
		}
	}
	return true
}
