package main

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/reconcile"
	"github.com/rapport-crm/rapport/worker"
)

func init() {
	cmd := &cobra.Command{
		Use:   "reconcile [--grace D] [--dry-run]",
		Short: "Close active enrollments whose workflow has ended without recording an outcome (one pass, now)",
		Long: `reconcile runs one pass of the reconciler the worker schedules
(rapport-reconcile, every RAPPORT_RECONCILE_INTERVAL): it asks Temporal
(TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE) about every enrollment still active
in PostgreSQL (DATABASE_URL) that started more than --grace ago, and closes
those whose workflow has ended (terminated, timed out, failed, canceled,
completed without its outcome recorded, or removed by retention), printing
each one. See docs/operators.md, "Reconciler".`,
		Args: cobra.NoArgs,
		RunE: runReconcile,
	}
	cmd.Flags().Duration("grace", reconcile.DefaultGrace, "leave enrollments younger than this alone")
	cmd.Flags().Bool("dry-run", false, "print what would be closed, close nothing")
	rootCmd.AddCommand(cmd)
}

func runReconcile(cmd *cobra.Command, _ []string) error {
	grace, _ := cmd.Flags().GetDuration("grace")
	dry, _ := cmd.Flags().GetBool("dry-run")
	if grace < 0 {
		return fmt.Errorf("--grace %s: must not be negative", grace)
	}
	ctx := cmd.Context()
	st, c, err := connectEnv(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	defer c.Close()
	out := cmd.OutOrStdout()
	var mu sync.Mutex
	a := &reconcile.Activities{
		Store:     st,
		Workflows: reconcile.Temporal{Client: c, Namespace: worker.ConfigFromEnv().Namespace},
		// Warnings (enrollments skipped) go to stderr; closes are printed below.
		Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnClosed: func(cl reconcile.Closed) {
			mu.Lock()
			defer mu.Unlock()
			printClosed(out, cl)
		},
	}
	counts, err := a.Pass(ctx, reconcile.PassRequest{StartedBefore: time.Now().Add(-grace), DryRun: dry})
	verb := "closed"
	if dry {
		verb = "would close"
	}
	skipped := ""
	if counts.Skipped > 0 {
		skipped = fmt.Sprintf(", %d skipped (see the warnings)", counts.Skipped)
	}
	fmt.Fprintf(out, "active enrollments older than %s: %d checked, %d %s, %d still running, %d closed by their journey meanwhile%s\n",
		grace, counts.Checked, counts.Closed, verb, counts.Open, counts.Raced, skipped)
	return err
}

// printClosed prints one line per enrollment, e.g.
// "closed 0196…  winback  customer ada  workflow terminated → failed (workflow terminated: bad deploy)"
// or "closed 0197…  welcome  customer li  workflow completed → converted (goal purchase)".
func printClosed(w io.Writer, c reconcile.Closed) {
	verb := "closed"
	if c.DryRun {
		verb = "would close"
	}
	fmt.Fprintf(w, "%s %s  %s  customer %s  workflow %s → %s (%s)\n",
		verb, c.Enrollment.ID, c.Enrollment.Playbook, c.Enrollment.CustomerID, c.Ended, c.Status, c.Reason)
}
