package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/pushdown"
	"github.com/rapport-crm/rapport/scan"
	"github.com/rapport-crm/rapport/store"
)

func init() {
	cmd := &cobra.Command{
		Use:   "explain PATH... [--format text|mermaid|dot] [--at RFC3339]",
		Short: "Print the compiled plan of each playbook: trigger, entry, goal and every step with its rules",
		Long: `explain prints the compiled plan of each playbook. --format text (the
default) lists the header and every flat step with its successors;
--format mermaid prints a Mermaid flowchart of the journey (GitHub renders
it in a fenced mermaid block in pull requests and READMEs) and --format dot
a Graphviz digraph: the trigger, every step, the labelled branches (if
conditions, split weights, wait events and timeouts, gotos), exits and the
end, and the goal and exit_when as notes.

For a segment or date playbook the text format ends with the query its
scan runs at --at (default: now): the SQL the trigger was compiled to, what
each argument is, and whether the SQL is exact or which parts only the
scan's Go check decides. Anniversaries are selected by the customers' time
zones, which a scan reads from the database; explain shows them for
customers in UTC, and a date trigger's query at its time of day in UTC on
the date of --at.`,
		Args: cobra.MinimumNArgs(1),
		RunE: runExplain,
	}
	cmd.Flags().String("format", "text", "text, mermaid or dot")
	cmd.Flags().String("at", "", "scan time of the query shown (RFC 3339; default now)")
	rootCmd.AddCommand(cmd)
}

func runExplain(cmd *cobra.Command, args []string) error {
	format, _ := cmd.Flags().GetString("format")
	if format != "text" && format != engine.FormatMermaid && format != engine.FormatDot {
		return fmt.Errorf("--format %q: use text, mermaid or dot", format)
	}
	at := time.Now().UTC().Truncate(time.Second)
	if v, _ := cmd.Flags().GetString("at"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return fmt.Errorf("--at %q: want an RFC 3339 time such as 2026-11-26T09:00:00Z", v)
		}
		at = t
	}
	files, err := playbookFiles(args)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	failed := false
	for i, f := range files {
		p, err := compileFileIn(f)
		if err != nil {
			printErr(cmd, err)
			failed = true
			continue
		}
		if i > 0 {
			fmt.Fprintln(out)
		}
		if format == "text" {
			err = engine.Explain(out, p)
			if err == nil {
				err = explainScan(out, p, at)
			}
		} else {
			err = engine.Diagram(out, p, format, nil)
		}
		if err != nil {
			return fmt.Errorf("explain %s: %w", f, err)
		}
	}
	if failed {
		return exitStatus(1)
	}
	return nil
}

// explainScan writes the query a scan of a segment or date playbook runs
// at now (a date trigger's: at its time of day on now's date, in UTC),
// for customers in UTC, with what each argument is and what only the Go
// check decides.
func explainScan(w io.Writer, p *engine.Plan, now time.Time) error {
	if p.Trigger.Kind != engine.TriggerSegment && p.Trigger.Kind != engine.TriggerDate {
		return nil
	}
	if p.Trigger.Kind == engine.TriggerDate {
		// The slot in which the trigger is due for customers in UTC.
		d := now.UTC()
		now = time.Date(d.Year(), d.Month(), d.Day(), p.Trigger.At.Hour(), p.Trigger.At.Minute(), 0, 0, time.UTC)
	}
	pred := scan.Selection(p).Bind(now, pushdown.Zones{Birthday: []string{"UTC"}, Signup: []string{"UTC"}})
	var b strings.Builder
	fmt.Fprintf(&b, "  scan query at %s (keyset pages of %d; $%d = now, $%d = last id read, $%d = page size):\n",
		now.UTC().Format(time.RFC3339), scan.DefaultPageSize, len(pred.Args)+1, len(pred.Args)+2, len(pred.Args)+3)
	for _, line := range strings.Split(store.CandidateSQL(pred), "\n") {
		b.WriteString("    " + strings.TrimSpace(line) + "\n")
	}
	pred.Explain(&b, "    ")
	_, err := io.WriteString(w, b.String())
	return err
}
