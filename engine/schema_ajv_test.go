package engine

// The schema checked by an independent validator: ajv (npm, strict mode),
// run by node through peers/schema-check.mjs, over the samples, the broken
// playbooks of broken_test.go, a corpus of broken shapes and probes of
// single values. Wherever JSON Schema can express a rule of validate, the
// two must agree; the disagreements that remain are listed below, each with
// its reason, and the test checks that each still disagrees the stated way
// (so a list never outlives its reason).
//
// Needs node and `npm ci --prefix peers`. Locally the tests skip without
// them; under CI=true they fail.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

const peersDir = "../peers"

// inCI reports whether the tests run in CI, where a missing peer is a
// failure rather than a reason to skip.
func inCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "false" && v != "0"
}

// requireAjv returns the path of node, or skips (fails in CI) when node or
// peers/node_modules is missing.
func requireAjv(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if inCI() {
			t.Fatalf("CI is set but node is not on PATH: the ajv schema checks need node and `npm ci --prefix peers`")
		}
		t.Skip("node is not installed: install node, then run `npm ci --prefix peers` to check the schema with ajv")
	}
	if _, err := os.Stat(filepath.Join(peersDir, "node_modules", "ajv", "package.json")); err != nil {
		if inCI() {
			t.Fatalf("CI is set but peers/node_modules has no ajv: .ci/run must run `npm ci --prefix peers` (%v)", err)
		}
		t.Skip("peers/node_modules is missing: run `npm ci --prefix peers` (from the repository root) to check the schema with ajv")
	}
	return node
}

