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
