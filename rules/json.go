package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ruleJSON is how a rule travels inside a pinned plan: its source and the
// kind it was compiled for. The compiled program is not portable, so it is
// rebuilt from the source on decoding.
type ruleJSON struct {
	Source string `json:"source"`
	Kind   string `json:"kind"`
}

// MarshalJSON writes the rule as {"source": ..., "kind": "bool|number|text"}.
func (r *Rule) MarshalJSON() ([]byte, error) {
	return json.Marshal(ruleJSON{Source: r.Source, Kind: r.Kind.String()})
}

// UnmarshalJSON compiles the rule again from its source, as a rule of a
// journey already running (CompileStarted). A rule that does not compile is
// an error naming the rule, never a nil program.
func (r *Rule) UnmarshalJSON(data []byte) error {
	var j ruleJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // a field from a newer Rapport would change the rule's meaning
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("decode rule: %w", err)
	}
	kind, err := parseKind(j.Kind)
	if err != nil {
		return fmt.Errorf("decode rule %q: %w", j.Source, err)
	}
	compiled, err := CompileStarted(j.Source, kind)
	if err != nil {
		return fmt.Errorf("decode rule %q: %w", j.Source, err)
	}
	*r = *compiled
	return nil
}

func parseKind(s string) (Kind, error) {
	for _, k := range []Kind{Bool, Number, Text} {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown rule kind %q (want bool, number or text)", s)
}
