package devenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
)

// TemporalCLIModule is the temporal CLI installed when none is found.
// Later versions carry a replace directive in their go.mod, which makes
// `go install` refuse them.
const TemporalCLIModule = "github.com/temporalio/cli/cmd/temporal@v1.5.1"

// TemporalBinary finds the temporal CLI: on PATH, then in $(go env
// GOPATH)/bin. With install set and nothing found, it installs it with go
// install (which needs only the Go module proxy) and returns the new binary.
func TemporalBinary(ctx context.Context, install bool, log io.Writer) (string, error) {
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	gobin, err := goBinDir(ctx)
	if err != nil {
		return "", err
	}
	p := filepath.Join(gobin, "temporal")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if !install {
		return "", fmt.Errorf("temporal CLI not found on PATH nor in %s; install it with: go install %s", gobin, TemporalCLIModule)
	}
	fmt.Fprintf(log, "installing the Temporal CLI: go install %s (a few minutes the first time)\n", TemporalCLIModule)
	cmd := exec.CommandContext(ctx, "go", "install", TemporalCLIModule)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s: %w", TemporalCLIModule, err)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("go install %s succeeded but %s is missing (GOBIN set elsewhere?)", TemporalCLIModule, p)
	}
	return p, nil
}

// goBinDir is where go install puts binaries: GOBIN, else GOPATH/bin.
func goBinDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOBIN GOPATH: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
		return strings.TrimSpace(lines[0]), nil
	}
	if len(lines) < 2 || strings.TrimSpace(lines[1]) == "" {
		return "", errors.New("go env: GOPATH is empty")
	}
	gopath := strings.Split(strings.TrimSpace(lines[1]), string(os.PathListSeparator))[0]
	return filepath.Join(gopath, "bin"), nil
}

// TemporalReachable reports whether a Temporal frontend answers at
// hostPort within timeout.
func TemporalReachable(ctx context.Context, hostPort, namespace string, timeout time.Duration) bool {
	c, err := DialTemporal(ctx, hostPort, namespace, timeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// DialTemporal connects to hostPort and checks the server's health within
// timeout.
func DialTemporal(ctx context.Context, hostPort, namespace string, timeout time.Duration) (client.Client, error) {
	return DialTemporalWith(ctx, client.Options{HostPort: hostPort, Namespace: namespace}, timeout)
}

// DialTemporalWith is DialTemporal with full client options (TLS, API
// key: see temporalenv); it sets a quiet Logger when opts has none.
func DialTemporalWith(ctx context.Context, opts client.Options, timeout time.Duration) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if opts.Logger == nil {
		opts.Logger = quietLogger{}
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("temporal at %s: %w", opts.HostPort, err)
	}
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		c.Close()
		return nil, fmt.Errorf("temporal at %s: health check: %w", opts.HostPort, err)
	}
	return c, nil
}

// TemporalOptions configure a dev server started by StartTemporal.
type TemporalOptions struct {
	Binary   string // the temporal CLI
	HostPort string // frontend address, e.g. 127.0.0.1:7233
	UIPort   int    // Web UI port; 0 runs headless
	// UICodecEndpoint is the codec server the Web UI decodes payloads
	// through (--ui-codec-endpoint); "" for none.
	UICodecEndpoint string
	Namespace       string
	DBFile          string // SQLite file that keeps state across restarts; "" keeps it in memory
	// SearchAttributes registers custom search attributes, name → type
	// (Keyword, Text, Int, Double, Bool, Datetime, KeywordList).
	SearchAttributes map[string]string
	Log              io.Writer // the server's output; nil discards it
}

// TemporalServer is a dev server process this program started.
type TemporalServer struct {
	cmd      *exec.Cmd
	HostPort string
	UIURL    string // "" when headless
	done     chan struct{}
}

// StartTemporal starts `temporal server start-dev` in its own process
// group and waits until its frontend answers. Stop kills the whole group,
// so nothing the CLI spawned outlives us.
func StartTemporal(ctx context.Context, o TemporalOptions) (*TemporalServer, error) {
	host, port, err := net.SplitHostPort(o.HostPort)
	if err != nil {
		return nil, fmt.Errorf("temporal dev server address %q: %w", o.HostPort, err)
	}
	args := []string{"server", "start-dev", "--ip", host, "--port", port, "--namespace", o.Namespace,
		"--log-level", "warn", "--dynamic-config-value", "frontend.enableServerVersionCheck=false"}
	if o.UIPort > 0 {
		args = append(args, "--ui-port", fmt.Sprint(o.UIPort))
		if o.UICodecEndpoint != "" {
			args = append(args, "--ui-codec-endpoint", o.UICodecEndpoint)
		}
	} else {
		args = append(args, "--headless")
	}
	if o.DBFile != "" {
		args = append(args, "--db-filename", o.DBFile)
	}
	names := make([]string, 0, len(o.SearchAttributes))
	for name := range o.SearchAttributes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		args = append(args, "--search-attribute", name+"="+o.SearchAttributes[name])
	}
	cmd := exec.Command(o.Binary, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if o.Log != nil {
		cmd.Stdout, cmd.Stderr = o.Log, o.Log
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Binary, err)
	}
	s := &TemporalServer{cmd: cmd, HostPort: o.HostPort, done: make(chan struct{})}
	if o.UIPort > 0 {
		s.UIURL = fmt.Sprintf("http://localhost:%d", o.UIPort)
	}
	go func() { _ = cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ctx, o.Namespace); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *TemporalServer) waitReady(ctx context.Context, namespace string) error {
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("temporal dev server exited during start-up: %v", s.cmd.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if TemporalReachable(ctx, s.HostPort, namespace, 2*time.Second) {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("temporal dev server at %s did not answer within 90s", s.HostPort)
}

// PID is the server process's id (the bench pins it to CPUs of its own).
func (s *TemporalServer) PID() int { return s.cmd.Process.Pid }

// Stop terminates the server's process group: SIGTERM, then SIGKILL after
// ten seconds.
func (s *TemporalServer) Stop() {
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// quietLogger drops the SDK's own logging during probes.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
