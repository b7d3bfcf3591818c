package engine

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestPinRoundTrip pins every sample, decodes it and requires the same
// program: the decoded plan explains word for word like the compiled one
// and pins to the same bytes.
func TestPinRoundTrip(t *testing.T) {
	for _, path := range samplePaths(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			p, err := CompileFile(path)
			if err != nil {
				t.Fatal(err)
			}
			data, err := Pin(p)
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodePlan(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			again, err := Pin(back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, again) {
				t.Fatalf("pin → decode → pin changed the plan:\n%s\n%s", data, again)
			}
			var want, got bytes.Buffer
			if err := Explain(&want, p); err != nil {
				t.Fatal(err)
			}
			if err := Explain(&got, back); err != nil {
				t.Fatal(err)
			}
			if want.String() != got.String() {
				t.Fatalf("the decoded plan explains differently:\n--- compiled\n%s\n--- decoded\n%s", want.String(), got.String())
			}
		})
	}
}

// TestDecodePlanRejectsBrokenPrograms: a pinned plan that the interpreter
// could not run is an error naming the step, not a panic in a workflow.
func TestDecodePlanRejectsBrokenPrograms(t *testing.T) {
	p, err := CompileFile(filepath.Join("..", "playbooks", "onboarding.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := Pin(p)
	if err != nil {
		t.Fatal(err)
	}
	first := p.Steps[0].ID
	for _, tc := range []struct {
		name   string
		mutate func(m map[string]any)
		want   string
	}{
		{"future format", func(m map[string]any) { m["format"] = PlanFormat + 1 }, "format 2; this engine reads formats 1 to 1"},
		{"no plan", func(m map[string]any) { delete(m, "plan") }, "no plan"},
		{"jump outside", func(m map[string]any) { step(m, 0)["next"] = 999 }, "step 0 (" + first + "): next jumps to 999"},
		{"missing part", func(m map[string]any) { delete(step(m, 0), strings.ToLower(string(p.Steps[0].Kind))) }, "step 0 (" + first + "): a " + string(p.Steps[0].Kind) + " step without its " + string(p.Steps[0].Kind) + " part"},
		{"unknown kind", func(m map[string]any) { step(m, 0)["kind"] = "teleport" }, `unknown kind "teleport"`},
		{"index mismatch", func(m map[string]any) { step(m, 0)["id"] = "renamed" }, "step 0 (renamed): not in the step index"},
		{"index off by one", func(m map[string]any) { plan(m)["step_index"].(map[string]any)[first] = 1.0 }, "step 0 (" + first + "): the step index names step 1"},
		{"bad rule", func(m map[string]any) {
			plan(m)["exit_when"] = map[string]any{"source": "customer.nope", "kind": "bool"}
		}, `customer has no field "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			tc.mutate(m)
			broken, _ := json.Marshal(m)
			_, err := DecodePlan(broken)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func plan(m map[string]any) map[string]any { return m["plan"].(map[string]any) }

func step(m map[string]any, i int) map[string]any {
	return plan(m)["steps"].([]any)[i].(map[string]any)
}
