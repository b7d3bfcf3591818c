// Command rapport is the command-line tool of the Rapport engine. Each
// subcommand lives in its own file and registers itself on rootCmd in an
// init function, so this file stays minimal.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// rootCmd is the `rapport` command every subcommand attaches to.
var rootCmd = &cobra.Command{
	Use:           "rapport",
	Short:         "Relationship-marketing automation: playbooks compiled to durable journeys",
	SilenceUsage:  true,
	SilenceErrors: true,
}

// exitStatus is an error that only sets the exit status: the command has
// already printed what went wrong (e.g. validate's diagnostics).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func main() {
	err := rootCmd.Execute()
	if err == nil {
		return
	}
	var status exitStatus
	if errors.As(err, &status) {
		os.Exit(int(status))
	}
	fmt.Fprintln(os.Stderr, "rapport:", err)
	os.Exit(1)
}
