package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
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
		{"null set rule", func(m map[string]any) {
			set := stepOf(m, "update")["update"].(map[string]any)["set"].(map[string]any)
			for k := range set {
				set[k] = nil
			}
		}, ": no rule"},
		{"rule of the wrong kind", func(m map[string]any) {
			stepOf(m, "if")["if"].(map[string]any)["cond"] = map[string]any{"source": "1", "kind": "number"}
		}, "if: a number rule where a bool rule belongs"},
		{"unknown wait kind", func(m map[string]any) { stepOf(m, "wait")["wait"].(map[string]any)["kind"] = "forever" }, `wait kind "forever" is not one of`},
		{"unknown channel", func(m map[string]any) { stepOf(m, "send")["send"].(map[string]any)["channel"] = "fax" }, `channel "fax" is not one of`},
		{"unknown reentry", func(m map[string]any) { plan(m)["entry"].(map[string]any)["reentry"] = "sometimes" }, `reentry "sometimes" is not one of`},
		{"unknown field", func(m map[string]any) { stepOf(m, "send")["send"].(map[string]any)["priority"] = "high" }, `unknown field "priority"`},
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
			if newer := errors.Is(err, ErrNewerFormat); newer != (tc.name == "unknown field" || tc.name == "future format") {
				t.Fatalf("err %v: ErrNewerFormat %v", err, newer)
			}
		})
	}
}

func plan(m map[string]any) map[string]any { return m["plan"].(map[string]any) }

// stepOf is the first step of kind in the plan m.
func stepOf(m map[string]any, kind string) map[string]any {
	for _, s := range plan(m)["steps"].([]any) {
		if s := s.(map[string]any); s["kind"] == kind {
			return s
		}
	}
	panic("no " + kind + " step in the sample")
}

func step(m map[string]any, i int) map[string]any {
	return plan(m)["steps"].([]any)[i].(map[string]any)
}

// TestEveryPlanFieldIsPinned walks the Plan type: every field reachable
// from it is written by Pin (has a JSON name), except the source and file
// name, which the journey carries beside the plan, and the warnings, which
// are for validate. A field added without a
// tag, or tagged "-", would be lost between compiling and running.
func TestEveryPlanFieldIsPinned(t *testing.T) {
	skip := map[string]bool{"Plan.Source": true, "Plan.File": true, "Plan.Warnings": true}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] || ty == reflect.TypeOf(rules.Rule{}) || ty.PkgPath() != reflect.TypeOf(Plan{}).PkgPath() {
			return
		}
		seen[ty] = true
		for f := range ty.Fields() {
			name := ty.Name() + "." + f.Name
			if skip[name] {
				continue
			}
			tag := f.Tag.Get("json")
			if tag == "" || tag == "-" || strings.HasPrefix(tag, "-,") {
				t.Errorf("%s has no JSON name (tag %q): Pin would not carry it", name, tag)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeOf(Plan{}))
	if len(seen) < 10 {
		t.Fatalf("walked %d types: the walk does not reach the steps", len(seen))
	}
}

// TestCompileStartedLoadsWhatAnEarlierReleaseAccepted: a playbook whose
// rule and placeholder use reduce (accepted before 2026-11-25, refused
// since) no longer validates, but compiles for the journeys that started
// on it, and its text renders.
func TestCompileStartedLoadsWhatAnEarlierReleaseAccepted(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "started_rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err = Compile("old.yaml", src); err == nil || !strings.Contains(err.Error(), "reduce() is not allowed in rules") {
		t.Fatalf("Compile: err %v, want today's rules to refuse reduce", err)
	}
	p, err := CompileStarted(src)
	if err != nil {
		t.Fatalf("CompileStarted: %v", err)
	}
	if p.Version != VersionOf(src) || p.Steps[0].If == nil {
		t.Fatalf("plan %+v", p)
	}
	env := rules.NewEnv(rules.Customer{Tags: []string{"a", "b", "c"}}, rules.Event{}, time.Now())
	got, err := RenderText(p.Templates["hi"].Variants["en"].Text, &env)
	if err != nil || got != "You have 3 tags" {
		t.Fatalf("render: %q, %v", got, err)
	}
	if err := CheckText("{{ reduce(customer.tags, #acc + 1, 0) }}"); err == nil {
		t.Fatal("CheckText accepts reduce after the text rendered: the caches mix today's and earlier rules")
	}
}
