// Package worker runs Rapport's Temporal worker: the Journey workflow,
// the Scan workflow and every activity (backed by PostgreSQL, delivering
// through the channels configured in the environment), with Prometheus
// metrics and a health check. Any number of workers may share the task
// queue: journeys and scans are plain Temporal workflows and every
// activity is idempotent.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/delivery"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/payloadcrypt"
	"github.com/rapport-crm/rapport/reconcile"
	"github.com/rapport-crm/rapport/scan"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/temporalenv"
	"github.com/rapport-crm/rapport/unsubscribe"
	"github.com/rapport-crm/rapport/workflows"
)

// Config is the worker's configuration, normally from the environment.
type Config struct {
	// TemporalAddress and Namespace override the Temporal settings
	// temporalenv.Load reads (config file profile, TEMPORAL_* variables);
	// empty keeps them. TLS, mTLS and API keys come only from there.
	TemporalAddress string
	Namespace       string
	DatabaseURL     string // DATABASE_URL, default store.DefaultDatabaseURL
	MetricsAddr     string // RAPPORT_METRICS_ADDR, default :9090; "off" disables
	// CacheSize is the SDK's sticky workflow cache (RAPPORT_WORKFLOW_CACHE,
	// default the SDK's 10,000). Each cached journey costs about 30 KiB;
	// a journey evicted while it waits costs nothing until its timer or
	// event, when it is replayed from history.
	CacheSize int
	// StopTimeout is how long Stop waits for running activities before
	// abandoning them to be retried by another worker.
	StopTimeout time.Duration
	// Backoff spaces Run's attempts to reach PostgreSQL and Temporal at
	// start; zero is DefaultBackoff.
	Backoff Backoff
	// Slots bound the activities run at once, sized against the database
	// pool (see Slots); zero values take the defaults.
	Slots Slots
}

// ConfigFromEnv reads Config from the environment, with defaults.
func ConfigFromEnv() Config {
	return Config{
		DatabaseURL: envOr("DATABASE_URL", store.DefaultDatabaseURL),
		MetricsAddr: envOr("RAPPORT_METRICS_ADDR", ":9090"),
		StopTimeout: 30 * time.Second,
		CacheSize:   envInt("RAPPORT_WORKFLOW_CACHE"),
		Slots:       Slots{Local: envInt("RAPPORT_LOCAL_ACTIVITY_SLOTS"), Activity: envInt("RAPPORT_ACTIVITY_SLOTS")},
	}
}