// ajvVerdict is schema-check.mjs's answer for one document.
type ajvVerdict struct {
	Valid  bool `json:"valid"`
	Errors []struct {
		Path    string `json:"path"`
		Schema  string `json:"schema"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (v ajvVerdict) String() string {
	if v.Valid {
		return "valid"
	}
	var parts []string
	for _, e := range v.Errors {
		parts = append(parts, fmt.Sprintf("%s %s (%s)", orRoot(e.Path), e.Message, e.Schema))
	}
	return "invalid: " + strings.Join(parts, "; ")
}

func orRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// runAjv checks docs (JSON documents) with ajv in one run of node.
func runAjv(t *testing.T, docs [][]byte) []ajvVerdict {
	t.Helper()
	node := requireAjv(t)
	var in bytes.Buffer
	for _, d := range docs {
		if bytes.ContainsAny(d, "\n") {
			t.Fatalf("document is not on one line: %s", d)
		}
		in.Write(d)
		in.WriteByte('\n')
	}
	cmd := exec.Command(node, filepath.Join(peersDir, "schema-check.mjs"), schemaPath)
	cmd.Stdin = &in
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node peers/schema-check.mjs: %v\n%s", err, stderr.String())
	}
	var verdicts []ajvVerdict
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var v ajvVerdict
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("schema-check.mjs printed %q: %v", sc.Text(), err)
		}
		verdicts = append(verdicts, v)
	}
	if len(verdicts) != len(docs) {
		t.Fatalf("schema-check.mjs answered %d documents, sent %d", len(verdicts), len(docs))
	}
	return verdicts
}

// errNotJSON marks playbooks that have no JSON form at all (YAML syntax
// errors, duplicate keys, merge keys): no JSON Schema sees them.
var errNotJSON = errors.New("no JSON form")

// playbookJSON converts a YAML playbook to the JSON document a schema
// validator (or an editor's YAML language server) sees: numbers, booleans
// and nulls as such, every other scalar (timestamps included) as the text
// written.
func playbookJSON(src []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", errNotJSON, err)
	}
	var v any
	if len(doc.Content) > 0 {
		var err error
		if v, err = nodeJSON(doc.Content[0], 0); err != nil {
			return nil, err
		}
	}
	return json.Marshal(v)
}

func nodeJSON(n *yaml.Node, depth int) (any, error) {
	if depth > 200 {
		return nil, fmt.Errorf("%w: nested too deep", errNotJSON)
	}
	switch n.Kind {
	case yaml.AliasNode:
		return nodeJSON(n.Alias, depth+1)
	case yaml.SequenceNode:
		out := []any{}
		for _, c := range n.Content {
			v, err := nodeJSON(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			for k.Kind == yaml.AliasNode {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				return nil, fmt.Errorf("%w: key %s", errNotJSON, describe(k))
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("%w: duplicate key %q", errNotJSON, k.Value)
			}
			v, err := nodeJSON(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, fmt.Errorf("%w: %v", errNotJSON, err)
			}
			return b, nil
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, fmt.Errorf("%w: number %s", errNotJSON, n.Value)
			}
			return f, nil
		}
		return n.Value, nil
	}
	return nil, fmt.Errorf("%w: node kind %v", errNotJSON, n.Kind)
}

// schemaCase is one playbook both validators judge.
type schemaCase struct {
	name string
	src  string
	// validate is the verdict rapport validate must give: "valid",
	// "invalid", or "" for probes, where only agreement matters.
	validate string
}

// agreement runs validate, the Go JSON Schema validator and ajv over cases
// and checks them against each other:
//   - validate gives the case's own verdict, when it states one;
//   - the two schema validators agree with each other (the schema means
//     the same in Go's regexp dialect and ECMAScript's);
//   - ajv agrees with validate, except for the cases in laxer (validate
//     rejects, the schema cannot say why), stricter (validate accepts, the
//     schema does not) and notJSON (no JSON form), which must disagree (or
//     have no JSON form) as stated.
func agreement(t *testing.T, cases []schemaCase, laxer, stricter, notJSON map[string]string) {
	t.Helper()
	goSchema := compileSchema(t)
	var docs [][]byte
	docOf := map[int]int{} // case → index in docs
	for i, tc := range cases {
		raw, err := playbookJSON([]byte(tc.src))
		if err != nil {
			if !errors.Is(err, errNotJSON) {
				t.Fatalf("%s: %v", tc.name, err)
			}
			continue
		}
		docOf[i] = len(docs)
		docs = append(docs, raw)
	}
	verdicts := runAjv(t, docs)
	used := map[string]bool{}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile("t.yaml", []byte(tc.src))
			validateOK := err == nil
			switch {
			case tc.validate == "valid" && !validateOK:
				t.Fatalf("validate rejects it: %v", err)
			case tc.validate == "invalid" && validateOK:
				t.Fatalf("validate accepts it")
			}
			d, isJSON := docOf[i]
			if why, ok := notJSON[tc.name]; ok {
				used[tc.name] = true
				if isJSON {
					t.Errorf("listed as having no JSON form (%s), but it converts to %s", why, docs[d])
				}
				return
			}
			if !isJSON {
				_, err := playbookJSON([]byte(tc.src))
				t.Fatalf("has no JSON form (%v); list it in notJSON with the reason", err)
			}
			v := verdicts[d]
			goErr := goSchema.Validate(mustInstance(t, docs[d]))
			if (goErr == nil) != v.Valid {
				t.Errorf("the schema validators disagree: ajv %s; santhosh-tekuri/jsonschema: %v", v, goErr)
			}
			laxWhy, isLax := laxer[tc.name]
			strictWhy, isStrict := stricter[tc.name]
			used[tc.name] = used[tc.name] || isLax || isStrict
			switch {
			case isLax:
				if validateOK || !v.Valid {
					t.Errorf("listed as a rule the schema cannot express (%s), but validate %s and ajv says %s; take it off the list", laxWhy, verdictWord(validateOK), v)
				}
			case isStrict:
				if !validateOK || v.Valid {
					t.Errorf("listed as stricter in the schema (%s), but validate %s and ajv says %s; take it off the list", strictWhy, verdictWord(validateOK), v)
				}
			case validateOK && !v.Valid:
				t.Errorf("validate accepts it, ajv rejects it: %s\n%s", v, docs[d])
			case !validateOK && v.Valid:
				t.Errorf("validate rejects it, ajv accepts it: express the rule in the schema, or list it with the reason the schema cannot\nvalidate: %v\nJSON: %s", err, docs[d])
			}
		})
	}
	for _, list := range []map[string]string{laxer, stricter, notJSON} {
		for name := range list {
			if !used[name] {
				t.Errorf("listed case %q is not in the corpus", name)
			}
		}
	}
}

func verdictWord(ok bool) string {
	if ok {
		return "accepts it"
	}
	return "rejects it"
}

func mustInstance(t *testing.T, raw []byte) any {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// TestSchemaCompilesUnderAjvStrict compiles the schema with ajv's
// Ajv2020 class in strict mode (schema-check.mjs exits 2 when it does not).
func TestSchemaCompilesUnderAjvStrict(t *testing.T) {
	runAjv(t, nil)
}

// TestSchemaAjvAcceptsSamples: every sample is valid under validate and
// under ajv.
func TestSchemaAjvAcceptsSamples(t *testing.T) {
	var cases []schemaCase
	for _, path := range samplePaths(t) {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, schemaCase{name: filepath.Base(path), src: string(src), validate: "valid"})
	}
	agreement(t, cases, nil, nil, nil)
}

// brokenNotJSON are the broken playbooks of broken_test.go with no JSON form.
var brokenNotJSON = map[string]string{
	"yaml syntax error": "not YAML",
	"duplicate key":     "JSON objects have no duplicate keys; validate reports them",
}

// schemaCannotExpress are the broken playbooks (of broken_test.go and
// schemaBrokenShapes) that validate rejects for a reason JSON Schema cannot
// express: rules and placeholders (a language of their own, type-checked
// against the customer and event fields), references across the playbook
// (templates, goto targets, unique ids and names), sums and comparisons
// between values, and the step graph.
var schemaCannotExpress = map[string]string{
	// rules: parsed and type-checked by expr
	"escapes in a double-quoted rule":     "rule type-checking",
	"misspelled customer field in a rule": "rule type-checking",
	"type error in a quoted rule":         "rule type-checking",
	"error in a block scalar rule":        "rule type-checking",
	"rule is not bool":                    "rule type-checking",
	"unknown name in a rule":              "rule type-checking",
	"update with unquoted text":           "rule type-checking (a bare word is a field name)",
	"coupon value rule of the wrong type": "rule type-checking",
	// placeholders in template texts and task titles
	"unclosed placeholder":               "placeholder parsing",
	"placeholder with a bad field":       "placeholder type-checking",
	"placeholder in a block text":        "placeholder type-checking",
	"placeholder that cannot be printed": "placeholder type-checking",
	"task title with a bad placeholder":  "placeholder type-checking",
	"html with a bad placeholder":        "placeholder type-checking",
	// references across the playbook
	"unknown template":                  "a send names a template declared elsewhere",
	"template defined but never sent":   "every template must be sent somewhere",
	"email template without subject":    "subject required only for templates some send uses by email",
	"duplicate step id":                 "uniqueness across nested step lists",
	"auto id clash":                     "automatic ids depend on step positions",
	"goto to missing step":              "a goto names a step id declared elsewhere",
	"duplicate branch names in a split": "uniqueness of a property among array items",
	// arithmetic and comparisons between values
	"split weights not 100":            "a sum of weights",
	"quiet hours start equals end":     "a comparison of two values",
	"every under an hour in two parts": "a sum of duration parts (the schema catches a single part under 1h, like 30m)",
	"duration too long":                "durations above 2^62 ns (about 146 years) overflow",
	// the step graph
	"unreachable step after exit":                  "reachability",
	"unreachable after if whose branches all exit": "reachability",
	"loop without wait":                            "cycles in the step graph",
	"loop through two gotos":                       "cycles in the step graph",
}

// schemaBrokenShapes are broken playbooks beside broken_test.go's, one per
// shape rule it does not cover; each must be rejected by validate and, but
// for those in schemaCannotExpress, by the schema.
var schemaBrokenShapes = []schemaCase{
	{name: "where on an event trigger", src: `playbook: t
stage: nurture
trigger: { event: signup, where: "true" }
steps:
  - exit: done
`},
	{name: "at on an event trigger", src: `playbook: t
stage: nurture
trigger: { event: signup, at: "09:00" }
steps:
  - exit: done
`},
	{name: "when on a date trigger", src: `playbook: t
stage: care
trigger: { date: birthday, when: "true" }
steps:
  - exit: done
`},
	{name: "where on a manual trigger", src: `playbook: t
stage: nurture
trigger: { manual: true, where: "true" }
steps:
  - exit: done
`},
	{name: "manual false", src: `playbook: t
stage: nurture
trigger: { manual: false }
steps:
  - exit: done
`},
	{name: "manual as text", src: `playbook: t
stage: nurture
trigger: { manual: "true" }
steps:
  - exit: done
`},
	{name: "cron without where", src: `playbook: t
stage: nurture
trigger: { cron: "0 9 * * 1" }
steps:
  - exit: done
`},
	{name: "cron with six fields", src: `playbook: t
stage: nurture
trigger: { cron: "0 0 9 * * 1", where: "true" }
steps:
  - exit: done
`},
	{name: "every 30m", src: `playbook: t
stage: nurture
trigger: { every: 30m, where: "true" }
steps:
  - exit: done
`},
	{name: "every under an hour in two parts", src: `playbook: t
stage: nurture
trigger: { every: 30m29m, where: "true" }
steps:
  - exit: done
`},
	{name: "zero duration", src: `playbook: t
stage: nurture
trigger: { manual: true }
goal: { event: purchase, within: 0d }
steps:
  - exit: done
`},
	{name: "duration with a space", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - wait: 1d 12h
`},
	{name: "month unit outside a wait", src: `playbook: t
stage: nurture
trigger: { manual: true }
goal: { event: purchase, within: 6mo }
steps:
  - wait: 6mo
`},
	{name: "duration too long", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - wait: 99999999w
`},
	{name: "reentry after without cooldown", src: `playbook: t
stage: nurture
trigger: { manual: true }
entry: { reentry: after }
steps:
  - exit: done
`},
	{name: "cooldown without reentry", src: `playbook: t
stage: nurture
trigger: { manual: true }
entry: { cooldown: 30d }
steps:
  - exit: done
`},
	{name: "holdout as quoted text", src: `playbook: t
stage: nurture
trigger: { manual: true }
entry: { holdout: "10" }
steps:
  - exit: done
`},
	{name: "negative holdout", src: `playbook: t
stage: nurture
trigger: { manual: true }
entry: { holdout: -1 }
steps:
  - exit: done
`},
	{name: "quiet hours start equals end", src: `playbook: t
stage: nurture
trigger: { manual: true }
policies:
  quiet_hours: { start: "21:00", end: "21:00" }
steps:
  - exit: done
`},
	{name: "quiet hours without end", src: `playbook: t
stage: nurture
trigger: { manual: true }
policies:
  quiet_hours: { start: "21:00" }
steps:
  - exit: done
`},
	{name: "frequency cap max not whole", src: `playbook: t
stage: nurture
trigger: { manual: true }
policies:
  frequency_cap: { max: 2.5, per: 7d }
steps:
  - exit: done
`},
	{name: "bad topic", src: `playbook: t
stage: nurture
topic: Marketing
trigger: { manual: true }
steps:
  - exit: done
`},
	{name: "stage as a number", src: `playbook: t
stage: 3
trigger: { manual: true }
steps:
  - exit: done
`},
	{name: "description as a list", src: `playbook: t
description: [a, b]
stage: nurture
trigger: { manual: true }
steps:
  - exit: done
`},
	{name: "rule as a mapping", src: `playbook: t
stage: nurture
trigger: { event: signup, when: { a: 1 } }
steps:
  - exit: done
`},
	{name: "empty rule", src: `playbook: t
stage: nurture
trigger: { manual: true }
exit_when:
steps:
  - exit: done
`},
	{name: "no steps", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps: []
`},
	{name: "steps as a mapping", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps: { exit: done }
`},
	{name: "empty then", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - if: customer.churn_risk
    then: []
`},
	{name: "else without then", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - if: customer.churn_risk
    else:
      - exit: done
`},
	{name: "on_event on a wait until", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - wait: { until: "09:00" }
    on_event:
      - exit: done
`},
	{name: "until with a timeout", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - wait: { until: "09:00", timeout: 1d }
`},
	{name: "until and event", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - wait: { until: "09:00", event: purchase, timeout: 1d }
`},
	{name: "wait with neither until nor event", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - wait: { when: "true", timeout: 1d }
`},
	{name: "empty wait", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - wait:
`},
	{name: "split not a list", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - split: { name: a, weight: 100 }
`},
	{name: "split weight zero", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - split:
      - { name: a, weight: 0 }
      - { name: b, weight: 100 }
`},
	{name: "split weight as text", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - split:
      - { name: a, weight: "50" }
      - { name: b, weight: 50 }
`},
	{name: "duplicate branch names in a split", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - split:
      - { name: a, weight: 50 }
      - { name: a, weight: 50 }
`},
	{name: "empty update", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - update: {}
`},
	{name: "empty set", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - update: { set: {} }
`},
	{name: "tags not a list", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - update: { add_tags: vip }
`},
	{name: "capital tag", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - update: { remove_tags: [VIP] }
`},
	{name: "bad tier", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - update: { tier: Gold }
`},
	{name: "points without amount", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - points: { reason: bonus }
`},
	{name: "negative points", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - points: { award: -5, reason: bonus }
`},
	{name: "points as true", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - points: { deduct: true, reason: bonus }
`},
	{name: "zero coupon", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - coupon: { kind: amount, value: 0, expires: 7d }
`},
	{name: "lowercase coupon prefix", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - coupon: { kind: amount, value: 5, expires: 7d, prefix: wb }
`},
	{name: "coupon prefix too long", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - coupon: { kind: amount, value: 5, expires: 7d, prefix: ABCDEFGHIJKLM }
`},
	{name: "bad assignee", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - task: { assignee: Service Desk, title: Call }
`},
	{name: "bad goto target", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - id: top
    wait: 1d
  - goto: Top
`},
	{name: "transactional yes", src: base + `  - send: { channel: email, template: hi, transactional: "yes" }
`},
	{name: "bad template name", src: `playbook: t
stage: nurture
trigger: { manual: true }
templates:
  Hi:
    en: { text: "Hello" }
steps:
  - send: { channel: sms, template: Hi }
`},
	{name: "template without locales", src: `playbook: t
stage: nurture
trigger: { manual: true }
templates:
  hi: {}
steps:
  - send: { channel: sms, template: hi }
`},
	{name: "variant without text", src: `playbook: t
stage: nurture
trigger: { manual: true }
templates:
  hi:
    en: { subject: "Hi" }
steps:
  - send: { channel: sms, template: hi }
`},
	{name: "variant with an unknown key", src: `playbook: t
stage: nurture
trigger: { manual: true }
templates:
  hi:
    en: { text: "Hello", body: "Hello" }
steps:
  - send: { channel: sms, template: hi }
`},
	{name: "unknown key in a wait", src: `playbook: t
stage: nurture
trigger: { manual: true }
steps:
  - wait: { event: purchase, timeout: 1d, timout: 2d }
`},
}

// TestSchemaAjvRejectsBrokenPlaybooks: every broken playbook (of
// broken_test.go and schemaBrokenShapes) is rejected by validate, and by
// ajv unless its error is one the schema cannot express.
func TestSchemaAjvRejectsBrokenPlaybooks(t *testing.T) {
	var cases []schemaCase
	for _, bc := range brokenCases {
		cases = append(cases, schemaCase{name: bc.name, src: bc.src, validate: "invalid"})
	}
	for _, sc := range schemaBrokenShapes {
		sc.validate = "invalid"
		cases = append(cases, sc)
	}
	agreement(t, cases, schemaCannotExpress, nil, brokenNotJSON)
}

// A probe puts each of a list of values into one place of an otherwise
// valid playbook (at %s), so validate and the schema judge the value alone.
type probe struct {
	name   string
	tmpl   string
	values []string // YAML text of each value
}

var valueProbes = []probe{
	{"duration", base + "  - wait: %s\n", []string{
		"3d", "90d", "2w", "36h", "30m", "45s", "1d12h", "1w2d3h4m5s", "1.5d", ".5h", "5.h", "0.5h", "0d1h",
		"0.000001s", "1h0m", `"3d"`,
		"0d", "0", "0h0m", "00d", "0.0h", "3", "d", "3x", "3mo", "1mo2w", "0mo1d", "0mo", "1.5mo", "6M", "3 d", `"1d 12h"`, "-3d", "+3d", "3D", "1.2.3d",
		"3dd", "1e3s", `""`, "1_000d", "3d12", ".d", "1d12h30", "99999999w", `" 3d"`, `"3d "`, "true", "null",
	}},
	{"every", "playbook: t\nstage: nurture\ntrigger: { every: %s, where: \"true\" }\nsteps:\n  - exit: done\n", []string{
		"1h", "60m", "3600s", "1.5h", "24h", "1d", "1w", "30m30m", "0.05d", "2h",
		"59m", "30m", "59.9m", "3599s", "0.5h", ".99h", "0m", "30m29m", "0.01d", "0h59m",
	}},
	{"time of day", base + "  - wait: { until: %s }\n", []string{
		`"09:00"`, `"00:00"`, `"23:59"`, "09:00", `"21:30"`,
		`"24:00"`, `"9:00"`, `"09:60"`, `"0900"`, `"09:00:00"`, `" 09:00"`, `"12:5"`, "9", "null",
	}},
	{"cron", "playbook: t\nstage: nurture\ntrigger: { cron: %s, where: \"true\" }\nsteps:\n  - exit: done\n", []string{
		`"0 9 * * 1"`, `"*/15 * * * *"`, `"0 9 1,15 * MON-FRI"`, `"0 9 * * ?"`, `"0  9 * * 1"`, `" 0 9 * * 1 "`,
		`"0\t9 * * 1"`, `"0 9 * * 1\n"`, `"0 9 L * *"`,
		`"0 9 * *"`, `"0 9 * * * *"`, `"0 9 * * 1!"`, `"@daily"`, `"0 9 * * L#2"`, `""`, "5",
	}},
	{"tag", base + "  - update: { add_tags: [%s] }\n", []string{
		"vip", "tier:gold", "2024-q1", "a-b_c", "3d", `"x"`,
		"VIP", "-x", "_x", `"x y"`, `""`, "null", "x.y", "[a]", "2024", "true",
	}},
	{"coupon prefix", base + "  - coupon: { kind: amount, value: 5, expires: 7d, prefix: %s }\n", []string{
		"WB", "WB2024", "ABCDEFGHIJKL", `"A1"`,
		"ABCDEFGHIJKLM", "wb", "W-B", `""`, "null",
	}},
	{"exit reason", base + "  - exit: %s\n", []string{
		"done", "converted", "won_back", "x1",
		"Done", `"done now"`, "1x", "_x", "won-back", "null", "[done]", "true",
	}},
	{"playbook name", "playbook: %s\nstage: nurture\ntrigger: { manual: true }\nsteps:\n  - exit: done\n", []string{
		"t", "win-back", "win_back", "a" + strings.Repeat("b", 62),
		"1t", "-t", "Win", "a" + strings.Repeat("b", 63), "win.back", `""`, "12",
	}},
	{"holdout", "playbook: t\nstage: nurture\ntrigger: { manual: true }\nentry: { holdout: %s }\nsteps:\n  - exit: done\n", []string{
		"0", "10", "12.5", "50", ".5", "1e1", "1_0",
		"50.5", "60", "-1", `"10"`, "ten", "null", "true", "0x10",
	}},
	{"split weight", base + "  - split:\n      - { name: a, weight: %s }\n      - { name: b, weight: 50 }\n      - { name: c, weight: 0.5 }\n", []string{
		"49.5", "49.50", "4.95e1",
		"0", "-49.5", "150", `"49.5"`, "null",
	}},
	{"frequency cap max", "playbook: t\nstage: nurture\ntrigger: { manual: true }\npolicies: { frequency_cap: { max: %s, per: 7d } }\nsteps:\n  - exit: done\n", []string{
		"1", "3", "2.0", "1e2",
		"0", "-1", "2.5", `"3"`, "three", "null",
	}},
	{"points award", base + "  - points: { award: %s, reason: bonus }\n", []string{
		"10", "0.5", `"event.amount * 0.05"`, `"0"`, "customer.points", "1000000000",
		"0", "-5", "true", "null", "[1]", "1000000001",
	}},
	{"percent coupon value", base + "  - coupon: { kind: percent, value: %s, expires: 7d }\n", []string{
		"100", "10.5", `"customer.points / 10"`, `"150"`,
		"150", "100.5", "0", "null",
	}},
	{"amount coupon value", base + "  - coupon: { kind: amount, value: %s, expires: 7d }\n", []string{
		"150", "0.01", "1000000000",
		"0", "-1", "1000000001",
	}},
	{"enums", base + "  - task: { assignee: rm, title: Call, priority: %s }\n", []string{
		"low", "normal", "high",
		"urgent", "High", `""`, "1",
	}},
	{"locale", "playbook: t\nstage: nurture\ntrigger: { manual: true }\ntemplates:\n  hi:\n    en: { text: x }\n    %s: { text: y }\nsteps:\n  - send: { channel: sms, template: hi }\n", []string{
		"zh", "zh-TW", "pt-BR", "zh-Hant",
		"zh_TW", "ZH", "zh-tw", "chi", "z", "xx",
	}},
	{"set field", base + "  - update: { set: { %s: \"'x'\" } }\n", []string{
		"name", "locale", "timezone", "tier", "attrs.score", "attrs.last_score2",
		"teir", "attrs.Score", "attrs.", "attrs.a.b", "attrs_x", "stage",
	}},
	{"text as a non-string", "playbook: t\nstage: nurture\ntrigger: { manual: true }\ntemplates:\n  hi:\n    en: { text: %s }\nsteps:\n  - send: { channel: sms, template: hi }\n", []string{
		`"Hello"`, "Hello", "2024-01-01",
		"2024", "true", "null",
	}},
}

// probesSchemaStricter are values validate accepts and the schema rejects,
// on purpose: validate reads any scalar as text where it wants text, so
// `true`, `2024` or a spaced " 3d" pass validate where the schema (and the
// editor) asks for a string in the language's form.
var probesSchemaStricter = map[string]string{
	"tag/2024":                  "validate takes a bare number as the tag 2024; the schema asks for a string (quote it)",
	"tag/true":                  "validate takes true as the tag \"true\"; the schema asks for a string",
	"exit reason/true":          "validate takes true as the reason \"true\"; the schema asks for a string",
	"text as a non-string/2024": "validate takes a bare number as the text 2024; the schema asks for a string (quote it)",
	"text as a non-string/true": "validate takes true as the text \"true\"; the schema asks for a string (quote it)",
}

// probesSchemaLaxer are values validate rejects and the schema accepts:
// rules of validate the schema cannot express.
var probesSchemaLaxer = map[string]string{
	"duration/99999999w": "durations above 2^62 ns (about 146 years) overflow",
	"every/30m29m":       "a sum of duration parts under 1h",
	"every/0.01d":        "a fraction of a day under 1h",
	"every/0h59m":        "a sum of duration parts under 1h",
	"holdout/0x10":       "validate does not read YAML hex numbers (0x10); JSON, like an editor, sees 16",
	"locale/xx":          "a well-formed tag whose language no registry knows; a pattern cannot list the languages",
	"locale/chi":         "a three-letter code (ISO 639-2 chi) that validate asks to write as its two-letter form; a pattern cannot list which three-letter codes have one",
}

// TestSchemaAjvAgreesOnValues: for each probe value, validate and ajv give
// the same verdict, but for the listed disagreements.
func TestSchemaAjvAgreesOnValues(t *testing.T) {
	var cases []schemaCase
	for _, p := range valueProbes {
		for _, v := range p.values {
			cases = append(cases, schemaCase{name: p.name + "/" + v, src: fmt.Sprintf(p.tmpl, v)})
		}
	}
	agreement(t, cases, probesSchemaLaxer, probesSchemaStricter, nil)
}
