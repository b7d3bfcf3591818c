package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/reconcile"
)

func init() {
	cmd := &cobra.Command{
		Use:   "reconcile [--grace D] [--dry-run] [--close-not-found]",
		Short: "Close active enrollments whose workflow has ended without recording an outcome (one pass, now)",
		Long: `reconcile runs one pass of the reconciler the worker schedules
(rapport-reconcile, every RAPPORT_RECONCILE_INTERVAL): it asks Temporal
(TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE) about every enrollment still active
in PostgreSQL (DATABASE_URL) that started more than --grace ago, and closes
those whose workflow has ended (terminated, timed out, failed, canceled,
completed without its outcome recorded), printing each one.

An enrollment whose workflow Temporal does not find (removed by the
namespace's retention, or asked of the wrong TEMPORAL_NAMESPACE) is
listed and left active unless --close-not-found is given. Either way the
pass stops, closing nothing as not found, when TEMPORAL_NAMESPACE holds no
Journey workflow at all. See docs/operators.md, "Reconciler".`,
		Args: cobra.NoArgs,
		RunE: runReconcile,
	}
	cmd.Flags().Duration("grace", reconcile.DefaultGrace, "leave enrollments younger than this alone")
	cmd.Flags().Bool("dry-run", false, "print what would be closed, close nothing")
	cmd.Flags().Bool("close-not-found", false, "close enrollments whose workflow Temporal does not find (removed after the namespace's retention) as failed (workflow not found); without it they are listed and left active")
	rootCmd.AddCommand(cmd)
}

// reconcileOptions are the flags of `rapport reconcile`.
type reconcileOptions struct {
	Grace         time.Duration
	DryRun        bool
	CloseNotFound bool
	Namespace     string // TEMPORAL_NAMESPACE, named in errors
}

func runReconcile(cmd *cobra.Command, _ []string) error {
	var o reconcileOptions
	o.Grace, _ = cmd.Flags().GetDuration("grace")
	o.DryRun, _ = cmd.Flags().GetBool("dry-run")
	o.CloseNotFound, _ = cmd.Flags().GetBool("close-not-found")
	if o.Grace < 0 {
		return fmt.Errorf("--grace %s: must not be negative", o.Grace)
	}
	o.Namespace = temporalNamespace()
	ctx := cmd.Context()
	st, c, codec, err := connectEnv(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	defer c.Close()
	rt := reconcile.Temporal{Client: c, Namespace: o.Namespace, DataConverter: codec.DataConverter()}
	return reconcileNow(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), st, rt, o)
}

// reconcileNow runs one pass and prints it: each enrollment closed (or
// that would be) and each whose workflow is not found and is left active,
// on out; warnings (enrollments skipped) on errOut; then a summary on out.
func reconcileNow(ctx context.Context, out, errOut io.Writer, st reconcile.Store, w reconcile.Workflows, o reconcileOptions) error {
	var mu sync.Mutex
	a := &reconcile.Activities{
		Store:        st,
		Workflows:    w,
		KeepNotFound: !o.CloseNotFound,
		// Warnings (enrollments skipped) go to stderr; closes are printed below.
		Logger: slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnClosed: func(cl reconcile.Closed) {
			mu.Lock()
			defer mu.Unlock()
			printClosed(out, cl)
		},
		OnSkipped: func(s reconcile.Skipped) {
			if s.Why != reconcile.SkipNotFound {
				return // logged as a warning
			}
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(out, "not found, left active %s  %s  customer %s  started %s (--close-not-found closes it)\n",
				s.Enrollment.ID, s.Enrollment.Playbook, s.Enrollment.CustomerID, s.Enrollment.StartedAt.UTC().Format(time.RFC3339))
		},
	}
	counts, err := a.Pass(ctx, reconcile.PassRequest{StartedBefore: time.Now().Add(-o.Grace), DryRun: o.DryRun})
	verb := "closed"
	if o.DryRun {
		verb = "would close"
	}
	var extra string
	if n := counts.SkippedBy[reconcile.SkipNotFound]; n > 0 {
		extra += fmt.Sprintf(", %d not found left active (--close-not-found closes them)", n)
	}
	if n := counts.Skipped - counts.SkippedBy[reconcile.SkipNotFound]; n > 0 {
		extra += fmt.Sprintf(", %d skipped (see the warnings)", n)
	}
	fmt.Fprintf(out, "active enrollments older than %s: %d checked, %d %s, %d still running, %d closed by their journey meanwhile%s\n",
		o.Grace, counts.Checked, counts.Closed, verb, counts.Open, counts.Raced, extra)
	var wrong *reconcile.WrongNamespaceError
	if errors.As(err, &wrong) && wrong.Namespace == "" {
		wrong.Namespace = o.Namespace
	}
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
