package worker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/store/storetest"
	"github.com/rapport-crm/rapport/worker"
	"github.com/rapport-crm/rapport/workflows"
)

// fast is a back-off for tests: the real one's shape, in milliseconds.
var fast = worker.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, Jitter: 0.2}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	exact := worker.Backoff{Initial: time.Second, Max: 30 * time.Second}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i, w := range want {
		if got := exact.Delay(i + 1); got != w*time.Second {
			t.Errorf("Delay(%d) = %s, want %s", i+1, got, w*time.Second)
		}
	}
	if got := exact.Delay(100000); got != 30*time.Second {
		t.Errorf("Delay(100000) = %s, want the 30s cap", got)
	}
	if got := (worker.Backoff{}).Delay(1); got > time.Second || got < 800*time.Millisecond {
		t.Errorf("zero Backoff: Delay(1) = %s, want DefaultBackoff's 0.8–1s", got)
	}
	// Jitter shortens by up to 20 % and never crosses the cap.
	spread := map[time.Duration]bool{}
	for range 200 {
		for n, base := range map[int]time.Duration{1: time.Second, 4: 8 * time.Second, 9: 30 * time.Second} {
			d := worker.DefaultBackoff.Delay(n)
			if d > base || d < base*8/10 {
				t.Fatalf("DefaultBackoff.Delay(%d) = %s, want within [%s, %s]", n, d, base*8/10, base)
			}
			spread[d] = true
		}
	}
	if len(spread) < 10 {
		t.Errorf("jitter produced only %d distinct delays in 600 draws", len(spread))
	}
}

// TestRetryKeepsTryingUntilCancelled dials a port where nothing listens:
// Retry keeps trying, logs every attempt with its error and next delay,
// and returns promptly once the context is cancelled.
func TestRetryKeepsTryingUntilCancelled(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	logs := newLogBuffer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := worker.Retry(ctx, logs.logger(), "the probe", fast, func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		})
		done <- err
	}()
	logs.waitFor(t, "cannot reach the probe; retrying", 4, done)
	for _, want := range []string{"attempt=1 ", "attempt=4 ", "connection refused", "retry_in="} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	err := cancelAndWait(t, cancel, done)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Retry returned %v, want context.Canceled with the last error", err)
	}
}

func TestRetryReturnsOnceTheAttemptSucceeds(t *testing.T) {
	t.Parallel()
	logs := newLogBuffer()
	calls := 0
	got, err := worker.Retry(context.Background(), logs.logger(), "the probe", fast, func(context.Context) (int, error) {
		calls++
		if calls < 3 {
			return 0, fmt.Errorf("not yet (%d)", calls)
		}
		return 42, nil
	})
	if err != nil || got != 42 || calls != 3 {
		t.Fatalf("Retry = %d, %v after %d calls; want 42, nil after 3", got, err, calls)
	}
	for _, want := range []string{"error=\"not yet (2)\"", "connected to the probe", "attempts=3"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// TestRunWaitsForPostgreSQL: with nothing listening at DATABASE_URL, Run
// neither exits nor logs the URL's password; cancelling stops it cleanly.
func TestRunWaitsForPostgreSQL(t *testing.T) {
	t.Parallel()
	const password = "s3cret-pw-do-not-log"
	cfg := testConfig(closedAddr(t))
	cfg.DatabaseURL = "postgres://rapport:" + password + "@" + closedAddr(t) + "/rapport?sslmode=disable"
	logs := newLogBuffer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg, logs.logger()) }()
	logs.waitFor(t, "cannot reach PostgreSQL; retrying", 3, done)
	if err := cancelAndWait(t, cancel, done); err != nil {
		t.Errorf("Run cancelled while waiting for PostgreSQL returned %v, want nil (a clean stop)", err)
	}
	out := logs.String()
	if strings.Contains(out, password) {
		t.Errorf("the log contains DATABASE_URL's password:\n%s", out)
	}
	for _, want := range []string{"attempt=3 ", "worker stopped before it connected"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// TestRunWaitsForTemporal: PostgreSQL is up, nothing listens at
// TEMPORAL_ADDRESS; Run keeps retrying and stops cleanly on cancel.
func TestRunWaitsForTemporal(t *testing.T) {
	t.Parallel()
	cfg := testConfig(closedAddr(t))
	cfg.DatabaseURL = storetest.NewDB(t)
	logs := newLogBuffer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg, logs.logger()) }()
	logs.waitFor(t, "cannot reach Temporal; retrying", 3, done)
	if err := cancelAndWait(t, cancel, done); err != nil {
		t.Errorf("Run cancelled while waiting for Temporal returned %v, want nil (a clean stop)", err)
	}
	if out := logs.String(); strings.Contains(out, "cannot reach PostgreSQL") || !strings.Contains(out, "temporal="+cfg.TemporalAddress) {
		t.Errorf("want only Temporal attempts, naming its address:\n%s", out)
	}
}

