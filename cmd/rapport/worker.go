package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/worker"
)

func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:   "worker",
		Short: "Run journeys and scans: a Temporal worker on task queue rapport, with metrics and /healthz on RAPPORT_METRICS_ADDR",
		Long: `worker connects to Temporal (TEMPORAL_ADDRESS, default localhost:7233;
TEMPORAL_NAMESPACE, default default; TEMPORAL_API_KEY, TEMPORAL_TLS_* and
the Temporal CLI's config profiles, see docs/operators.md, "Connecting to
Temporal") and PostgreSQL (DATABASE_URL), and runs
the Journey and Scan workflows and their activities. Channels come from the
environment (RAPPORT_SMTP_ADDR, RAPPORT_SMS_URL, RAPPORT_WEBHOOK_URL, ...);
with email or SMS it refuses to start unless RAPPORT_PUBLIC_URL is the
absolute https URL of "rapport serve" (the base of unsubscribe links).
Prometheus metrics and /healthz are served on RAPPORT_METRICS_ADDR (default
:9090). RAPPORT_WORKFLOW_CACHE bounds the journeys kept in memory (SDK
sticky cache, default 10,000, about 30 KiB each); evicted journeys are
replayed from history when they wake. SIGINT or SIGTERM stops polling and
lets running activities finish (up to 30s); run as many workers as you like.

At start it waits for PostgreSQL, then for Temporal (and the namespace):
while either is unreachable it retries after 1s, 2s, 4s, ... up to 30s
between attempts (each up to 20% shorter at random), logging every attempt.
SIGINT or SIGTERM while it waits stops it with exit status 0. It exits 1 on
a configuration error (an unparseable DATABASE_URL, RAPPORT_METRICS_ADDR
in use, ...). See docs/operators.md, "Supervising the worker".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			return worker.Run(ctx, worker.ConfigFromEnv(), log)
		},
	})
}
