package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/payloadcrypt"
)

func init() {
	rootCmd.AddCommand(newPayloadKeysCmd())
}

// newPayloadKeysCmd builds `rapport payload-keys`: the master keys of
// payload encryption (`rapport payload-keys` is the API keys).
func newPayloadKeysCmd() *cobra.Command {
	keys := &cobra.Command{
		Use:   "payload-keys",
		Short: "Manage the master keys that encrypt Temporal payloads (RAPPORT_PAYLOAD_KEYS)",
		Long: `Manage the master keys that encrypt Temporal payloads.

RAPPORT_PAYLOAD_KEYS holds them as id:base64key entries, comma-separated, the
first one active. To rotate: generate a key, put it first (keep the old ones
after it), restart the workers and rapport serve, then run rapport payload-keys
rewrap. See docs/operators.md, "Payload encryption".`,
	}
	keys.AddCommand(newPayloadKeysGenerateCmd(), newPayloadKeysRewrapCmd())
	return keys
}

type payloadKeysGenerateOptions struct{ ID string }

func newPayloadKeysGenerateCmd() *cobra.Command {
	var o payloadKeysGenerateOptions
	cmd := &cobra.Command{
		Use:   "generate [--id ID]",
		Short: "Print a new master key entry (id:base64key) for RAPPORT_PAYLOAD_KEYS",
		Long: `Print a new master key entry (id:base64key) for RAPPORT_PAYLOAD_KEYS: 32
random bytes. It is key material: put it in your secret store, not in a
shell history or a ticket.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := payloadcrypt.GenerateKeySpec(o.ID)
			if err != nil {
				return fmt.Errorf("--id: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), spec)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.ID, "id", time.Now().UTC().Format("2006-01"), "key id (letters, digits, '.', '_', '-')")
	return cmd
}

func newPayloadKeysRewrapCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rewrap",
		Short: "Re-wrap every customer data key under the active master key",
		Long: `Re-wrap every customer data key under the active (first) master key of
RAPPORT_PAYLOAD_KEYS. The data keys do not change, so no payload is
re-encrypted; afterwards the older master keys are needed only for payloads
encrypted with them directly (scans, reconcile) until the namespace's
retention has passed. Safe to run again, and while workers run.

Environment: DATABASE_URL, RAPPORT_PAYLOAD_KEYS.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := payloadcrypt.KeysFromEnv()
			if err != nil {
				return err
			}
			if keys == nil {
				return fmt.Errorf("%s is not set: nothing to re-wrap with", payloadcrypt.EnvKeys)
			}
			st, err := openStoreEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := payloadcrypt.Rewrap(cmd.Context(), keys, st)
			fmt.Fprintf(cmd.OutOrStdout(), "%d customer keys re-wrapped under %s\n", n, keys.ActiveID())
			return err
		},
	}
}
