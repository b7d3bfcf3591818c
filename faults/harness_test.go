// Package faults proves that journeys keep their promises when the
// processes around them fail: the worker is SIGKILLed mid-journey, the
// Temporal dev server and PostgreSQL restart, channels drop connections or
// answer errors. Every assertion reads PostgreSQL, the system of record:
// each customer must have exactly the messages, points and coupons the
// playbook prescribes — nothing lost, nothing twice.
//
// `go test ./faults` runs a bounded subset that fits CI (200 customers,
// worker kills and one Temporal restart). The full run (1,000 customers,
// plus a PostgreSQL restart) runs with RAPPORT_FAULTS=full or -tags faults
// (make test-faults); it restarts the machine's PostgreSQL cluster, so it
// must not run next to other database tests.
package faults

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
	"github.com/rapport-crm/rapport/workflows"
)

// requireIntegration skips under -short, and when the Temporal CLI is
// missing (failing under CI=true, which must run everything).
func requireIntegration(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("fault tests start processes; skipped with -short")
	}
	bin, err := devenv.TemporalBinary(context.Background(), false, io.Discard)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true needs the Temporal CLI: %v", err)
		}
		t.Skipf("fault tests need the Temporal CLI: %v", err)
	}
	return bin
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// rapportBinary builds cmd/rapport once per test binary.
func rapportBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rapport-faults-bin")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "rapport")
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/rapport")
		cmd.Dir = filepath.Dir(filepath.Dir(file))
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/rapport: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// proc is a child process in its own process group, so a kill reaches
// everything it spawned.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(t *testing.T, name string, env []string, logPath string, bin string, args ...string) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return p
}

// kill sends SIGKILL to the process group and waits for the exit.
func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// temporal is a dev server on a fixed port and SQLite file, restartable.
type temporal struct {
	t        *testing.T
	bin      string
	hostPort string
	dbFile   string
	logPath  string
	ns       string
	p        *proc
}

func newTemporal(t *testing.T, bin, ns string) *temporal {
	t.Helper()
	dir := t.TempDir()
	port, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	tp := &temporal{t: t, bin: bin, hostPort: fmt.Sprintf("127.0.0.1:%d", port), dbFile: filepath.Join(dir, "temporal.db"), logPath: filepath.Join(dir, "temporal.log"), ns: ns}
	tp.start()
	t.Cleanup(func() {
		if tp.p != nil {
			tp.p.kill()
		}
	})
	// Runs first (cleanups run last in, first out), while the server
	// still runs and its log is still on disk.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("temporal dev server at %s: %s", tp.hostPort, tp.state())
		}
	})
	return tp
}

// state says whether the server process runs, whether its namespace is
// there, and how its log ends: what a failed fault test needs to tell a
// server fault from a test fault.
func (tp *temporal) state() string {
	alive := false
	if tp.p != nil {
		select {
		case <-tp.p.done:
		default:
			alive = true
		}
	}
	ns := "described"
	if err := tp.namespaceReady(); err != nil {
		ns = err.Error()
	}
	out, _ := os.ReadFile(tp.logPath)
	return fmt.Sprintf("process running: %v; namespace %s: %s; its log ends:\n%s", alive, tp.ns, ns, tail(string(out), 3000))
}

// namespaceReady checks, within 5 s, that the server at hostPort has the
// namespace.
func (tp *temporal) namespaceReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := devenv.DialTemporal(ctx, tp.hostPort, tp.ns, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: tp.ns})
	return err
}

func (tp *temporal) start() {
	tp.t.Helper()
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = tp.startOnce(); err == nil {
			return
		}
		tp.t.Logf("temporal dev server start, attempt %d: %v", attempt, err)
	}
	tp.t.Fatal(err)
}

// startOnce starts the server and waits for its frontend. A server that
// exits at once (usually a port taken between FreePort and its bind) is
// an error the caller retries with fresh side ports.
func (tp *temporal) startOnce() error {
	_, port, _ := splitHostPort(tp.hostPort)
	args := append([]string{"server", "start-dev", "--ip", "127.0.0.1", "--port", port, "--headless",
		"--namespace", tp.ns, "--db-filename", tp.dbFile, "--log-level", "error",
		"--dynamic-config-value", "frontend.enableServerVersionCheck=false"}, workflows.SearchAttributeFlags()...)
	if free, err := devenv.FreePort(); err == nil {
		args = append(args, "--http-port", fmt.Sprint(free))
	}
	if free, err := devenv.FreePort(); err == nil {
		args = append(args, "--metrics-port", fmt.Sprint(free))
	}
	tp.p = startProc(tp.t, "temporal", nil, tp.logPath, tp.bin, args...)
	// Ready is this process answering with the namespace: on a restart,
	// another test's server may have bound the port while it was free,
	// and would answer the health check.
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := tp.namespaceReady()
		select {
		case <-tp.p.done:
			out, _ := os.ReadFile(tp.logPath)
			return fmt.Errorf("temporal dev server exited during start-up (port %s: %v):\n%s", tp.hostPort, err, tail(string(out), 2000))
		default:
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			tp.p.kill()
			return fmt.Errorf("temporal dev server did not answer with namespace %s within 90s: %v", tp.ns, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// restart SIGKILLs the server and starts it again on the same file.
func (tp *temporal) restart() {
	tp.p.kill()
	tp.start()
}

func (tp *temporal) dial() client.Client {
	tp.t.Helper()
	c, err := client.Dial(client.Options{HostPort: tp.hostPort, Namespace: tp.ns, Logger: quiet{}})
	if err != nil {
		tp.t.Fatalf("dial temporal: %v", err)
	}
	tp.t.Cleanup(c.Close)
	return c
}

func splitHostPort(hp string) (string, string, error) {
	for i := len(hp) - 1; i >= 0; i-- {
		if hp[i] == ':' {
			return hp[:i], hp[i+1:], nil
		}
	}
	return hp, "", fmt.Errorf("no port in %q", hp)
}

// jitter is a random duration in [min, max).
func jitter(rng *rand.Rand, min, max time.Duration) time.Duration {
	return min + time.Duration(rng.Int64N(int64(max-min)))
}

// quiet drops SDK logging; failures reach the tests as errors.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// setUp is where every fault test starts: the temporal and rapport
// binaries, a fresh migrated database with a store over it, and the
// compiled playbook the test runs.
func setUp(t *testing.T, playbook string) (tbin, rbin, dbURL string, st *store.Store, plan *engine.Plan) {
	t.Helper()
	tbin = requireIntegration(t)
	rbin = rapportBinary(t)
	dbURL = storetest.NewDB(t)
	st, err := store.Open(context.Background(), dbURL, storetest.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	plan, err = engine.CompileFile(playbook)
	if err != nil {
		t.Fatal(err)
	}
	return tbin, rbin, dbURL, st, plan
}
