// Command soak puts sustained event load through Rapport's event API for a
// fixed time and checks that nothing was lost on the way: every accepted
// event produced exactly the enrollments the playbooks prescribe, counted
// in PostgreSQL.
//
// It runs everything itself on loopback: a Temporal dev server (in
// memory), a fresh PostgreSQL database (dropped at the end), the worker
// and the API in this process (devenv.Stack) behind a real HTTP server, and
// a load generator at a bounded rate. It stops by itself.
//
//	go run ./soak -duration 10m -rate 20
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/rapport-crm/rapport/channels"
	"github.com/rapport-crm/rapport/delivery"
	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/payloadcrypt"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/workflows"
)

const apiKey = "soak-key"

type options struct {
	duration time.Duration
	rate     float64
	settle   time.Duration
	dbURL    string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long to send events")
	flag.Float64Var(&o.rate, "rate", 20, "events per second (bounded)")
	flag.DurationVar(&o.settle, "settle", 5*time.Minute, "how long to wait for the last enrollments after the load stops")
	flag.StringVar(&o.dbURL, "database-url", envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "PostgreSQL server (a fresh database is created on it)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, o options) error {
	env, err := startEnv(ctx, o.dbURL)
	if err != nil {
		return err
	}
	defer env.close()
	fmt.Printf("soak: %s at %.0f events/s against %s (GOMAXPROCS %d)\n", o.duration, o.rate, env.apiURL, runtime.GOMAXPROCS(0))
	res := load(ctx, env.apiURL, o.duration, o.rate)
	fmt.Println("soak: load done, waiting for enrollments")
	got, waited, err := settle(ctx, env.st, res.expected(), o.settle)
	if err != nil {
		return err
	}
	report(o, res, got, waited)
	if res.errors > 0 || got != res.expected() {
		return fmt.Errorf("FAILED: %d errors, %d enrollments for %d expected", res.errors, got, res.expected())
	}
	return nil
}

// soakEnv is the system under load.
type soakEnv struct {
	st      *store.Store
	apiURL  string
	closers []func()
}

func (e *soakEnv) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

func startEnv(ctx context.Context, serverURL string) (env *soakEnv, err error) {
	env = &soakEnv{}
	defer func() {
		if err != nil {
			env.close()
		}
	}()
	bin, err := devenv.TemporalBinary(ctx, false, io.Discard)
	if err != nil {
		return nil, err
	}
	port, err := devenv.FreePort()
	if err != nil {
		return nil, err
	}
	srv, err := devenv.StartTemporal(ctx, devenv.TemporalOptions{Binary: bin, HostPort: fmt.Sprintf("127.0.0.1:%d", port), Namespace: "soak", SearchAttributes: workflows.SearchAttributes})
	if err != nil {
		return nil, err
	}
	env.closers = append(env.closers, srv.Stop)
	dbURL, drop, err := freshDatabase(ctx, serverURL)
	if err != nil {
		return nil, err
	}
	env.closers = append(env.closers, drop)
	cfg := store.DefaultConfig()
	cfg.CapMax = 0
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	send := delivery.Config{Channels: channels.Set{"email": &channels.Log{Name: "email", Logger: quiet}},
		UnsubscribeSecret: []byte("soak-secret"), PublicURL: "http://127.0.0.1"}
	st, err := store.Open(ctx, dbURL, cfg)
	if err != nil {
		return nil, err
	}
	env.closers = append(env.closers, st.Close)
	env.st = st
	// Payloads are encrypted as in production when RAPPORT_PAYLOAD_KEYS
	// is set.
	codec, err := payloadcrypt.FromEnv(st)
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(codec.ClientOptions(client.Options{HostPort: srv.HostPort, Namespace: "soak", Logger: nopLogger{}}))
	if err != nil {
		return nil, err
	}
	env.closers = append(env.closers, c.Close)
	stack, err := devenv.StartStack(ctx, devenv.StackOptions{Client: c, Store: st, APIKey: apiKey, Delivery: send, Codec: codec})
	if err != nil {
		return nil, err
	}
	env.closers = append(env.closers, stack.Stop)
	if err := deploy(ctx, stack); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: stack.API, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	env.closers = append(env.closers, func() { _ = hs.Close() })
	env.apiURL = "http://" + ln.Addr().String()
	return env, nil
}

func deploy(ctx context.Context, stack *devenv.Stack) error {
	var plans []*engine.Plan
	for name, src := range map[string]string{"welcome.yaml": welcomeYAML, "big_spender.yaml": bigSpenderYAML} {
		p, err := engine.Compile(name, []byte(src))
		if err != nil {
			return err
		}
		plans = append(plans, p)
	}
	_, err := stack.Deploy(ctx, plans...)
	return err
}

// freshDatabase creates and migrates rapport_soak_<time> on the server and
// returns its URL and a function that drops it.
func freshDatabase(ctx context.Context, serverURL string) (string, func(), error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("database URL: %w", err)
	}
	name := fmt.Sprintf("rapport_soak_%d", time.Now().Unix())
	u.Path = "/" + name
	dbURL := u.String()
	if _, err := devenv.EnsureDatabase(ctx, dbURL); err != nil {
		return "", nil, err
	}
	drop := func() {
		admin := *u
		admin.Path = "/postgres"
		conn, err := pgx.Connect(context.Background(), admin.String())
		if err == nil {
			_, err = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(context.Background())
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "soak: drop database %s: %v\n", name, err)
		}
	}
	if err := store.Migrate(ctx, dbURL); err != nil {
		drop()
		return "", nil, err
	}
	return dbURL, drop, nil
}

// settle polls the enrollment count until it reaches want or stops moving
// for the settle time.
func settle(ctx context.Context, st *store.Store, want int, limit time.Duration) (int, time.Duration, error) {
	start := time.Now()
	var got int
	for time.Since(start) < limit {
		var ended int
		err := st.Pool().QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status <> 'active') FROM enrollments`).Scan(&got, &ended)
		if err != nil {
			return 0, 0, fmt.Errorf("count enrollments: %w", err)
		}
		if got >= want && ended == got {
			break
		}
		select {
		case <-ctx.Done():
			return got, time.Since(start), ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return got, time.Since(start), nil
}

// nopLogger drops SDK logging.
type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}
func (nopLogger) Error(string, ...any) {}