// envInt is the integer value of an environment variable, 0 when unset
// or not a number.
func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Options assemble a Worker from parts the caller owns (rapport dev and
// the end-to-end tests run it in-process next to the API).
type Options struct {
	// Client must carry Codec's converters (Codec.ClientOptions).
	Client client.Client
	Store  *store.Store
	// Delivery is how messages are sent: channels and link secrets.
	Delivery delivery.Config
	// Codec is the payload codec Client was dialled with; the reconcile
	// activities decode journey results with it. Nil: no encryption.
	Codec *payloadcrypt.Codec
	// Activities implement the journeys' activities; default Store's, with
	// messages sent by delivery over its outbox with Delivery. They are
	// wrapped with metrics either way.
	Activities activities.All
	Metrics    *Metrics // default NewMetrics()
	// StopTimeout: see Config. Default 30s.
	StopTimeout time.Duration
	Logger      *slog.Logger
	// Slots: see Config. Default sized against Store's pool.
	Slots Slots
	// Backoff spaces Start's attempts to create or update the reconcile
	// schedule after the first fails; zero is DefaultBackoff.
	Backoff Backoff
	// ScanPartitions is how many partitions (child workflows) a scan
	// splits into; zero is scan.DefaultPartitions. Run reads it from
	// RAPPORT_SCAN_PARTITIONS (scan.PartitionsFromEnv).
	ScanPartitions int
}

// The store is what delivery sends through: every activity but the
// sending, and the outbox.
var _ delivery.Backend = (*store.Store)(nil)

// Worker is a started-or-ready Temporal worker with its deployed plans.
type Worker struct {
	opts    Options
	w       sdkworker.Worker
	plans   *engine.Registry
	Metrics *Metrics
	// stopEnsure ends Start's background attempts at the reconcile
	// schedule, and waits for them.
	stopEnsure func()
}

// New registers the workflows and activities on a new worker for
// workflows.TaskQueue. It does not start polling.
func New(opts Options) *Worker {
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Activities == nil {
		opts.Activities = delivery.Activities(opts.Store, opts.Delivery)
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 30 * time.Second
	}
	if opts.Slots == (Slots{}) && opts.Store != nil {
		opts.Slots, _ = sizeSlots(int(opts.Store.Pool().Config().MaxConns), Slots{}) // on a 1-connection pool, the SDK's defaults
	}
	w := sdkworker.New(opts.Client, workflows.TaskQueue, sdkworker.Options{
		WorkerStopTimeout:                       opts.StopTimeout,
		MaxConcurrentLocalActivityExecutionSize: opts.Slots.Local,
		MaxConcurrentActivityExecutionSize:      opts.Slots.Activity,
	})
	workflows.Register(w, Instrument(opts.Activities, opts.Metrics))
	sa := &scan.Activities{Store: opts.Store, Start: scan.TemporalStarter(opts.Client), Partitions: opts.ScanPartitions}
	opts.Metrics.ScanHooks(sa)
	scan.Register(w, sa)
	rt := reconcile.Temporal{Client: opts.Client}
	if opts.Codec != nil {
		rt.DataConverter = opts.Codec.DataConverter()
	}
	ra := &reconcile.Activities{Store: opts.Store, Workflows: rt, Logger: opts.Logger}
	opts.Metrics.ReconcileHooks(ra)
	reconcile.Register(w, ra)
	return &Worker{opts: opts, w: w, plans: engine.NewRegistry(), Metrics: opts.Metrics}
}

// LoadPlans reads the deployed playbook versions, so the worker reports
// what it serves; journeys carry their own source and scans read the
// active version per page, so a stale list never changes behaviour.
func (w *Worker) LoadPlans(ctx context.Context) error {
	deployed, err := w.opts.Store.DeployedPlaybooks(ctx)
	if err != nil {
		return err
	}
	reg := engine.NewRegistry()
	for _, d := range deployed {
		p, err := engine.CompileCached(d.Source)
		if err != nil {
			w.opts.Logger.Warn("deployed playbook no longer compiles", "playbook", d.Name, "version", d.Version, "error", err)
			continue
		}
		reg.Add(p)
		w.opts.Logger.Info("deployed playbook", "playbook", p.Name, "version", p.Version, "trigger", p.Trigger.Kind)
	}
	w.plans = reg
	return nil
}

// Store is the store the worker's activities use.
func (w *Worker) Store() *store.Store { return w.opts.Store }

// Plans are the deployed plans LoadPlans read.
func (w *Worker) Plans() *engine.Registry { return w.plans }

// Start creates or updates the reconcile schedule (reconcile.Ensure with
// reconcile.ConfigFromEnv) and begins polling the task queue. A
// RAPPORT_RECONCILE_* value that does not parse fails Start; a schedule
// that cannot be created or updated does not: Start logs it, polls
// anyway, and keeps trying in the background with Options.Backoff (see
// Retry) until it succeeds or Stop.
func (w *Worker) Start() error {
	cfg, err := reconcile.ConfigFromEnv()
	if err != nil {
		return err
	}
	log := w.opts.Logger.With("schedule", reconcile.ScheduleID)
	ensure := func(ctx context.Context) (struct{}, error) {
		ctx, cancel := context.WithTimeout(ctx, AttemptTimeout)
		defer cancel()
		done, err := reconcile.Ensure(ctx, w.opts.Client, cfg)
		if err == nil && done.ByHand {
			log.Warn("reconcile schedule paused by hand: left paused (resume it with temporal schedule toggle --unpause)", "note", done.Note)
		}
		return struct{}{}, err
	}
	if _, err := ensure(context.Background()); err != nil {
		log.Warn("cannot create or update the reconcile schedule; the worker runs, and retries in the background", "error", err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = Retry(ctx, log, "Temporal for the reconcile schedule", w.opts.Backoff, ensure)
		}()
		w.stopEnsure = func() { cancel(); <-done }
	}
	if err := w.w.Start(); err != nil {
		w.stopEnsuring()
		return fmt.Errorf("start worker on task queue %s: %w", workflows.TaskQueue, err)
	}
	return nil
}

// Stop stops polling and waits up to StopTimeout for running activities;
// those still running are abandoned and retried by another worker after
// their timeout.
func (w *Worker) Stop() {
	w.stopEnsuring()
	w.w.Stop()
}

func (w *Worker) stopEnsuring() {
	if w.stopEnsure != nil {
		w.stopEnsure()
		w.stopEnsure = nil
	}
}

// Run is `rapport worker`: it connects to PostgreSQL and Temporal,
// retrying with cfg.Backoff while either is unreachable (see Retry),
// serves metrics, runs the worker until ctx is cancelled (SIGINT/SIGTERM),
// and then stops gracefully. Cancelled before it connected, it returns
// nil: the operator stopped it.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	cfgStore, err := store.ConfigFromEnv()
	if err != nil {
		return err
	}
	cfgDelivery, err := delivery.ConfigFromEnv()
	if err != nil {
		return err
	}
	if err := checkLinks(cfgDelivery); err != nil {
		return err
	}
	partitions, err := scan.PartitionsFromEnv()
	if err != nil {
		return err
	}
	// The scans' starts read it (workflows.Input); a bad value stops the
	// worker here rather than failing every start.
	if _, err := workflows.StartEdition(); err != nil {
		return err
	}
	topts, err := temporalenv.Load(temporalenv.Overrides{Address: cfg.TemporalAddress, Namespace: cfg.Namespace})
	if err != nil {
		return err
	}
	keys, err := payloadcrypt.KeysFromEnv()
	if err != nil {
		return err
	}
	warnIfClear(keys, log)
	st, err := openStore(ctx, log, cfg.Backoff, cfg.DatabaseURL, cfgStore)
	if err != nil {
		return stoppedWhileConnecting(ctx, err, log)
	}
	defer st.Close()
	codec := payloadcrypt.New(keys, st, payloadcrypt.Options{})
	topts = codec.ClientOptions(topts)
	slots, err := sizeSlots(int(st.Pool().Config().MaxConns), cfg.Slots)
	if err != nil {
		return err
	}
	if len(cfgDelivery.Channels) == 0 {
		log.Warn("no delivery channel configured: every send will fail permanently (set RAPPORT_SMTP_ADDR, or RAPPORT_DEV_CHANNELS=log)")
	}
	if cfg.CacheSize > 0 {
		sdkworker.SetStickyWorkflowCacheSize(cfg.CacheSize) // before any worker exists
	}
	m := NewMetrics()
	defer m.Close()
	topts.MetricsHandler, topts.Logger = m.TemporalHandler(), sdklog.NewStructuredLogger(log)
	c, err := dialTemporal(ctx, log, cfg.Backoff, topts)
	if err != nil {
		return stoppedWhileConnecting(ctx, err, log)
	}
	defer c.Close()
	w := New(Options{Client: c, Store: st, Delivery: cfgDelivery, Codec: codec, Metrics: m, StopTimeout: cfg.StopTimeout, Logger: log, Slots: slots, Backoff: cfg.Backoff,
		ScanPartitions: partitions})
	if err := w.LoadPlans(ctx); err != nil {
		return err
	}
	stopHTTP, err := serveMetrics(cfg.MetricsAddr, m, c, st, log)
	if err != nil {
		return err
	}
	defer stopHTTP()
	if err := w.Start(); err != nil {
		return err
	}
	log.Info("worker running", "temporal", temporalenv.Describe(topts), "task_queue", workflows.TaskQueue, "metrics", cfg.MetricsAddr, "payload_encryption", codec.Enabled(),
		"db_pool", st.Pool().Config().MaxConns, "local_activity_slots", slots.Local, "activity_slots", slots.Activity,
		"scan_partitions", partitions)
	<-ctx.Done()
	log.Info("stopping worker: waiting for running activities", "timeout", cfg.StopTimeout)
	w.Stop()
	log.Info("worker stopped")
	return nil
}

