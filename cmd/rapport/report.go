package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/report"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/worker"
)

func init() {
	cmd := &cobra.Command{
		Use:   "report [PLAYBOOK] [--since DURATION] [--json]",
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
JSON fields.`,
		Args: cobra.MaximumNArgs(1),
		RunE: runReport,
	}
	cmd.Flags().String("since", "", "only enrollments started within this duration, e.g. 30d, 12h, 1d12h (default: all time)")
	cmd.Flags().Bool("json", false, "print JSON (field names documented in docs/metrics.md)")
	rootCmd.AddCommand(cmd)
}

func runReport(cmd *cobra.Command, args []string) error {
	q := store.ReportQuery{}
	if len(args) == 1 {
		q.Playbook = args[0]
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
	if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return report.WriteText(cmd.OutOrStdout(), r)
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
