package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/simulate"
	"github.com/rapport-crm/rapport/simulate/simfile"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/workflows"
)

func init() {
	cmd := &cobra.Command{
		Use:   "simulate PLAYBOOK.yaml [--customer FILE.json] [--events FILE.yaml] [--json] [--html DIR] [--start RFC3339]",
		Short: "Run one customer through a playbook in simulated time (the real journey workflow, in memory) and print each action",
		Long: `simulate runs the real Journey workflow in the Temporal SDK's test environment,
with time skipping and in-memory activities: no server, no database. It prints
one line per action, "+<elapsed> <step> <action> <details>", and a summary.
Under each message sent it prints, indented, the rendered subject and the
first lines of the text, as the customer receives them (--json: the fields
subject and text, with the whole text); --html DIR writes each HTML body to
DIR/<seq>-<step>-<template>.<locale>.html to open in a browser.

It decides entry as production does: an event enrolls the customer when its
name and the trigger's when rule match and no journey of the playbook is
running (each event is first applied to the profile, as the event API does);
a segment playbook enrolls at the start when its where rule holds; a date
playbook at the first hourly scan at which the date is due. The journey then
applies re-entry, audience, holdout, consent, frequency caps, quiet hours and
addresses with the same policy code as the PostgreSQL store.

--customer is a JSON customer file (default: a built-in sample customer):
profile, consents, points and tags; see docs/playbooks.md, "The customer
file", and schema/customer.schema.json. Dates are YYYY-MM-DD or RFC 3339.
--events is a YAML list of events, each dispatched at its offset, e.g.
  - { at: 0s, event: purchase, amount: 120, trigger: true }   # a trigger event
  - { at: 5d, event: purchase, amount: 42 }
Several trigger events show re-entry. The start time is fixed
(` + "2026-01-05T09:00:00Z" + `) so output is reproducible.

The exit status is 1 when a journey ends failed (the reason is printed on
standard error), 0 otherwise, including when the customer is not admitted.`,
		Args: cobra.ExactArgs(1),
		RunE: runSimulate,
	}
	cmd.Flags().String("customer", "", "customer profile JSON file (default: a built-in sample customer)")
	cmd.Flags().String("events", "", "YAML file of events to deliver, [{at: 5d, event: purchase, ...}]")
	cmd.Flags().Bool("json", false, "print one JSON object per line")
	cmd.Flags().String("html", "", "write the HTML body of each message sent to this directory")
	cmd.Flags().String("start", simulate.DefaultStart.Format(time.RFC3339), "simulated start time (RFC 3339)")
	cmd.Flags().String("frequency-cap", "", "global frequency cap per customer and channel, as RAPPORT_FREQUENCY_CAP in production: \"<max>/<duration>\" or off (default: production's default, "+defaultCap()+")")
	cmd.Flags().Float64("global-control", 0, "global control group in percent, as rapport.global_control_pct in production (0 to 50)")
	rootCmd.AddCommand(cmd)
}

func runSimulate(cmd *cobra.Command, args []string) error {
	opts, err := simOptions(cmd)
	if err != nil {
		return err
	}
	plan, err := compileFileIn(args[0])
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), err)
		return exitStatus(1)
	}
	res, err := simulate.Run(plan, opts)
	if err != nil {
		return err
	}
	asJSON, _ := cmd.Flags().GetBool("json")
	if err := res.Write(cmd.OutOrStdout(), asJSON); err != nil {
		return err
	}
	if dir, _ := cmd.Flags().GetString("html"); dir != "" {
		paths, err := res.WriteHTML(dir)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "simulate: wrote %d HTML %s to %s\n", len(paths), plural(len(paths), "body", "bodies"), dir)
	}
	if why := res.Failure(); why != "" {
		fmt.Fprintln(cmd.ErrOrStderr(), "simulate: "+why)
		return exitStatus(1)
	}
	return nil
}

// defaultCap is production's default global frequency cap, written as
// RAPPORT_FREQUENCY_CAP takes it ("3/7d"; the default is whole days).
func defaultCap() string {
	cfg := store.DefaultConfig()
	return fmt.Sprintf("%d/%dd", cfg.CapMax, cfg.CapPer/(24*time.Hour))
}

// simOptions reads the flags and the files they name.
func simOptions(cmd *cobra.Command) (simulate.Options, error) {
	var opts simulate.Options
	start, _ := cmd.Flags().GetString("start")
	t, err := time.Parse(time.RFC3339, start)
	if err != nil {
		return opts, fmt.Errorf("--start: want an RFC 3339 time like 2026-01-05T09:00:00Z: %w", err)
	}
	opts.Start = t
	pct, _ := cmd.Flags().GetFloat64("global-control")
	if pct < 0 || pct > activities.MaxGlobalControlPct {
		return opts, fmt.Errorf("--global-control %g: keep it between 0 and %d percent", pct, activities.MaxGlobalControlPct)
	}
	opts.Memory = activities.NewMemory()
	opts.Memory.GlobalControlPct = pct
	capFlag, _ := cmd.Flags().GetString("frequency-cap")
	if capFlag == "" {
		capFlag = defaultCap()
	}
	if opts.Memory.GlobalCapMax, opts.Memory.GlobalCapPer, err = store.ParseCap(capFlag); err != nil {
		return opts, fmt.Errorf("--frequency-cap: %w", err)
	}
	opts.Customer = workflows.SampleCustomer(t)
	if path, _ := cmd.Flags().GetString("customer"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return opts, fmt.Errorf("--customer: %w", err)
		}
		cf, err := simfile.ParseCustomer(path, data)
		if err != nil {
			return opts, err
		}
		opts.Customer, opts.Consents = cf.Customer, cf.Consents
	}
	if path, _ := cmd.Flags().GetString("events"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return opts, fmt.Errorf("--events: %w", err)
		}
		if opts.Events, err = simfile.ParseEvents(path, data); err != nil {
			return opts, err
		}
	}
	return opts, nil
}
