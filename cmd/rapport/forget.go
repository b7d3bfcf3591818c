package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/user"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/erasure"
	"github.com/rapport-crm/rapport/store"
)

func init() {
	rootCmd.AddCommand(newForgetCmd())
}

// forgetOptions are the flags of `rapport forget`.
type forgetOptions struct {
	Yes  bool
	JSON bool
	By   string
}

// newForgetCmd builds `rapport forget` (a constructor, so tests get
// fresh flags).
func newForgetCmd() *cobra.Command {
	var o forgetOptions
	cmd := &cobra.Command{
		Use:   "forget CUSTOMER [--yes] [--json]",
		Short: "Erase a customer (the right to be forgotten): end their journeys, delete their rows, keep only keyed hashes of their addresses",
		Long: `forget erases one customer, as POST /v1/customers/{id}/forget does:

  1. ends every journey of theirs still running (Temporal terminate);
  2. in one transaction, deletes every row about them — profile, events,
     consents, enrollments and steps, messages and their status history,
     points, coupons, tasks, groups, anonymous ids — and keeps each email
     address and phone number they had only as a keyed hash (HMAC with
     RAPPORT_ERASURE_SECRET) on the suppression list, so they are never
     contacted there again, even if a later event creates them anew;
  3. deletes their data key, when payloads are encrypted per customer,
     which leaves their workflow histories in Temporal unreadable.

An audit row (erasures) records a keyed hash of the id, when, who asked
(cli:<user>, or --by) and how many rows each table lost — nothing
personal. Asking again is safe. It cannot be undone: without --yes it
asks you to type the customer id. See docs/security.md, "Erasure".

Environment: DATABASE_URL, RAPPORT_ERASURE_SECRET (required; the same as
the server's and the worker's), TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and
the other TEMPORAL_* settings.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runForget(cmd, args[0], o)
		},
	}
	cmd.Flags().BoolVar(&o.Yes, "yes", false, "do not ask for confirmation (scripts)")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the result as JSON")
	cmd.Flags().StringVar(&o.By, "by", "", `who asks, for the audit row (default "cli:<your user name>")`)
	return cmd
}

func runForget(cmd *cobra.Command, customerID string, o forgetOptions) error {
	secrets, err := store.ErasureSecretsFromEnv()
	if err != nil {
		return err
	}
	if len(secrets) == 0 {
		return store.ErrNoErasureSecret
	}
	if err := confirmForget(cmd.InOrStdin(), cmd.ErrOrStderr(), customerID, o.Yes); err != nil {
		return err
	}
	ctx := cmd.Context()
	st, c, _, err := connectEnv(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	defer c.Close()
	cfg := store.DefaultConfig()
	cfg.ErasureSecrets = secrets
	erasing := store.New(st.Pool(), cfg)
	e := &erasure.Eraser{Store: erasing, Journeys: erasure.Temporal{Client: c}, Keys: erasure.KeysOf(erasing)}
	return forget(ctx, cmd.OutOrStdout(), e, customerID, o)
}

// forgetter is what forget needs; *erasure.Eraser implements it.
type forgetter interface {
	Forget(ctx context.Context, customerID, requestedBy string) (erasure.Result, error)
}

// forget erases customerID and prints what was done.
func forget(ctx context.Context, out io.Writer, e forgetter, customerID string, o forgetOptions) error {
	by := o.By
	if by == "" {
		by = "cli"
		if u, err := user.Current(); err == nil && u.Username != "" {
			by = "cli:" + u.Username
		}
	}
	res, err := e.Forget(ctx, customerID, by)
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printForget(out, customerID, res)
	return nil
}

// printForget says what an erasure did, e.g.
//
//	erased customer ada (audit 1a2b3c4d:…, by cli:ops)
//	  journeys ended: winback
//	  rows deleted: 14 (customers 1, events 6, messages 4, …)
//	  addresses kept as keyed hashes on the suppression list: 2
//	  data key: deleted
func printForget(w io.Writer, customerID string, r erasure.Result) {
	if !r.Found {
		fmt.Fprintf(w, "nothing held about customer %s (erased before, or never known); the request is in the audit log as %s\n", customerID, r.CustomerHash)
	} else {
		fmt.Fprintf(w, "erased customer %s (in the audit log as %s)\n", customerID, r.CustomerHash)
		var total int64
		var parts []string
		tables := make([]string, 0, len(r.Deleted))
		for t := range r.Deleted {
			tables = append(tables, t)
		}
		sort.Strings(tables)
		for _, t := range tables {
			if n := r.Deleted[t]; n > 0 {
				total += n
				parts = append(parts, fmt.Sprintf("%s %d", t, n))
			}
		}
		fmt.Fprintf(w, "  rows deleted: %d (%s)\n", total, strings.Join(parts, ", "))
		fmt.Fprintf(w, "  addresses kept as keyed hashes on the suppression list: %d\n", r.Addresses)
	}
	ended := "none running"
	if len(r.JourneysEnded) > 0 {
		ended = strings.Join(r.JourneysEnded, ", ")
	}
	fmt.Fprintf(w, "  journeys ended: %s\n", ended)
	if r.DataKeyDeleted {
		fmt.Fprintln(w, "  data key: deleted (their payloads in Temporal histories can no longer be decrypted)")
	} else {
		fmt.Fprintln(w, "  data key: none (payloads are not encrypted per customer; histories keep them until the namespace's retention)")
	}
}

// errNotConfirmed is an erasure the user did not confirm.
var errNotConfirmed = errors.New("not confirmed: type the customer id exactly, or pass --yes")

// confirmForget asks for the customer id on in, unless yes.
func confirmForget(in io.Reader, prompt io.Writer, customerID string, yes bool) error {
	if yes {
		return nil
	}
	fmt.Fprintf(prompt, "This erases customer %s and everything held about them, for good.\nType the customer id to confirm: ", customerID)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read confirmation: %w", err)
	}
	if strings.TrimSpace(line) != customerID {
		return errNotConfirmed
	}
	return nil
}
