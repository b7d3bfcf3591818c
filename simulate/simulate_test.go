package simulate

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/simulate/simfile"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/workflows"
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
		ev := filepath.Join("testdata", "simulate", name+".events.yaml")
		cf := filepath.Join("testdata", "simulate", name+".customer.json")
		if fileExists(ev) || fileExists(cf) {
			c := simCase{name: name + "+events", playbook: f}
			if fileExists(ev) {
				c.events = ev
			} else {
				c.name = name + "+customer"
			}
			if fileExists(cf) {
				c.customer = cf
			}
			cases = append(cases, c)
		}
	}
	return cases
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (c simCase) run(t testing.TB) *Result {
	plan, err := engine.CompileFile(c.playbook)
	if err != nil {
		t.Fatal(err)
	}
	// Production's default global frequency cap, as `rapport simulate` sets it.
	cfg := store.DefaultConfig()
	mem := activities.NewMemory()
	mem.GlobalCapMax, mem.GlobalCapPer = cfg.CapMax, cfg.CapPer
	opts := Options{Customer: workflows.SampleCustomer(DefaultStart), Memory: mem}
	if c.customer != "" {
		data, err := os.ReadFile(c.customer)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := simfile.ParseCustomer(c.customer, data)
		if err != nil {
			t.Fatal(err)
		}
		opts.Customer, opts.Consents = cf.Customer, cf.Consents
	}
	if c.events != "" {
		data, err := os.ReadFile(c.events)
		if err != nil {
			t.Fatal(err)
		}
		if opts.Events, err = simfile.ParseEvents(c.events, data); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Run(plan, opts)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return res
}

// Every sample playbook simulates to completion, reproducibly, and the
// output matches its golden file (go test ./simulate -run Golden -update).
func TestSimulateGolden(t *testing.T) {
	for _, c := range simCases(t) {
		t.Run(c.name, func(t *testing.T) {
			res := c.run(t)
			if why := res.Failure(); why != "" {
				t.Fatalf("journey failed: %s", why)
			}
			if len(res.Journeys) > 0 && res.Final.Status == "active" && res.Horizon == 0 {
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

// Each send line carries the message as rendered for the customer: the
// text output shows its subject and first lines, --json its subject and
// whole text, and WriteHTML writes its HTML body to a file.
func TestSimulateMessages(t *testing.T) {
	res := simCase{name: "winback", playbook: "../playbooks/winback.yaml"}.run(t)
	var sends []Line
	for _, l := range res.Lines() {
		if l.Action == "send" {
			sends = append(sends, l)
		}
	}
	if len(sends) == 0 || sends[0].Message == nil || sends[0].Message.Subject != "Ada，好久不见" {
		t.Fatalf("first send line: %+v", sends)
	}
	first := sends[0].String()
	if !strings.Contains(first, "\n    subject: Ada，好久不见\n    | 距离您上次购买已经 120 天了。") {
		t.Errorf("text output of the first send:\n%s", first)
	}
	j, err := sends[0].MarshalJSON()
	if err != nil || !strings.Contains(string(j), `"subject":"Ada，好久不见","text":"距离您上次购买已经 120 天了。`) {
		t.Errorf("json of the first send: %s %v", j, err)
	}
	// Only winback_offer's en variant has an HTML part.
	if paths, err := res.WriteHTML(t.TempDir()); err != nil || len(paths) != 0 {
		t.Errorf("html files of a zh customer: %v %v", paths, err)
	}
	plan, err := engine.CompileFile("../playbooks/winback.yaml")
	if err != nil {
		t.Fatal(err)
	}
	en := workflows.SampleCustomer(DefaultStart)
	en.Locale = "en"
	if res, err = Run(plan, Options{Customer: en}); err != nil {
		t.Fatal(err)
	}
	paths, err := res.WriteHTML(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 1 || filepath.Base(paths[0]) != "002-offer-winback_offer.en.html" {
		t.Fatalf("html files: %v", paths)
	}
	body, err := os.ReadFile(paths[0])
	if err != nil || !strings.Contains(string(body), "<p>Use code <b>WB-") {
		t.Errorf("html body: %s %v", body, err)
	}
}

// A text of more lines than the preview shows says how many it leaves
// out; blank lines are not counted.
func TestMessageLines(t *testing.T) {
	got := messageLines("", "a\n\nb\nc\nd\ne\n")
	if want := "\n    | a\n    | b\n    | c\n    | … (2 more lines)"; got != want {
		t.Errorf("messageLines = %q, want %q", got, want)
	}
}
