package worker

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/rapport-crm/rapport/store"
)

// Backoff spaces the attempts to reach a dependency that is not up yet:
// the wait after failed attempt n is Initial·2^(n-1), capped at Max, and
// shortened at random by up to Jitter (a fraction), so a pool of workers
// restarted together does not knock in step. The cap is never exceeded.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	Jitter  float64 // 0 ≤ Jitter < 1
}

// DefaultBackoff waits 1s, 2s, 4s, 8s, 16s, then 30s between attempts,
// each up to 20 % shorter at random.
var DefaultBackoff = Backoff{Initial: time.Second, Max: 30 * time.Second, Jitter: 0.2}

// AttemptTimeout bounds one connection attempt, so an address that drops
// packets (no answer, not even a refusal) is retried like one that refuses.
const AttemptTimeout = 10 * time.Second

// Delay is the wait after failed attempt n (counting from 1).
func (b Backoff) Delay(n int) time.Duration {
	if b.Initial <= 0 || b.Max <= 0 {
		b = DefaultBackoff
	}
	d := b.Initial
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if b.Jitter > 0 && b.Jitter < 1 {
		d -= time.Duration(rand.Float64() * b.Jitter * float64(d))
	}
	return d
}

// Retry calls attempt until it succeeds or ctx ends, waiting b.Delay(n)
// after failed attempt n. Each failure is logged at Warn with the attempt
// number, the error and the next delay; a success after failures is logged
// at Info. what names the dependency in the log ("Temporal"); the error
// texts must not carry secrets (callers log addresses, never URLs with
// passwords). When ctx ends first Retry returns an error wrapping
// ctx.Err() and the last attempt's error.
//
// It is the one retry loop of the start-up path: `rapport worker` uses it
// for PostgreSQL and Temporal, and any other command that must wait for a
// dependency at start should call it rather than grow its own.
func Retry[T any](ctx context.Context, log *slog.Logger, what string, b Backoff, attempt func(context.Context) (T, error)) (T, error) {
	start := time.Now()
	for n := 1; ; n++ {
		v, err := attempt(ctx)
		if err == nil {
			if n > 1 {
				log.Info("connected to "+what, "attempts", n, "waited", time.Since(start).Round(time.Millisecond))
			}
			return v, nil
		}
		if ctx.Err() != nil {
			var zero T
			return zero, fmt.Errorf("gave up connecting to %s after %d attempts: %w (last error: %v)", what, n, ctx.Err(), err)
		}
		delay := b.Delay(n)
		log.Warn("cannot reach "+what+"; retrying", "attempt", n, "error", err, "retry_in", delay.Round(time.Millisecond))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			var zero T
			return zero, fmt.Errorf("gave up connecting to %s after %d attempts: %w (last error: %v)", what, n, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// openStore opens the store, retrying with b while PostgreSQL is
// unreachable. A DATABASE_URL that does not parse fails at once; the log
// names host and port only, never the URL (it may hold a password).
func openStore(ctx context.Context, log *slog.Logger, b Backoff, databaseURL string, cfg store.Config) (*store.Store, error) {
	pc, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	addr := net.JoinHostPort(pc.ConnConfig.Host, strconv.Itoa(int(pc.ConnConfig.Port)))
	return Retry(ctx, log.With("database", addr), "PostgreSQL", b, func(ctx context.Context) (*store.Store, error) {
		ctx, cancel := context.WithTimeout(ctx, AttemptTimeout)
		defer cancel()
		return store.Open(ctx, databaseURL, cfg)
	})
}

// dialTemporal dials Temporal and checks that the namespace exists,
// retrying with b until both hold: the worker's Start needs the namespace,
// and on a fresh cluster it may be registered after the frontend is up.
// (client.NewLazyClient would not help: a worker started on a lazy client
// that cannot connect fails Start, and Start cannot be retried on the same
// worker.)
func dialTemporal(ctx context.Context, log *slog.Logger, b Backoff, opts client.Options) (client.Client, error) {
	ns := opts.Namespace
	if ns == "" {
		ns = client.DefaultNamespace
	}
	return Retry(ctx, log.With("temporal", opts.HostPort, "namespace", ns), "Temporal", b, func(ctx context.Context) (client.Client, error) {
		ctx, cancel := context.WithTimeout(ctx, AttemptTimeout)
		defer cancel()
		c, err := client.DialContext(ctx, opts)
		if err != nil {
			return nil, err
		}
		if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns}); err != nil {
			c.Close()
			return nil, fmt.Errorf("namespace %q: %w", ns, err)
		}
		return c, nil
	})
}

// stoppedWhileConnecting is Run's answer to a failed connection: nil when
// ctx ended (SIGINT/SIGTERM while waiting is a clean stop), else err.
func stoppedWhileConnecting(ctx context.Context, err error, log *slog.Logger) error {
	if ctx.Err() != nil {
		log.Info("worker stopped before it connected", "reason", context.Cause(ctx))
		return nil
	}
	return err
}