// TestRunConnectsWhenTemporalComesUp starts Run with nothing at
// TEMPORAL_ADDRESS, then a real dev server there: the worker connects by
// itself, polls the task queue and answers /healthz.
func TestRunConnectsWhenTemporalComesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal dev server; not with -short")
	}
	t.Parallel()
	ctx, cancelAll := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelAll()
	bin, err := devenv.TemporalBinary(ctx, false, io.Discard)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true needs the Temporal CLI: %v", err)
		}
		t.Skipf("no Temporal CLI: %v", err)
	}
	cfg := testConfig(closedAddr(t))
	cfg.Backoff = worker.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, Jitter: 0.2}
	cfg.DatabaseURL = storetest.NewDB(t)
	cfg.MetricsAddr = closedAddr(t)
	cfg.StopTimeout = 5 * time.Second

	logs := newLogBuffer()
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	done := make(chan error, 1)
	go func() { done <- worker.Run(runCtx, cfg, logs.logger()) }()
	logs.waitFor(t, "cannot reach Temporal; retrying", 2, done)

	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  bin,
		ClientOptions: &client.Options{HostPort: cfg.TemporalAddress, Logger: quiet{}},
		LogLevel:      "error",
		Stdout:        io.Discard,
		Stderr:        io.Discard,
		ExtraArgs:     []string{"--http-port", port(t), "--metrics-port", port(t)},
	})
	if err != nil {
		t.Fatalf("start dev server on %s: %v", cfg.TemporalAddress, err)
	}
	defer func() { _ = srv.Stop() }()

	logs.waitFor(t, "worker running", 1, done)
	if !strings.Contains(logs.String(), "connected to Temporal") {
		t.Errorf("log lacks the reconnection line:\n%s", logs)
	}
	res, err := http.Get("http://" + cfg.MetricsAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d, want 200", res.StatusCode)
	}
	// The worker polls: the server lists it among the task queue's pollers.
	for {
		tq, err := srv.Client().DescribeTaskQueue(ctx, workflows.TaskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err == nil && len(tq.GetPollers()) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no poller on task queue %s (last error %v)", workflows.TaskQueue, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := cancelAndWait(t, stopRun, done); err != nil {
		t.Errorf("Run: %v", err)
	}
}

// testConfig is a worker configuration for temporalAddr with the fast
// back-off and no metrics server.
func testConfig(temporalAddr string) worker.Config {
	return worker.Config{
		TemporalAddress: temporalAddr, Namespace: "default", MetricsAddr: "off",
		StopTimeout: time.Second, Backoff: fast,
	}
}

// closedAddr is a loopback address where nothing listens (it was free a
// moment ago; connecting is refused at once).
func closedAddr(t *testing.T) string { return "127.0.0.1:" + port(t) }

func port(t *testing.T) string {
	t.Helper()
	p, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(p)
}

// cancelAndWait cancels and requires the function behind done to return
// promptly, returning its error.
func cancelAndWait(t *testing.T, cancel context.CancelFunc, done <-chan error) error {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("did not return within 10s of the cancel")
		return nil
	}
}

// logBuffer collects a text log and lets a test wait for lines, so tests
// wait for what happened rather than for a guessed time.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{}, 1)} }

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor waits until n log lines contain substr. It fails the test when
// the function behind done returns first (it should still be waiting)
// or after a minute.
func (l *logBuffer) waitFor(t *testing.T, substr string, n int, done <-chan error) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		count := 0
		for _, line := range strings.Split(l.String(), "\n") {
			if strings.Contains(line, substr) {
				count++
			}
		}
		if count >= n {
			return
		}
		select {
		case <-l.changed:
		case err := <-done:
			t.Fatalf("returned (%v) before %d log lines with %q:\n%s", err, n, substr, l)
		case <-timeout:
			t.Fatalf("no %d log lines with %q within a minute:\n%s", n, substr, l)
		}
	}
}

// quiet drops the dev server client's SDK logging.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
