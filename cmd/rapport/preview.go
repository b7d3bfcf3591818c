package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/preview"
	"github.com/rapport-crm/rapport/simulate/simfile"
	"github.com/rapport-crm/rapport/workflows"
)

func init() {
	cmd := &cobra.Command{
		Use:   "preview PLAYBOOK.yaml [TEMPLATE] [--customer FILE.json] [--locale L] [--strict]",
		Short: "Render every template of a playbook in every locale for one customer, flagging missing locales and empty placeholders",
		Long: `preview renders the message templates of a playbook (or only TEMPLATE) in
every locale, for one customer, exactly as a send renders them, and marks
the variant a send would give that customer. It assumes what a journey
would supply: the trigger event (named as the dispatcher or scan names it,
id "preview", no properties), the coupon the playbook's first coupon step
issues (code <prefix>-PREVIEW, its value by the step's rule) and an
unsubscribe link.

It flags a template without a variant in the customer's locale (or
--locale): that customer gets the fallback, usually en; and each
placeholder that renders empty, such as a customer field that is not set.

--customer is a customer JSON file as simulate takes (default: the
built-in sample customer). The exit status is 1 when a template cannot be
rendered, or, with --strict, when anything is flagged; 0 otherwise.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: runPreview,
	}
	cmd.Flags().String("customer", "", "customer profile JSON file (default: a built-in sample customer)")
	cmd.Flags().String("locale", "", "preview for this locale instead of the customer's")
	cmd.Flags().String("at", "", "render at this time, RFC 3339 (default: now)")
	cmd.Flags().Bool("strict", false, "exit with status 1 when anything is flagged")
	rootCmd.AddCommand(cmd)
}

func runPreview(cmd *cobra.Command, args []string) error {
	opts, err := previewOptions(cmd, args)
	if err != nil {
		return err
	}
	plan, err := compileFileIn(args[0])
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), err)
		return exitStatus(1)
	}
	res, err := preview.Render(plan, opts)
	if err != nil {
		return err
	}
	fmt.Fprint(cmd.OutOrStdout(), res.String())
	strict, _ := cmd.Flags().GetBool("strict")
	if res.Failed() || (strict && len(res.Flags()) > 0) {
		return exitStatus(1)
	}
	return nil
}

// previewOptions reads the flags and the customer file.
func previewOptions(cmd *cobra.Command, args []string) (preview.Options, error) {
	opts := preview.Options{At: time.Now().UTC()}
	if at, _ := cmd.Flags().GetString("at"); at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return opts, fmt.Errorf("--at: want an RFC 3339 time like 2026-01-05T09:00:00Z: %w", err)
		}
		opts.At = t
	}
	if len(args) == 2 {
		opts.Template = args[1]
	}
	opts.Locale, _ = cmd.Flags().GetString("locale")
	opts.Customer = workflows.SampleCustomer(opts.At)
	path, _ := cmd.Flags().GetString("customer")
	if path == "" {
		return opts, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return opts, fmt.Errorf("--customer: %w", err)
	}
	cf, err := simfile.ParseCustomer(path, data)
	if err != nil {
		return opts, err
	}
	opts.Customer = cf.Customer
	return opts, nil
}
