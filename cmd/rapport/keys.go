package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/api"
	"github.com/rapport-crm/rapport/store"
)

func init() {
	rootCmd.AddCommand(newKeysCmd())
}

// keyStore is what the keys commands use; *store.Store implements it.
type keyStore interface {
	CreateAPIKey(ctx context.Context, k store.APIKey) (store.APIKey, error)
	APIKeys(ctx context.Context, withRevoked bool) ([]store.APIKey, error)
	RevokeAPIKey(ctx context.Context, id string) (bool, error)
}

// keysCreateOptions are the flags of `rapport keys create`.
type keysCreateOptions struct {
	Name   string
	Scopes []string
	Rate   float64
	Burst  int
	JSON   bool
}

// newKeysCmd builds `rapport keys` and its subcommands.
func newKeysCmd() *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke the event API's keys (scoped, stored hashed, several at once so they rotate)",
		Long: `keys manages the API keys rapport serve accepts besides RAPPORT_API_KEY.

A key holds scopes — ` + strings.Join(api.Scopes, ", ") + ` — and is
refused (403) on any route that needs another. Only the key's SHA-256
digest is stored; the key is printed once, at creation. Several keys are
active at once, so a key is rotated by creating the new one, moving the
clients to it, then revoking the old one; servers pick up a new key at its
first call and a revocation within 10 seconds. Each key has a rate limit,
its own (--rate, --burst) or the server's (RAPPORT_API_RATE).
See docs/security.md, "API keys".

Environment: DATABASE_URL.`,
	}
	var co keysCreateOptions
	create := &cobra.Command{
		Use:   "create --name NAME --scope SCOPE [--scope SCOPE ...] [--rate N] [--burst N] [--json]",
		Short: "Create a key and print it (once: it cannot be shown again)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withKeyStore(cmd, func(st keyStore) error { return keysCreate(cmd.Context(), cmd.OutOrStdout(), st, co) })
		},
	}
	create.Flags().StringVar(&co.Name, "name", "", "what the key is for, e.g. \"segment production\" (required)")
	create.Flags().StringSliceVar(&co.Scopes, "scope", nil, "scope the key holds, repeatable or comma-separated: "+strings.Join(api.Scopes, ", ")+" (required)")
	create.Flags().Float64Var(&co.Rate, "rate", 0, "the key's rate limit in requests per second (0: the server's RAPPORT_API_RATE)")
	create.Flags().IntVar(&co.Burst, "burst", 0, "the key's burst (0: twice --rate, or the server's RAPPORT_API_BURST)")
	create.Flags().BoolVar(&co.JSON, "json", false, "print JSON")

	var withRevoked, listJSON bool
	list := &cobra.Command{
		Use:   "list [--all] [--json]",
		Short: "List the keys (ids, names, scopes, limits; never the keys themselves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withKeyStore(cmd, func(st keyStore) error {
				return keysList(cmd.Context(), cmd.OutOrStdout(), st, withRevoked, listJSON)
			})
		},
	}
	list.Flags().BoolVar(&withRevoked, "all", false, "include revoked keys")
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a key: servers refuse it (401) within 10 seconds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withKeyStore(cmd, func(st keyStore) error { return keysRevoke(cmd.Context(), cmd.OutOrStdout(), st, args[0]) })
		},
	}
	keys.AddCommand(create, list, revoke)
	return keys
}

func withKeyStore(cmd *cobra.Command, fn func(keyStore) error) error {
	st, err := openStoreEnv(cmd.Context())
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

func keysCreate(ctx context.Context, out io.Writer, st keyStore, o keysCreateOptions) error {
	if strings.TrimSpace(o.Name) == "" {
		return fmt.Errorf("--name is required: say what the key is for")
	}
	if err := api.CheckScopes(o.Scopes); err != nil {
		return fmt.Errorf("--scope: %w", err)
	}
	if o.Rate < 0 || o.Burst < 0 {
		return fmt.Errorf("--rate %v, --burst %d: must not be negative", o.Rate, o.Burst)
	}
	id, key, digest, err := api.NewKey()
	if err != nil {
		return err
	}
	k, err := st.CreateAPIKey(ctx, store.APIKey{ID: id, Name: o.Name, Hash: digest[:], Scopes: o.Scopes, Rate: o.Rate, Burst: o.Burst})
	if err != nil {
		return err
	}
	if o.JSON {
		return writeIndentedJSON(out, struct {
			store.APIKey
			Key string `json:"key"`
		}{k, key})
	}
	fmt.Fprintf(out, "created key %s (%s), scopes %s\n\n  %s\n\nThis is the only time the key is shown: store it in your secret manager now.\n",
		k.ID, k.Name, strings.Join(k.Scopes, ", "), key)
	return nil
}

func keysList(ctx context.Context, out io.Writer, st keyStore, withRevoked, asJSON bool) error {
	keys, err := st.APIKeys(ctx, withRevoked)
	if err != nil {
		return err
	}
	if asJSON {
		if keys == nil {
			keys = []store.APIKey{}
		}
		return writeIndentedJSON(out, keys)
	}
	if len(keys) == 0 {
		fmt.Fprintln(out, "no keys (rapport keys create makes one; RAPPORT_API_KEY, if set, holds every scope)")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tRATE\tCREATED\tREVOKED")
	for _, k := range keys {
		limit := "default"
		if k.Rate > 0 {
			limit = fmt.Sprintf("%g/s", k.Rate)
			if k.Burst > 0 {
				limit += fmt.Sprintf(" burst %d", k.Burst)
			}
		}
		revoked := "-"
		if k.RevokedAt != nil {
			revoked = k.RevokedAt.UTC().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), limit, k.CreatedAt.UTC().Format(time.DateTime), revoked)
	}
	return tw.Flush()
}

func keysRevoke(ctx context.Context, out io.Writer, st keyStore, id string) error {
	ok, err := st.RevokeAPIKey(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no active key %q (rapport keys list --all shows every key)", id)
	}
	fmt.Fprintf(out, "revoked key %s: servers refuse it within 10 seconds\n", id)
	return nil
}

func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
