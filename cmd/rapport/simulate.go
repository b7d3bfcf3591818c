package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/workflows"
)

func init() {
	cmd := &cobra.Command{
		Use:   "simulate PLAYBOOK.yaml [--customer FILE.json] [--events FILE.yaml] [--json] [--start RFC3339]",
		Short: "Run one customer through a playbook in simulated time (the real journey workflow, in memory) and print each action",
		Long: `simulate runs the real Journey workflow in the Temporal SDK's test environment,
with time skipping and in-memory activities: no server, no database. It prints
one line per action, "+<elapsed> <step> <action> <details>", and a summary.

--customer is a JSON customer profile (default: a built-in sample customer).
--events is a YAML list of events delivered during the journey, e.g.
  - { at: 5d, event: purchase, amount: 42 }
  - { at: 0s, event: purchase, amount: 120, trigger: true }   # the trigger event
The start time is fixed (` + "2026-01-05T09:00:00Z" + `) so output is reproducible.`,
		Args: cobra.ExactArgs(1),
		RunE: runSimulate,
	}
	cmd.Flags().String("customer", "", "customer profile JSON file (default: a built-in sample customer)")
	cmd.Flags().String("events", "", "YAML file of events to deliver, [{at: 5d, event: purchase, ...}]")
	cmd.Flags().Bool("json", false, "print one JSON object per line")
	cmd.Flags().String("start", workflows.DefaultSimStart.Format(time.RFC3339), "simulated start time (RFC 3339)")
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
	res, err := workflows.Simulate(plan, opts)
	if err != nil {
		return err
	}
	asJSON, _ := cmd.Flags().GetBool("json")
	return res.Write(cmd.OutOrStdout(), asJSON)
}

// simOptions reads the flags and the files they name.
func simOptions(cmd *cobra.Command) (workflows.SimOptions, error) {
	var opts workflows.SimOptions
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
	opts.Customer = workflows.SampleCustomer(t)
	if path, _ := cmd.Flags().GetString("customer"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return opts, fmt.Errorf("--customer: %w", err)
		}
		if opts.Customer, err = workflows.ParseCustomer(path, data); err != nil {
			return opts, err
		}
	}
	if path, _ := cmd.Flags().GetString("events"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return opts, fmt.Errorf("--events: %w", err)
		}
		if opts.Events, opts.Trigger, err = workflows.ParseSimEvents(path, data); err != nil {
			return opts, err
		}
	}
	return opts, nil
}
