package engine

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestWinbackGolden pins the compiled plan of the win-back sample as the
// dump `rapport explain` prints. Run with -update after an intended change.
func TestWinbackGolden(t *testing.T) {
	p, err := CompileFile(filepath.Join("..", "playbooks", "winback.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := Explain(&got, p); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "winback.golden")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./engine -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("compiled plan differs from %s (rerun with -update if intended):\n%s", golden, got.String())
	}
}

// flow is a playbook exercising every nesting form, to check Next links.
const flow = `playbook: flow
stage: nurture
trigger: { event: signup }
templates:
  hi:
    en: { text: "Hi {{ customer.name }}" }
steps:
  - id: first
    wait: { event: purchase, timeout: 2d }
    on_event:
      - id: thanks
        send: { channel: sms, template: hi }
    on_timeout:
      - split:
          - { name: a, weight: 30, steps: [ { points: { award: 10, reason: bonus } } ] }
          - { name: b, weight: 70 }
  - if: customer.churn_risk
    then:
      - exit: risky
  - id: loop
    wait: 1d
  - if: customer.points < 100
    then:
      - goto: loop
`

func TestFlatteningLinks(t *testing.T) {
	p, err := Compile("flow.yaml", []byte(flow))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range p.Steps {
		ids = append(ids, s.ID)
	}
	wantIDs := "first thanks split_3 points_4 if_5 exit_6 loop if_8 goto_9"
	if got := strings.Join(ids, " "); got != wantIDs {
		t.Fatalf("ids = %s, want %s", got, wantIDs)
	}
	at := func(id string) int { return p.StepIndex[id] }
	checks := []struct {
		what      string
		got, want int
	}{
		{"first.OnEvent", p.Steps[at("first")].Wait.OnEvent, at("thanks")},
		{"first.OnTimeout", p.Steps[at("first")].Wait.OnTimeout, at("split_3")},
		{"thanks.Next continues after the wait", p.Steps[at("thanks")].Next, at("if_5")},
		{"split a", p.Steps[at("split_3")].Split.Branches[0].Start, at("points_4")},
		{"split b (empty) continues after the wait", p.Steps[at("split_3")].Split.Branches[1].Start, at("if_5")},
		{"points.Next", p.Steps[at("points_4")].Next, at("if_5")},
		{"if_5.Then", p.Steps[at("if_5")].If.Then, at("exit_6")},
		{"if_5.Else (none) continues", p.Steps[at("if_5")].If.Else, at("loop")},
		{"exit ends", p.Steps[at("exit_6")].Next, End},
		{"if_8.Else ends the journey", p.Steps[at("if_8")].If.Else, End},
		{"goto target", p.Steps[at("goto_9")].Next, at("loop")},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.what, c.got, c.want)
		}
	}
	if p.Steps[0].Line != 8 || p.Steps[0].Col != 5 {
		t.Errorf("first step at %d:%d, want 8:5", p.Steps[0].Line, p.Steps[0].Col)
	}
}

func TestPlanTemplateLocaleFallback(t *testing.T) {
	src := `playbook: loc
stage: care
trigger: { manual: true }
templates:
  hi:
    zh: { text: "你好" }
    en: { text: "Hello" }
    zh-TW: { text: "妳好" }
steps:
  - send: { channel: sms, template: hi }
`
	p, err := Compile("loc.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ locale, want, text string }{
		{"zh-TW", "zh-TW", "妳好"},
		{"zh-CN", "zh", "你好"},
		{"zh", "zh", "你好"},
		{"fr", "en", "Hello"},
		{"", "en", "Hello"},
	} {
		v, got := p.Template("hi", tc.locale)
		if got != tc.want || v == nil || v.Text != tc.text {
			t.Errorf("Template(hi, %q) = %v, %q; want %q with text %q", tc.locale, v, got, tc.want, tc.text)
		}
	}
	if v, l := p.Template("nope", "en"); v != nil || l != "" {
		t.Errorf("unknown template gave %v, %q", v, l)
	}
	if p.Templates["hi"].Default != "zh" {
		t.Errorf("default locale %q, want the first declared, zh", p.Templates["hi"].Default)
	}
}

func TestRegistry(t *testing.T) {
	var r Registry
	v1, err := Compile("a.yaml", []byte(flow))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := Compile("a.yaml", []byte(flow+"# v2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version == v2.Version {
		t.Fatal("different sources share a version")
	}
	var wg sync.WaitGroup
	for _, p := range []*Plan{v1, v2} {
		wg.Add(1)
		go func() { defer wg.Done(); r.Add(p); r.Names() }()
	}
	wg.Wait()
	r.Add(v2) // make the latest deterministic
	if got, ok := r.Get("flow", v1.Version); !ok || got != v1 {
		t.Errorf("Get v1 = %v, %v", got, ok)
	}
	if got, ok := r.Latest("flow"); !ok || got != v2 {
		t.Errorf("Latest = %v, %v; want v2", got, ok)
	}
	if _, ok := r.Get("flow", "nope"); ok {
		t.Error("Get of an unknown version succeeded")
	}
	if names := r.Names(); len(names) != 1 || names[0] != "flow" {
		t.Errorf("Names = %v", names)
	}
}

func TestCompileCached(t *testing.T) {
	a, err := CompileCached([]byte(flow))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := CompileCached([]byte(flow))
	if a != b {
		t.Error("same source compiled twice")
	}
	if _, err := CompileCached([]byte("playbook: [")); err == nil {
		t.Error("broken source compiled")
	}
	var ds Diagnostics
	if _, err := CompileCached([]byte("stage: care")); !errors.As(err, &ds) {
		t.Errorf("error %T is not Diagnostics", err)
	}
}

// TestAliasBomb checks that YAML aliases cannot make the compiler do
// exponential work: the node budget stops it.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("playbook: bomb\nstage: care\ntrigger: { manual: true }\nx0: &s0 { wait: 1d }\n")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&b, "x%d: &s%d { split: [ { name: a, weight: 50, steps: [*s%d, *s%d, *s%d, *s%d, *s%d] }, { name: b, weight: 50, steps: [*s%d, *s%d, *s%d, *s%d, *s%d] } ] }\n",
			i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	b.WriteString("steps: [*s8]\n")
	start := time.Now()
	_, err := Compile("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "playbook is too large") {
		t.Fatalf("error = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestDiagnosticsFormat(t *testing.T) {
	ds := Diagnostics{{File: "a.yaml", Line: 3, Col: 7, Msg: "boom"}, {File: "a.yaml", Line: 4, Col: 1, Msg: "bang"}}
	if got := ds.Error(); got != "a.yaml:3:7: boom\na.yaml:4:1: bang" {
		t.Errorf("Error() = %q", got)
	}
}

func TestSuggest(t *testing.T) {
	keys := mappingKeys["playbook"]
	for _, tc := range []struct{ word, want string }{
		{"stpes", "steps"}, {"trigers", "trigger"}, {"exitwhen", "exit_when"}, {"zzz", ""}, {"s", ""},
	} {
		if got := suggest(tc.word, keys); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
}
