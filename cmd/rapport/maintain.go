package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/worker"
)

func init() {
	cmd := &cobra.Command{
		Use:   "maintain [--dry-run]",
		Short: "Upkeep of PostgreSQL: create next month's events partition, age out events and messages past their retention (one pass, now)",
		Long: `maintain runs one pass of upkeep on DATABASE_URL:

  - creates the events partitions of this month and the next (UTC), so
    that writers seldom create one;
  - with RAPPORT_EVENT_RETENTION_MONTHS=N, drops the events of every month
    before the N whole months preceding this one (whole partitions,
    detached concurrently), and deletes their event ids and the anonymous
    visitors' events of that time;
  - with RAPPORT_MESSAGE_RETENTION_MONTHS=M, deletes the messages (the
    contact log) created before the M whole months preceding this one,
    with their status history; queued messages and those of journeys still
    running are kept. M must cover the frequency cap's window
    (RAPPORT_FREQUENCY_CAP);
  - deletes the notes of journey starts older than 30 days (a start that
    never ran leaves its note, which only costs its customer's events a
    needless signal).

Unset or 0 keeps rows forever. Customer metrics, enrollments and their
steps are not aged out. Run it daily (cron, a systemd timer); a pass that
finds nothing to do changes nothing. See docs/operators.md, "Retention".`,
		Args: cobra.NoArgs,
		RunE: runMaintain,
	}
	cmd.Flags().Bool("dry-run", false, "print what would be created and deleted, change nothing")
	rootCmd.AddCommand(cmd)
}

func runMaintain(cmd *cobra.Command, _ []string) error {
	dry, _ := cmd.Flags().GetBool("dry-run")
	cfg, err := store.ConfigFromEnv()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	st, err := store.Open(ctx, worker.ConfigFromEnv().DatabaseURL, cfg)
	if err != nil {
		return fmt.Errorf("%w (DATABASE_URL)", err)
	}
	defer st.Close()
	r, err := st.Maintain(ctx, time.Now(), dry)
	printMaintain(cmd.OutOrStdout(), r, dry)
	return err
}

// printMaintain says what a pass did, or would do when dry.
func printMaintain(w io.Writer, r store.MaintainReport, dry bool) {
	verb := map[bool][3]string{false: {"created", "dropped", "deleted"}, true: {"would create", "would drop", "would delete"}}[dry]
	list := func(names []string) string {
		if len(names) == 0 {
			return "none"
		}
		return strings.Join(names, ", ")
	}
	fmt.Fprintf(w, "events partitions %s: %s\n", verb[0], list(r.Created))
	if r.EventsBefore.IsZero() {
		fmt.Fprintln(w, "events: kept forever (RAPPORT_EVENT_RETENTION_MONTHS unset)")
	} else {
		fmt.Fprintf(w, "events before %s: partitions %s: %s; %s %d event ids, %d anonymous events\n",
			r.EventsBefore.Format("2006-01-02"), verb[1], list(r.Dropped), verb[2], r.EventIDs, r.AnonymousEvents)
	}
	if r.MessagesBefore.IsZero() {
		fmt.Fprintln(w, "messages: kept forever (RAPPORT_MESSAGE_RETENTION_MONTHS unset)")
	} else {
		fmt.Fprintf(w, "messages before %s: %s %d\n", r.MessagesBefore.Format("2006-01-02"), verb[2], r.Messages)
	}
	fmt.Fprintf(w, "start notes of journeys that never ran (older than %d days): %s %d\n", int(store.StartNoteRetention.Hours()/24), verb[2], r.StartNotes)
}
