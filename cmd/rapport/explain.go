package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/engine"
)

func init() {
	cmd := &cobra.Command{
		Use:   "explain PATH... [--format text|mermaid|dot]",
		Short: "Print the compiled plan of each playbook: trigger, entry, goal and every step with its rules",
		Long: `explain prints the compiled plan of each playbook. --format text (the
default) lists the header and every flat step with its successors;
--format mermaid prints a Mermaid flowchart of the journey (GitHub renders
it in a fenced mermaid block in pull requests and READMEs) and --format dot
a Graphviz digraph: the trigger, every step, the labelled branches (if
conditions, split weights, wait events and timeouts, gotos), exits and the
end, and the goal and exit_when as notes.`,
		Args: cobra.MinimumNArgs(1),
		RunE: runExplain,
	}
	cmd.Flags().String("format", "text", "text, mermaid or dot")
	rootCmd.AddCommand(cmd)
}

func runExplain(cmd *cobra.Command, args []string) error {
	format, _ := cmd.Flags().GetString("format")
	if format != "text" && format != engine.FormatMermaid && format != engine.FormatDot {
		return fmt.Errorf("--format %q: use text, mermaid or dot", format)
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
