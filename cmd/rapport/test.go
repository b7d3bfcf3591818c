package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/playbooktest"
	"github.com/rapport-crm/rapport/rules"
)

func init() {
	rootCmd.AddCommand(newTestCmd())
}

// testOptions are the flags of `rapport test`.
type testOptions struct {
	JSON    bool
	Verbose bool
	Run     string
}

// newTestCmd builds `rapport test` (a constructor, so tests get fresh flags).
func newTestCmd() *cobra.Command {
	o := &testOptions{}
	cmd := &cobra.Command{
		Use:   "test [--json] [-v] [--run REGEXP] [PATH...]",
		Short: "Run playbook tests (playbooks/tests/*_test.yaml): simulate each case and check what it expects",
		Long: `test runs the playbook tests beside the playbooks: YAML files named
<playbook>_test.yaml in a tests directory (playbooks/tests/winback_test.yaml).
Each case gives a customer and events, runs them through the playbook as
` + "`rapport simulate`" + ` does, and checks what it expects: messages sent (template,
channel, time with a tolerance), templates never sent, tasks, coupons,
points, the outcome and its reason, conversion, holdout, the final stage
and tags. See docs/playbooks.md, "Testing a playbook: rapport test".

PATH is a playbook directory (its tests directory is searched) or a test
file; default ./playbooks. The playbooks are compiled as validate compiles
them, against the workspace file (rapport.yaml) of their directory.

Output is go test's: "--- FAIL: playbook/case (0.01s)" with what differed,
one "ok" or "FAIL" line per test file; --json prints one object per case.
The exit status is 1 when any case fails or any test file cannot run.`,
		RunE: func(cmd *cobra.Command, args []string) error { return runTest(cmd, o, args) },
		// The output says what failed; usage after it would bury it.
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print one JSON object per case")
	cmd.Flags().BoolVarP(&o.Verbose, "verbose", "v", false, "print passing cases too")
	cmd.Flags().StringVar(&o.Run, "run", "", "run only the cases whose playbook/case name matches this regular expression")
	return cmd
}

func runTest(cmd *cobra.Command, o *testOptions, args []string) error {
	if len(args) == 0 {
		args = []string{"playbooks"}
	}
	filter, err := regexp.Compile(o.Run)
	if err != nil {
		return fmt.Errorf("--run: %w", err)
	}
	files, err := playbooktest.Find(args)
	if err != nil {
		return err
	}
	t := &tester{opts: o, filter: filter, out: cmd.OutOrStdout(), plans: map[string]*dirPlans{}}
	for _, f := range files {
		if err := t.file(f); err != nil {
			return err
		}
	}
	if t.failed {
		if !o.JSON {
			fmt.Fprintln(t.out, "FAIL")
		}
		return exitStatus(1)
	}
	return nil
}

// tester runs test files, compiling each playbook directory once.
type tester struct {
	opts   *testOptions
	filter *regexp.Regexp
	out    io.Writer
	plans  map[string]*dirPlans
	failed bool
}

// dirPlans are the compiled playbooks of one directory by name, and the
// problems of those that did not compile.
type dirPlans struct {
	byName map[string]*engine.Plan
	broken []error
}

// file runs one test file and prints its cases and summary line.
func (t *tester) file(path string) error {
	began := time.Now()
	f, plan, err := t.load(path)
	if err != nil {
		t.failed = true
		if t.opts.JSON {
			return playbooktest.WriteJSONSetupFailure(t.out, path, err)
		}
		playbooktest.WriteSetupFailure(t.out, path, err)
		return nil
	}
	var results []playbooktest.Result
	for _, c := range f.Cases {
		if !t.filter.MatchString(f.Playbook + "/" + c.Name) {
			continue
		}
		r := playbooktest.RunCase(f, plan, c)
		results = append(results, r)
		t.failed = t.failed || !r.Pass()
		if t.opts.JSON {
			if err := playbooktest.WriteJSON(t.out, r); err != nil {
				return err
			}
			continue
		}
		playbooktest.WriteCase(t.out, r, t.opts.Verbose)
	}
	if !t.opts.JSON {
		playbooktest.WriteSummary(t.out, path, results, time.Since(began))
	}
	return nil
}

// load parses a test file and finds its playbook, compiled with the
// other playbooks of its directory as validate compiles them.
func (t *tester) load(path string) (*playbooktest.File, *engine.Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read test file: %w", err)
	}
	f, err := playbooktest.Parse(path, data)
	if err != nil {
		return nil, nil, err
	}
	dir := playbooktest.PlaybookDir(path)
	dp, err := t.compileDir(dir)
	if err != nil {
		return nil, nil, err
	}
	if plan := dp.byName[f.Playbook]; plan != nil {
		return f, plan, playbooktest.Check(f, plan)
	}
	if len(dp.broken) > 0 {
		return nil, nil, fmt.Errorf("%s: playbook %s not found among the playbooks of %s that compile:\n%w", path, f.Playbook, dir, errors.Join(dp.broken...))
	}
	return nil, nil, fmt.Errorf("%s: no playbook named %s in %s%s", path, f.Playbook, dir, didYouMeanPlan(f.Playbook, dp.byName))
}

// compileDir compiles the playbooks of dir once, against its workspace file.
func (t *tester) compileDir(dir string) (*dirPlans, error) {
	if dp := t.plans[dir]; dp != nil {
		return dp, nil
	}
	files, err := playbookFiles([]string{dir})
	if err != nil {
		return nil, err
	}
	ws, err := workspaceFor([]string{dir})
	if err != nil {
		return nil, err
	}
	srcs := make([][]byte, len(files))
	for i, p := range files {
		if srcs[i], err = os.ReadFile(p); err != nil {
			return nil, fmt.Errorf("read playbook: %w", err)
		}
	}
	dp := &dirPlans{byName: map[string]*engine.Plan{}}
	plans, errs := engine.CompileAllIn(ws, files, srcs)
	for i, err := range errs {
		if err != nil {
			dp.broken = append(dp.broken, err)
			continue
		}
		dp.byName[plans[i].Name] = plans[i]
	}
	t.plans[dir] = dp
	return dp, nil
}

// didYouMeanPlan suggests the playbook a misspelt name was meant to be.
func didYouMeanPlan(name string, plans map[string]*engine.Plan) string {
	names := make([]string, 0, len(plans))
	for n := range plans {
		names = append(names, n)
	}
	return rules.DidYouMean(name, names)
}
