package workflows

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/engine"
)

var update = flag.Bool("update", false, "rewrite the simulate golden files")

// simCase is one golden simulation: a sample playbook, optionally with an
// events file from testdata/simulate.
type simCase struct {
	name     string // golden file name without extension
	playbook string
	events   string // path, or empty
	customer string // path of a customer JSON file, or empty for the sample customer
}

func simCases(t testing.TB) []simCase {
	files, err := filepath.Glob("../playbooks/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample playbooks: %v", err)
	}
	var cases []simCase
	for _, f := range files {
		if engine.IsWorkspaceFile(f) {
			continue // the workspace declaration, not a playbook
		}
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		cases = append(cases, simCase{name: name, playbook: f})
		if ev := filepath.Join("testdata", "simulate", name+".events.yaml"); fileExists(ev) {
			c := simCase{name: name + "+events", playbook: f, events: ev}
			if cf := filepath.Join("testdata", "simulate", name+".customer.json"); fileExists(cf) {
				c.customer = cf
			}
			cases = append(cases, c)
		}
	}
	return cases
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (c simCase) run(t testing.TB) *SimResult {
	plan, err := engine.CompileFile(c.playbook)
	if err != nil {
		t.Fatal(err)
	}
	opts := SimOptions{Customer: SampleCustomer(DefaultSimStart)}
	if c.customer != "" {
		data, err := os.ReadFile(c.customer)
		if err != nil {
			t.Fatal(err)
		}
		if opts.Customer, err = ParseCustomer(c.customer, data); err != nil {
			t.Fatal(err)
		}
	}
	if c.events != "" {
		data, err := os.ReadFile(c.events)
		if err != nil {
			t.Fatal(err)
		}
		if opts.Events, opts.Trigger, err = ParseSimEvents(c.events, data); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Simulate(plan, opts)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return res
}

// Every sample playbook simulates to completion, reproducibly, and the
// output matches its golden file (go test ./workflows -run Golden -update).
func TestSimulateGolden(t *testing.T) {
	for _, c := range simCases(t) {
		t.Run(c.name, func(t *testing.T) {
			res := c.run(t)
			if res.Err != nil {
				t.Fatalf("journey failed: %v", res.Err)
			}
			if (res.Final.Status == "active" && res.Horizon == 0) || res.Final.Status == "" {
				t.Fatalf("journey did not finish: %+v", res.Final)
			}
			var out bytes.Buffer
			if err := res.Write(&out, false); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "simulate", c.name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("simulate %s differs from %s (run with -update after checking):\n--- got\n%s--- want\n%s", c.name, golden, out.String(), want)
			}
		})
	}
}

func TestSimulateJSONLines(t *testing.T) {
	res := simCase{name: "winback", playbook: "../playbooks/winback.yaml"}.run(t)
	var out bytes.Buffer
	if err := res.Write(&out, true); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(res.Log)+1 || !strings.HasPrefix(lines[0], `{"elapsed":"+0s","at":"2026-01-05T09:00:00Z","step":"entry"`) ||
		!strings.Contains(lines[len(lines)-1], `"outcome":"exited"`) {
		t.Fatalf("json output:\n%s", out.String())
	}
}

func TestParseSimEventsErrors(t *testing.T) {
	cases := map[string]string{
		"- { at: 5d }":                      "ev.yaml:1: event 1: missing key event",
		"- { event: purchase }":             "ev.yaml:1: event 1: missing key at",
		"- { at: 5x, event: purchase }":     "ev.yaml:1: event 1: at: invalid duration",
		"- { at: 5d, event: p, amont: 3 }":  `ev.yaml:1: event 1: unknown key "amont"`,
		"at: 5d":                            "ev.yaml:1: expected a list of events",
		"- { at: 1d, event: a }\n- nothing": "ev.yaml:2: event 2: expected a mapping",
	}
	for src, want := range cases {
		_, _, err := ParseSimEvents("ev.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", src, err, want)
		}
	}
	evs, trig, err := ParseSimEvents("ev.yaml", []byte("- { at: 2d, event: b }\n- { at: 1d, event: a, amount: 4, props: { sku: x } }\n- { event: t, trigger: true }\n"))
	if err != nil || len(evs) != 2 || evs[0].Event.Name != "a" || evs[0].At != 24*time.Hour || evs[0].Event.Props["sku"] != "x" || trig == nil || trig.Name != "t" {
		t.Fatalf("parsed %+v, trigger %+v, %v", evs, trig, err)
	}
}

// BenchmarkSimulate measures the wall time of simulating each sample.
func BenchmarkSimulate(b *testing.B) {
	for _, c := range simCases(b) {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				c.run(b)
			}
		})
	}
}
