package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/devenv"
)

func init() {
	d := devenv.DefaultDevOptions()
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole product on this machine: Temporal dev server, PostgreSQL, mail catcher, worker, API, sample playbooks and demo data",
		Long: `dev uses the Temporal server at TEMPORAL_ADDRESS (or the Temporal CLI's
config profile, TLS and API key included) when one answers, and
otherwise starts "temporal server start-dev" there (never for settings
with TLS or an API key) (installing the CLI with
go install when it is missing) with the Web UI and Rapport's search
attributes. It creates and migrates the database at DATABASE_URL (default:
the local PostgreSQL), catches all mail in process (listed over HTTP),
deploys the sample playbooks, runs the worker and the event API in process,
seeds demo customers and events, and prints what to open. Ctrl-C stops
everything it started. Development only: the API key defaults to dev-key.

Temporal payloads are encrypted (RAPPORT_PAYLOAD_KEYS, else a key generated
once and kept in the state dir's payload-keys file); the dev server's Web UI
decodes them through the API's /codec endpoint, which rapport dev serves
without a key on a loopback address only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			d.Out = cmd.OutOrStdout()
			dev, err := devenv.StartDev(ctx, d)
			if err != nil {
				return err
			}
			defer func() {
				fmt.Fprintln(cmd.OutOrStdout(), "stopping: worker, API, mail catcher, and the Temporal dev server if rapport dev started it")
				dev.Close()
			}()
			dev.PrintWhatToOpen()
			devenv.Wait(ctx, d.ExitAfter)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&d.TemporalAddress, "temporal-address", d.TemporalAddress, "Temporal frontend to use, or to start a dev server on (default: TEMPORAL_ADDRESS, the config profile, else 127.0.0.1:7233)")
	f.IntVar(&d.UIPort, "ui-port", d.UIPort, "Web UI port of the dev server rapport dev starts")
	f.StringVar(&d.StateDir, "state-dir", d.StateDir, "where the dev server keeps its database and log")
	f.StringVar(&d.DatabaseURL, "database-url", d.DatabaseURL, "PostgreSQL URL (the database is created if missing)")
	f.StringVar(&d.PlaybookDir, "playbooks", d.PlaybookDir, `directory of playbooks to deploy ("" deploys none)`)
	f.StringVar(&d.APIAddr, "listen", d.APIAddr, "event API address")
	f.StringVar(&d.SMTPAddr, "smtp", d.SMTPAddr, "mail catcher SMTP address")
	f.StringVar(&d.MailAddr, "mail", d.MailAddr, "mail catcher web address")
	f.StringVar(&d.MetricsAddr, "metrics", d.MetricsAddr, `metrics and /healthz address ("off" disables)`)
	f.BoolVar(&d.Seed, "seed", d.Seed, "seed demo customers and send demo events")
	f.DurationVar(&d.ExitAfter, "exit-after", 0, "stop after this long (smoke tests); 0 runs until Ctrl-C")
	rootCmd.AddCommand(cmd)
}
