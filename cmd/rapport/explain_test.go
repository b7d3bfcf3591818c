package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rapport-crm/rapport/engine"
)

// docs/playbooks.md shows each sample's diagram as explain --format
// mermaid prints it; regenerate a block with the command when this fails.
func TestDocsDiagramsMatchExplain(t *testing.T) {
	doc, err := os.ReadFile("../../docs/playbooks.md")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../../playbooks/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, f := range files {
		if engine.IsWorkspaceFile(f) {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		got, err := runRapport(t, "explain", "--format", "mermaid", f)
		if err != nil {
			t.Fatal(err)
		}
		block := "### " + name + "\n\n```mermaid\n" + got + "```\n"
		if !strings.Contains(string(doc), block) {
			t.Errorf("docs/playbooks.md has no up-to-date diagram of %s; the command prints:\n%s", name, block)
		}
	}
	if _, err := runRapport(t, "explain", "--format", "svg", files[0]); err == nil || !strings.Contains(err.Error(), "svg") {
		t.Errorf("--format svg: %v", err)
	}
	if _, err := runRapport(t, "explain", "--format", "text", files[0]); err != nil {
		t.Errorf("--format text: %v", err)
	}
}

// TestExplainShowsScanQuery: for segment and date playbooks, explain ends
// with the query the scan runs at --at — the where rule as SQL over
// indexed columns, each argument, and what only Go decides.
func TestExplainShowsScanQuery(t *testing.T) {
	got, err := runRapport(t, "explain", "--at", "2026-11-26T09:30:00Z", "../../playbooks/winback.yaml", "../../playbooks/birthday.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		// winback: order_count > 0 && days_since_last_purchase > max(90, 2 * purchase_gap_days)
		"scan query at 2026-11-26T09:30:00Z",
		"WHERE c.id > $6::text AND ((c.order_count >= $1::bigint) AND ((c.last_purchase_at <= $3::timestamptz) AND",
		"$3 = now − 91d",
		// birthday at 09:00, where customer.stage != "lapsed": by zone and month-day
		"scan query at 2026-11-26T09:00:00Z",
		"(c.timezone = ANY($1::text[])) AND (((extract(month FROM c.birthday) * 100 + extract(day FROM c.birthday))::integer) = ANY($2::integer[]))",
		`$1 = time zones ["UTC"], where 09:00 fell in the last 1h on 11-26`,
		"exact: the SQL selects exactly the customers the trigger matches",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("explain output lacks %q:\n%s", want, got)
		}
	}

	dir := t.TempDir()
	src := "playbook: morning\nstage: nurture\ntrigger:\n  every: 1h\n  where: customer.tier == \"gold\" && localHour(customer.timezone) == 9\nsteps:\n  - wait: 1h\n"
	if err := os.WriteFile(filepath.Join(dir, "morning.yaml"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = runRapport(t, "explain", "--at", "2026-11-26T09:00:00Z", filepath.Join(dir, "morning.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"AND (c.tier = $1::text)", "not exact", "- localHour(customer.timezone) == 9"} {
		if !strings.Contains(got, want) {
			t.Errorf("explain output lacks %q:\n%s", want, got)
		}
	}
	if _, err := runRapport(t, "explain", "--at", "tomorrow", filepath.Join(dir, "morning.yaml")); err == nil || !strings.Contains(err.Error(), "--at") {
		t.Errorf("--at tomorrow: %v, want an error naming --at", err)
	}
}
