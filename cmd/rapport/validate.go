package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/playbooktest"
)

func init() {
	cmd := &cobra.Command{
		Use:   "validate [--json] PATH...",
		Short: "Check playbooks (files, or directories of *.yaml / *.yml) and print every error as path:line:col: message",
		Args:  cobra.MinimumNArgs(1),
		RunE:  runValidate,
	}
	cmd.Flags().Bool("json", false, "print the errors as a JSON array of {file, line, col, message}")
	rootCmd.AddCommand(cmd)
}

// jsonDiagnostic is the --json form of one error.
type jsonDiagnostic struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Message string `json:"message"`
	// Severity is "error" (the playbook is refused) or "warning" (it
	// runs, but probably not as meant).
	Severity string `json:"severity"`
}

func runValidate(cmd *cobra.Command, args []string) error {
	asJSON, _ := cmd.Flags().GetBool("json")
	files, err := playbookFiles(args)
	if err != nil {
		return err
	}
	diags := []jsonDiagnostic{}
	srcs := make([][]byte, len(files))
	for i, f := range files {
		if srcs[i], err = os.ReadFile(f); err != nil {
			return fmt.Errorf("read playbook: %w", err)
		}
	}
	nErrors, warnings := 0, 0
	ws, err := workspaceFor(args)
	var wsDiags engine.Diagnostics
	if errors.As(err, &wsDiags) {
		for _, d := range wsDiags {
			diags = append(diags, jsonDiagnostic{d.File, d.Line, d.Col, d.Msg, "error"})
			nErrors++
		}
	} else if err != nil {
		return err
	}
	plans, errs := engine.CompileAllIn(ws, files, srcs)
	for i, err := range errs {
		var ds engine.Diagnostics
		switch {
		case err == nil:
			for _, d := range plans[i].Warnings {
				diags = append(diags, jsonDiagnostic{d.File, d.Line, d.Col, d.Msg, "warning"})
				warnings++
			}
		case errors.As(err, &ds):
			for _, d := range ds {
				diags = append(diags, jsonDiagnostic{d.File, d.Line, d.Col, d.Msg, "error"})
				nErrors++
			}
		default:
			diags = append(diags, jsonDiagnostic{File: files[i], Line: 1, Col: 1, Message: err.Error(), Severity: "error"})
			nErrors++
		}
	}
	out := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(diags); err != nil {
			return fmt.Errorf("write json: %w", err)
		}
	} else {
		for _, d := range diags {
			label := ""
			if d.Severity == "warning" {
				label = "warning: "
			}
			fmt.Fprintf(out, "%s:%d:%d: %s%s\n", d.File, d.Line, d.Col, label, d.Message)
		}
	}
	if nErrors > 0 {
		if !asJSON {
			fmt.Fprintf(cmd.ErrOrStderr(), "%d %s in %d playbook(s)\n", nErrors, plural(nErrors, "error", "errors"), countFiles(diags, "error"))
		}
		return exitStatus(1)
	}
	if !asJSON {
		fmt.Fprintf(out, "ok: %d %s valid", len(files), plural(len(files), "playbook", "playbooks"))
		if warnings > 0 {
			fmt.Fprintf(out, " (%d %s)", warnings, plural(warnings, "warning", "warnings"))
		}
		fmt.Fprintln(out)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// countFiles counts the files with a diagnostic of severity.
func countFiles(ds []jsonDiagnostic, severity string) int {
	seen := map[string]bool{}
	for _, d := range ds {
		if d.Severity == severity {
			seen[d.File] = true
		}
	}
	return len(seen)
}

// playbookFiles expands the arguments: files are taken as given,
// directories are searched recursively for *.yaml and *.yml, except the
// workspace declaration (engine.WorkspaceFile) and playbook tests
// (playbooktest.IsTestFile, e.g. playbooks/tests/winback_test.yaml), which
// are not playbooks. A file named
// twice (a folder and a file in it) is taken once, so it is not mistaken
// for two playbooks of the same name.
func playbookFiles(args []string) ([]string, error) {
	var files []string
	seen := map[string]bool{}
	add := func(path string) {
		if key := filepath.Clean(path); !seen[key] {
			seen[key] = true
			files = append(files, path)
		}
	}
	for _, arg := range args {
		info, err := os.Stat(arg)
		if err != nil {
			return nil, fmt.Errorf("playbook path: %w", err)
		}
		if !info.IsDir() {
			if !engine.IsWorkspaceFile(arg) {
				add(arg)
			}
			continue
		}
		var found []string
		err = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) && !engine.IsWorkspaceFile(path) && !playbooktest.IsTestFile(path) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", arg, err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("no *.yaml or *.yml playbooks in %s", arg)
		}
		sort.Strings(found)
		for _, f := range found {
			add(f)
		}
	}
	return files, nil
}

// printErr prints a compile error: each diagnostic on its own line.
func printErr(cmd *cobra.Command, err error) {
	fmt.Fprintln(cmd.ErrOrStderr(), err)
}
