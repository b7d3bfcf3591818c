package engine

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

const schemaPath = "../schema/playbook.schema.json"

func loadSchemaJSON(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	return s
}

// schemaObject returns the schema of mapping kind name: the root for
// "playbook", else $defs[name].
func schemaObject(s map[string]any, name string) map[string]any {
	if name == "playbook" {
		return s
	}
	obj, _ := s["$defs"].(map[string]any)[name].(map[string]any)
	return obj
}

func sortedKeys(m map[string]any) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedCopy(list []string) []string {
	out := slices.Clone(list)
	sort.Strings(out)
	return out
}

func strings_(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestSchemaMatchesParser keeps schema/playbook.schema.json and the
// parser's key tables in step, in both directions.
func TestSchemaMatchesParser(t *testing.T) {
	s := loadSchemaJSON(t)
	for name, keys := range mappingKeys {
		obj := schemaObject(s, name)
		if obj == nil {
			t.Errorf("schema has no $defs/%s", name)
			continue
		}
		if obj["additionalProperties"] != false {
			t.Errorf("schema %s: additionalProperties must be false", name)
		}
		props, _ := obj["properties"].(map[string]any)
		if got, want := sortedKeys(props), sortedCopy(keys); !slices.Equal(got, want) {
			t.Errorf("schema %s properties %v, parser accepts %v", name, got, want)
		}
		var req []string
		if r, ok := obj["required"]; ok {
			req = strings_(r)
		}
		if got, want := sortedCopy(req), sortedCopy(requiredKeys[name]); !slices.Equal(got, want) {
			t.Errorf("schema %s required %v, parser requires %v", name, got, want)
		}
	}
	for name, def := range s["$defs"].(map[string]any) {
		obj := def.(map[string]any)
		_, hasProps := obj["properties"]
		_, openMap := obj["additionalProperties"].(map[string]any) // e.g. template: locale → variant
		if hasProps && !openMap {
			if _, ok := mappingKeys[name]; !ok {
				t.Errorf("schema $defs/%s has properties the parser does not know", name)
			}
		}
	}
}

func TestSchemaEnumsMatchParser(t *testing.T) {
	s := loadSchemaJSON(t)
	prop := func(obj, key string) map[string]any {
		return schemaObject(s, obj)["properties"].(map[string]any)[key].(map[string]any)
	}
	// oneOfRequired lists the first required key of each oneOf
	// alternative: the form (trigger kind, step action) it stands for.
	oneOfRequired := func(obj string) []string {
		var out []string
		for _, alt := range schemaObject(s, obj)["oneOf"].([]any) {
			out = append(out, strings_(alt.(map[string]any)["required"])[0])
		}
		return out
	}
	var stages []string
	for _, st := range Stages {
		stages = append(stages, string(st))
	}
	for _, tc := range []struct {
		what      string
		got, want []string
	}{
		{"stage", strings_(prop("playbook", "stage")["enum"]), stages},
		{"trigger forms", oneOfRequired("trigger"), triggerForms},
		{"trigger dates", strings_(prop("trigger", "date")["enum"]), triggerDates},
		{"reentry", strings_(prop("entry", "reentry")["enum"]), reentryValues},
		{"cap action", strings_(prop("frequency_cap", "action")["enum"]), capActions},
		{"step actions", oneOfRequired("step"), actionKeys},
		{"channels", strings_(prop("send", "channel")["enum"]), channels},
		{"coupon kinds", strings_(prop("coupon", "kind")["enum"]), couponKinds},
		{"priorities", strings_(prop("task", "priority")["enum"]), priorities},
		{"customer stages", strings_(prop("update", "stage")["enum"]), CustomerStages},
	} {
		if !slices.Equal(sortedCopy(tc.got), sortedCopy(tc.want)) {
			t.Errorf("%s: schema %v, parser %v", tc.what, tc.got, tc.want)
		}
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("playbook.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("playbook.schema.json")
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	return sch
}

// yamlInstance turns a YAML playbook into the JSON value a schema
// validator (or an editor) sees.
func yamlInstance(t *testing.T, src []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func TestSamplesValidateAgainstSchema(t *testing.T) {
	sch := compileSchema(t)
	for _, path := range samplePaths(t) {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(yamlInstance(t, src)); err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
		}
	}
}

// TestSchemaRejectsBrokenShapes checks the schema catches the shape errors
// an editor should underline (the semantic ones are the compiler's job).
func TestSchemaRejectsBrokenShapes(t *testing.T) {
	sch := compileSchema(t)
	for _, name := range []string{
		"unknown top-level key with suggestion", "missing trigger", "two trigger forms",
		"bad duration", "bad time of day", "step with two actions", "step with no action",
		"wait for event without timeout", "send with bad channel and unknown key",
		"reentry after without cooldown and holdout out of range", "template missing en",
		"then without if and if without then", "points with award and deduct", "bad locale",
	} {
		i := slices.IndexFunc(brokenCases, func(c struct {
			name string
			src  string
			want []string
		}) bool {
			return c.name == name
		})
		if i < 0 {
			t.Fatalf("no broken case %q", name)
		}
		if err := sch.Validate(yamlInstance(t, []byte(brokenCases[i].src))); err == nil {
			t.Errorf("%s: schema accepted it", name)
		}
	}
}