// warnIfClear warns that, without master keys, customers' data is
// written into Temporal histories in clear.
func warnIfClear(keys *payloadcrypt.Keyring, log *slog.Logger) {
	if keys == nil {
		log.Warn(payloadcrypt.EnvKeys + " is not set: Temporal payloads (customer profiles, addresses, events) are stored in clear; see docs/operators.md, Payload encryption")
	}
}

// checkLinks refuses to start a worker that would send email or SMS
// whose unsubscribe links are relative or http (RAPPORT_PUBLIC_URL):
// every marketing message would go out with a link that cannot work or
// that receivers ignore, and nobody would notice until complaints. http is
// only for `rapport dev`, which builds its store without this check.
func checkLinks(cfg delivery.Config) error {
	if cfg.Channels["email"] == nil && cfg.Channels["sms"] == nil {
		return nil
	}
	if err := unsubscribe.CheckPublicURL(cfg.PublicURL, false); err != nil {
		return fmt.Errorf("email and SMS need unsubscribe links: %w", err)
	}
	return nil
}

// serveMetrics serves /metrics and /healthz on addr ("off" serves
// nothing) and returns a function that shuts the server down.
func serveMetrics(addr string, m *Metrics, c client.Client, st *store.Store, log *slog.Logger) (func(), error) {
	if addr == "off" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s (RAPPORT_METRICS_ADDR): %w", addr, err)
	}
	srv := &http.Server{Handler: m.Handler(HealthChecks(c, st)), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "error", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// HealthChecks are the worker's dependencies: Temporal and PostgreSQL.
func HealthChecks(c client.Client, st *store.Store) map[string]Check {
	return map[string]Check{
		"temporal": func(ctx context.Context) error {
			_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		},
		"db": func(ctx context.Context) error { return st.Pool().Ping(ctx) },
	}
}
