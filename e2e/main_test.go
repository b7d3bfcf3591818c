// Package e2e tests Rapport end to end: a real Temporal dev server (one
// for the package, started by TestMain from the installed temporal CLI),
// the real PostgreSQL (a fresh database per test), the real event API over
// HTTP, the real worker and a real SMTP server receiving the mail.
//
// Without the temporal CLI or PostgreSQL the tests skip with a message
// saying what is missing, except under CI=true, where they fail.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/workflows"
)

// Each test gets its own namespace: workers of different tests (each on
// its own database) must not take each other's tasks from the shared
// task queue.
const (
	nsAPI     = "e2e-api"
	nsScan    = "e2e-scan"
	nsVersion = "e2e-version"
	nsDev     = "e2e-dev"
	nsDeploy  = "e2e-deploy"
	nsDate    = "e2e-date"
	nsRecon   = "e2e-reconcile"
	nsTrigger = "e2e-trigger"
	nsDeliver = "e2e-delivery"
	nsForget  = "e2e-forget"
	nsPrivacy = "e2e-privacy"
	nsWorkers = "e2e-workers"
)

var (
	// frontend is the dev server's host:port, "" when not running.
	frontend string
	// skipReason says why the tests cannot run here (outside CI).
	skipReason string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testing.Short() {
		skipReason = "end-to-end tests do not run with -short"
		return m.Run()
	}
	srv, err := startDevServer()
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "e2e: FAIL: Temporal dev server unavailable under CI=true:", err)
			return 1
		}
		skipReason = "Temporal dev server unavailable (install the CLI: go install " + devenv.TemporalCLIModule + "): " + err.Error()
		return m.Run()
	}
	defer srv.Stop()
	frontend = srv.FrontendHostPort()
	return m.Run()
}

// startDevServer starts the installed temporal CLI's dev server on free
// ports, with Rapport's search attributes and one namespace per test.
func startDevServer() (*testsuite.DevServer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := devenv.TemporalBinary(ctx, false, io.Discard)
	if err != nil {
		return nil, err
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = devenv.FreePort(); err != nil {
			return nil, err
		}
	}
	args := append(workflows.SearchAttributeFlags(),
		"--namespace", nsAPI, "--namespace", nsScan, "--namespace", nsVersion, "--namespace", nsDev, "--namespace", nsDeploy, "--namespace", nsDate, "--namespace", nsRecon, "--namespace", nsTrigger, "--namespace", nsDeliver, "--namespace", nsForget, "--namespace", nsPrivacy, "--namespace", nsWorkers,
		"--http-port", fmt.Sprint(ports[1]), "--metrics-port", fmt.Sprint(ports[2]))
	return testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  bin,
		ClientOptions: &client.Options{HostPort: fmt.Sprintf("127.0.0.1:%d", ports[0]), Logger: quiet{}},
		LogLevel:      "error",
		// Its banner, and the errors it logs while the tests stop it;
		// a server that does not come up fails StartDevServer itself.
		Stdout:    io.Discard,
		Stderr:    io.Discard,
		ExtraArgs: args,
	})
}

// quiet drops SDK logging; failures reach the tests as errors.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
