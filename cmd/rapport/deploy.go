package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/payloadcrypt"
	"github.com/rapport-crm/rapport/scan"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/temporalenv"
	"github.com/rapport-crm/rapport/worker"
)

func init() {
	deploy := &cobra.Command{
		Use:   "deploy [--prune] [--trigger NAME]... PATH...",
		Short: "Validate playbooks, store them as the active versions and schedule their scans (segment and date triggers)",
		Long: `deploy compiles every playbook first and deploys nothing if any has an
error (printed like rapport validate). Each version is stored in PostgreSQL
(DATABASE_URL) by content hash, so deploying an unchanged file is a no-op,
and becomes the active version of its playbook; running enrollments finish
on the version they started with. Segment and date playbooks get a Temporal
Schedule rapport-scan/<playbook> (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE).`,
		Args: cobra.MinimumNArgs(1),
		RunE: runDeploy,
	}
	deploy.Flags().Bool("prune", false, "undeploy every deployed playbook not among PATH")
	deploy.Flags().StringSlice("trigger", nil, "after deploying, run the scan of this playbook now (repeatable)")
	undeploy := &cobra.Command{
		Use:   "undeploy NAME...",
		Short: "Mark playbooks inactive and pause their scan schedules; running enrollments finish",
		Args:  cobra.MinimumNArgs(1),
		RunE:  runUndeploy,
	}
	rootCmd.AddCommand(deploy, undeploy)
}

func runDeploy(cmd *cobra.Command, args []string) error {
	plans, ok, err := compileAll(cmd.OutOrStdout(), cmd.ErrOrStderr(), args)
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintln(cmd.ErrOrStderr(), "nothing deployed")
		return exitStatus(1)
	}
	ctx := cmd.Context()
	st, c, _, err := connectEnv(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	defer c.Close()
	deps, err := scan.Deploy(ctx, st, c, plans)
	for _, d := range deps {
		fmt.Fprintln(cmd.OutOrStdout(), d)
	}
	if err != nil {
		return err
	}
	if prune, _ := cmd.Flags().GetBool("prune"); prune {
		pruned, err := scan.Prune(ctx, st, c, plans)
		for _, name := range pruned {
			fmt.Fprintf(cmd.OutOrStdout(), "%s undeployed (pruned); schedule paused if any\n", name)
		}
		if err != nil {
			return err
		}
	}
	triggers, _ := cmd.Flags().GetStringSlice("trigger")
	for _, name := range triggers {
		if err := scan.Trigger(ctx, c, name); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "scan of %s triggered\n", name)
	}
	return nil
}

func runUndeploy(cmd *cobra.Command, args []string) error {
	ctx := cmd.Context()
	st, c, _, err := connectEnv(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	defer c.Close()
	for _, name := range args {
		was, err := scan.Undeploy(ctx, st, c, name)
		if err != nil {
			return err
		}
		if was {
			fmt.Fprintf(cmd.OutOrStdout(), "%s undeployed; running enrollments finish on their version\n", name)
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "%s was not deployed; nothing to do\n", name)
		}
	}
	return nil
}

// compileAll compiles every playbook under paths against their workspace
// declaration, as validate does, and
// prints each error as path:line:col: message. ok is false when any failed
// or two files define the same playbook (engine.CompileAll reports that on
// the second file, naming the first).
func compileAll(out, errOut io.Writer, paths []string) (plans []*engine.Plan, ok bool, err error) {
	files, err := playbookFiles(paths)
	if err != nil {
		return nil, false, err
	}
	srcs := make([][]byte, len(files))
	for i, f := range files {
		if srcs[i], err = os.ReadFile(f); err != nil {
			return nil, false, fmt.Errorf("read playbook: %w", err)
		}
	}
	ws, err := workspaceFor(paths)
	var wsDiags engine.Diagnostics
	if errors.As(err, &wsDiags) {
		fmt.Fprintln(out, wsDiags.Error())
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	}
	compiled, errs := engine.CompileAllIn(ws, files, srcs)
	ok = true
	for i, err := range errs {
		var ds engine.Diagnostics
		switch {
		case errors.As(err, &ds):
			for _, d := range ds {
				fmt.Fprintf(out, "%s:%d:%d: %s\n", d.File, d.Line, d.Col, d.Msg)
			}
			ok = false
		case err != nil:
			fmt.Fprintf(out, "%s:1:1: %v\n", files[i], err)
			ok = false
		default:
			plans = append(plans, compiled[i])
		}
	}
	return plans, ok, nil
}

// connectEnv opens the store (DATABASE_URL) and dials Temporal with the
// settings temporalenv loads (the config file's profile and the TEMPORAL_*
// variables, TLS, mTLS and API key included) and the payload codec of
// RAPPORT_PAYLOAD_KEYS, as the worker does.
func connectEnv(ctx context.Context) (*store.Store, client.Client, *payloadcrypt.Codec, error) {
	topts, err := temporalenv.Load(temporalenv.Overrides{})
	if err != nil {
		return nil, nil, nil, err
	}
	keys, err := payloadcrypt.KeysFromEnv()
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := worker.ConfigFromEnv()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	st, err := store.Open(ctx, cfg.DatabaseURL, store.DefaultConfig())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w (DATABASE_URL)", err)
	}
	codec := payloadcrypt.New(keys, st, payloadcrypt.Options{})
	topts = codec.ClientOptions(topts)
	topts.Logger = quietSDKLogger{}
	c, err := client.DialContext(ctx, topts)
	if err != nil {
		st.Close()
		return nil, nil, nil, fmt.Errorf("connect to Temporal at %s: %w", temporalenv.Describe(topts), err)
	}
	return st, c, codec, nil
}

// temporalNamespace is the namespace of the loaded Temporal settings, for
// commands that only name it (links, messages). A configuration error is
// reported by the commands that connect, so here it means the default.
func temporalNamespace() string {
	opts, err := temporalenv.Load(temporalenv.Overrides{})
	if err != nil {
		return temporalenv.DefaultNamespace
	}
	return opts.Namespace
}

// quietSDKLogger keeps the SDK's informational logging out of command
// output; errors still reach the user through returned errors.
type quietSDKLogger struct{}

func (quietSDKLogger) Debug(string, ...any) {}
func (quietSDKLogger) Info(string, ...any)  {}
func (quietSDKLogger) Warn(msg string, kv ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"temporal:", msg}, kv...)...)
}
func (quietSDKLogger) Error(msg string, kv ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"temporal:", msg}, kv...)...)
}
