package main

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func runRapport(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&out)
	rootCmd.SetArgs(args)
	err := rootCmd.Execute()
	resetFlags(rootCmd)
	return out.String(), err
}

// resetFlags puts every flag the last run changed back to its default:
// cobra keeps flag values between Execute calls, so one test's --customer
// would otherwise reach the next test's command.
func resetFlags(cmd *cobra.Command) {
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if !f.Changed {
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			_ = sv.Replace(nil)
		} else {
			_ = f.Value.Set(f.DefValue)
		}
		f.Changed = false
	})
	for _, c := range cmd.Commands() {
		resetFlags(c)
	}
}

// The command prints what simulate.Run prints (its golden files are
// checked in the simulate package), with the flags wired up.
func TestSimulateCommand(t *testing.T) {
	got, err := runRapport(t, "simulate", "../../playbooks/winback.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../simulate/testdata/simulate/winback.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("output differs from the golden file:\n%s", got)
	}
	got, err = runRapport(t, "simulate", "--json", "--events", "../../simulate/testdata/simulate/winback.events.yaml",
		"--start", "2026-03-01T00:00:00Z", "../../playbooks/winback.yaml")
	if err != nil || !strings.Contains(got, `"at":"2026-03-01T00:00:00Z"`) || !strings.Contains(got, `"converted":true`) || !strings.Contains(got, `"outcome":"exited","reason":"won_back"`) {
		t.Fatalf("--json --events --start: %v\n%s", err, got)
	}
}

func TestSimulateCommandBadInput(t *testing.T) {
	if _, err := runRapport(t, "simulate", "--start", "tomorrow", "../../playbooks/winback.yaml"); err == nil || !strings.Contains(err.Error(), "--start") {
		t.Errorf("bad --start: err = %v", err)
	}
	if _, err := runRapport(t, "simulate", "--start", "2026-01-05T09:00:00Z", "--customer", "missing.json", "../../playbooks/winback.yaml"); err == nil || !strings.Contains(err.Error(), "--customer") {
		t.Errorf("missing customer file: err = %v", err)
	}
}

// A journey that ends failed makes the command fail with exit status 1,
// and standard error says why in plain words; a customer who is not
// admitted is not a failure.
func TestSimulateExitStatus(t *testing.T) {
	// Flags keep their values between commands run in one process.
	reset := []string{"--customer", "", "--events", "", "--start", "2026-01-05T09:00:00Z", "--json=false"}
	out, err := runRapport(t, append(append([]string{"simulate"}, reset...), "testdata/failing_coupon.yaml")...)
	var status exitStatus
	if !errors.As(err, &status) || status != 1 {
		t.Fatalf("err = %v, want exit status 1\n%s", err, out)
	}
	want := "simulate: journey 1 (started 2026-01-05T09:00:00Z) failed: step coupon_1: issue coupon: coupon value 1200 is over 100 % for a percent coupon\n"
	if !strings.HasSuffix(out, want) {
		t.Errorf("output does not end with the reason %q:\n%s", want, out)
	}
	out, err = runRapport(t, append(append([]string{"simulate"}, reset...), "../../playbooks/loyalty_ladder.yaml")...)
	if err != nil || !strings.Contains(out, "no enrollment: order_completed sim-2026-01-05T09:00:00Z not admitted: when event.amount > 0 is false") {
		t.Errorf("not admitted: err = %v\n%s", err, out)
	}
}
