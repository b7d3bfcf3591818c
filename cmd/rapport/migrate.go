package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/store"
)

// migrateCmd applies, lists or rolls back the schema migrations embedded
// in the binary (store/migrations).
var migrateCmd = &cobra.Command{
	Use:   "migrate [up|status|down]",
	Short: "Apply (up, the default), list (status) or roll back one (down) database migration",
	Long: `Manage the PostgreSQL schema. The migrations are part of the binary.

  up      apply every pending migration (safe to run from several workers at once)
  status  list migrations and whether each is applied
  down    roll back the most recent migration

The database is DATABASE_URL (default ` + store.DefaultDatabaseURL + `).`,
	Args:      cobra.MatchAll(cobra.MaximumNArgs(1), cobra.OnlyValidArgs),
	ValidArgs: []string{"up", "status", "down"},
	RunE: func(cmd *cobra.Command, args []string) error {
		action := "up"
		if len(args) == 1 {
			action = args[0]
		}
		dbURL, _ := cmd.Flags().GetString("database-url")
		ctx := cmd.Context()
		switch action {
		case "up":
			if err := store.Migrate(ctx, dbURL); err != nil {
				return err
			}
		case "down":
			if err := store.MigrateDown(ctx, dbURL); err != nil {
				return err
			}
		}
		return printMigrationStatus(cmd, dbURL)
	},
}

func printMigrationStatus(cmd *cobra.Command, dbURL string) error {
	states, err := store.MigrationStatus(cmd.Context(), dbURL)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VERSION\tMIGRATION\tAPPLIED")
	for _, s := range states {
		applied := "pending"
		if s.Applied {
			applied = s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(w, "%d\t%s\t%s\n", s.Version, s.File, applied)
	}
	return w.Flush()
}

func init() {
	dbURL := os.Getenv("DATABASE_URL")
	if dbURL == "" {
		dbURL = store.DefaultDatabaseURL
	}
	migrateCmd.Flags().String("database-url", dbURL, "PostgreSQL URL (env DATABASE_URL)")
	rootCmd.AddCommand(migrateCmd)
}
