package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/report"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/worker"
)

func init() {
	cmd := &cobra.Command{
		Use:   "report [PLAYBOOK] [--since DURATION] [--json | --format text|json|mermaid]",
		Short: "Funnel, steps, split variants and holdout lift of deployed playbooks, from PostgreSQL",
		Long: `report reads the enrollments, step records and messages in PostgreSQL
(DATABASE_URL) and prints, per playbook: enrolled, active, completed,
exited, failed and converted enrollments per version, conversion rate and
median time to convert; per step the enrollments that reached it, messages
sent, suppressed by reason, deferred and failed; conversion per split
variant; and the holdout comparison — conversion of treated against
held-out customers, the absolute lift with a 95% confidence interval and a
p-value, or "not enough data" below 30 per group or 5 conversions or
non-conversions in either. docs/metrics.md defines every figure and the
JSON fields.

--format mermaid (with PLAYBOOK) draws the active deployed version's
journey, as explain --format mermaid does, with the live counts on it:
enrolled on the trigger, reached (and sent, for sends) on each step,
converted on the goal.`,
		Args: cobra.MaximumNArgs(1),
		RunE: runReport,
	}
	cmd.Flags().String("since", "", "only enrollments started within this duration, e.g. 30d, 12h, 1d12h (default: all time)")
	cmd.Flags().Bool("json", false, "print JSON (field names documented in docs/metrics.md)")
	cmd.Flags().String("format", "text", "text, json or mermaid (mermaid needs PLAYBOOK)")
	rootCmd.AddCommand(cmd)
}

func runReport(cmd *cobra.Command, args []string) error {
	q := store.ReportQuery{}
	if len(args) == 1 {
		q.Playbook = args[0]
	}
	format, _ := cmd.Flags().GetString("format")
	if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
		format = "json"
	}
	if format != "text" && format != "json" && format != engine.FormatMermaid {
		return fmt.Errorf("--format %q: use text, json or mermaid", format)
	}
	if format == engine.FormatMermaid && q.Playbook == "" {
		return fmt.Errorf("--format mermaid draws one playbook: name it")
	}
	if s, _ := cmd.Flags().GetString("since"); s != "" {
		d, err := rules.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("--since: %w", err)
		}
		q.Since = d
	}
	st, err := openStoreEnv(cmd.Context())
	if err != nil {
		return err
	}
	defer st.Close()
	in, err := st.ReportInput(cmd.Context(), q)
	if err != nil {
		return err
	}
	r := report.Build(in)
	if format == engine.FormatMermaid {
		return reportDiagram(cmd, st, r, q.Playbook)
	}
	if format == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return report.WriteText(cmd.OutOrStdout(), r)
}

// reportDiagram draws the active version of playbook with r's counts.
func reportDiagram(cmd *cobra.Command, st *store.Store, r report.Report, playbook string) error {
	dp, ok, err := st.ActivePlaybook(cmd.Context(), playbook)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("playbook %s is not deployed", playbook)
	}
	plan, err := engine.CompileStarted(dp.Source)
	if err != nil {
		return fmt.Errorf("compile deployed playbook %s: %w", playbook, err)
	}
	return engine.Diagram(cmd.OutOrStdout(), plan, engine.FormatMermaid, report.DiagramCounts(r, playbook))
}

// openStoreEnv opens the store at DATABASE_URL for read-only commands
// (no channels, no Temporal).
func openStoreEnv(ctx context.Context) (*store.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	st, err := store.Open(ctx, worker.ConfigFromEnv().DatabaseURL, store.DefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("%w (DATABASE_URL)", err)
	}
	return st, nil
}
