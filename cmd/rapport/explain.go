package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/engine"
)

func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:   "explain PATH...",
		Short: "Print the compiled plan of each playbook: trigger, entry, goal and every step with its rules",
		Args:  cobra.MinimumNArgs(1),
		RunE:  runExplain,
	})
}

func runExplain(cmd *cobra.Command, args []string) error {
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
		if err := engine.Explain(out, p); err != nil {
			return fmt.Errorf("explain %s: %w", f, err)
		}
	}
	if failed {
		return exitStatus(1)
	}
	return nil
}
