// Command bench measures Rapport against a bare Temporal baseline on one
// machine (local Temporal dev server, local PostgreSQL, loopback only):
//
//	a  enrollments per second, from tracked events through the API
//	   dispatcher to the first message recorded, beside bare workflows
//	   (start + one no-op local activity) run by the same server in the
//	   same run
//	b  segment scan: customers evaluated per second over N seeded
//	   customers, beside a raw SELECT of the same table
//	c  worker memory (RSS, Go heap) with N enrollments waiting on timers
//	e  enrollments started by a segment scan per second, beside bare
//	   workflows (start + one no-op local activity) on the same server
//	shape  part e taken apart: what each feature of a journey's first
//	   workflow task costs the server, one variant per process
//	ingest  events that start no journey through the event API per
//	   second, beside a raw INSERT of the same rows (issue #15 d)
//	size  bytes per row and index of customers, events, enrollments,
//	   their steps and messages (for docs/capacity.md)
//	history  events, workflow tasks and bytes per journey in the
//	   recorded sample histories (for docs/capacity.md)
//	report  `rapport report` over 1,000,000 customers and 10,000,000
//	   events (issue #15 c)
//
// Each part runs in its own fresh database (dropped afterwards) and the
// namespace rapport-bench. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rapport-crm/rapport/channels"
	"github.com/rapport-crm/rapport/delivery"
	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/payloadcrypt"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/workflows"
)

// runTag prefixes every customer id of this run: journeys of an earlier
// run may still wait in the namespace, and a workflow ID that is running
// would refuse the new enrollment.
var runTag = strconv.FormatInt(time.Now().Unix(), 36)

type config struct {
	temporal    string
	namespace   string
	dbBase      string // server URL without database
	parts       string
	enrollments int
	customers   int
	timers      int
	matchEvery  int
	cache       int
	concurrency int
	encryption  bool                  // part a: measure with payload encryption off and on
	keys        *payloadcrypt.Keyring // RAPPORT_PAYLOAD_KEYS, or generated for -encryption
	// parts select and birthdays (issue #15)
	selectCustomers  int
	selectMatchEvery int
	selectRuns       int
	// part e
	scanStarts      int
	partitions      int
	bareConcurrency []int
	// part ingest (issue #15 d)
	ingestCustomers, ingestHistory, ingestEvents, ingestRuns, ingestBatch, ingestEnrolled, ingestStatements int
	ingestProfile                                                                                           string
	eProfile                                                                                                string // part e
	ingestUnheard                                                                                           bool
	// part size
	sizeCustomers, sizeEvents int
	// part history
	historyDir string
	// part report (issue #15 c)
	reportCustomers, reportEvents, reportEnrollments, reportRuns int
	rapportBin, reportBefore                                     string
	reportBeforeSchema                                           int64
	reportKeep                                                   bool
	// grpcCompression is how every client compresses its requests to
	// Temporal: "gzip" (the SDK's default) or "none".
	grpcCompression string
	// serverCPUs is -server-cpus: the dev server on some CPUs, this
	// process and PostgreSQL on the others; nil: no pinning.
	serverCPUs *cpuSplit
	// part shape: which variants (names in shapes)
	shapes string
}

func main() {
	var c config
	flag.StringVar(&c.temporal, "temporal", envOr("TEMPORAL_ADDRESS", ""), `Temporal frontend; "" starts a dev server for the run`)
	flag.StringVar(&c.namespace, "namespace", "rapport-bench", "namespace (registered if missing)")
	flag.StringVar(&c.grpcCompression, "grpc-compression", "gzip", "gRPC compression of every client's requests to Temporal, Rapport's and the baselines': gzip (the SDK's default) or none")
	edition := flag.Int("edition", workflows.LatestEdition, "the edition of the journeys the run starts (sets "+workflows.EditionEnv+" for the process; 0: none, as before editions)")
	serverCPUs := flag.String("server-cpus", "", `CPUs (e.g. "0") the dev server the bench starts runs on, with this process and PostgreSQL moved to the others for the run, as on machines of their own ("": all share every CPU)`)
	flag.StringVar(&c.shapes, "shapes", "bare,journey", "part shape: variants to time, of bare, open, input, attrs, upsert, version, twolas, journey (each adds to the one before; journey is Rapport's)")
	flag.StringVar(&c.dbBase, "db", envOr("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432"), "PostgreSQL server URL (no database: each part creates its own)")
	flag.StringVar(&c.parts, "parts", "a,b,c,e", "which measurements to run")
	flag.IntVar(&c.enrollments, "enrollments", 2000, "part a: tracked events (and bare workflows)")
	flag.IntVar(&c.customers, "customers", 100000, "part b: customers seeded and scanned")
	flag.IntVar(&c.matchEvery, "match-every", 500, "part b: one customer in this many matches the segment (0: none)")
	flag.IntVar(&c.cache, "cache", 0, "SDK sticky workflow cache size (0: the SDK default, 10,000)")
	flag.IntVar(&c.timers, "timers", 10000, "part c: enrollments left waiting on timers")
	flag.IntVar(&c.concurrency, "concurrency", 32, "concurrent API calls / workflow starts")
	flag.IntVar(&c.scanStarts, "scan-starts", 2000, "part e: customers seeded, every one matched and enrolled by the scan")
	flag.IntVar(&c.partitions, "partitions", 0, "parts b and e: partitions the scan splits into (0: the worker's default, scan.DefaultPartitions)")
	flag.IntVar(&c.ingestCustomers, "ingest-customers", 100000, "part ingest: customers copied in")
	flag.IntVar(&c.ingestHistory, "ingest-history", 1_000_000, "part ingest: events copied in as history before the runs")
	flag.IntVar(&c.ingestEvents, "ingest-events", 5000, "part ingest: events sent in each timed run (and rows inserted raw)")
	flag.IntVar(&c.ingestRuns, "ingest-runs", 3, "part ingest: timed rounds (API, raw INSERT, batch); medians are reported")
	flag.IntVar(&c.ingestBatch, "ingest-batch", 20, "part ingest: events per /v1/batch call (0: no batch runs)")
	flag.IntVar(&c.ingestStatements, "ingest-statements", 0, "part ingest: the API's EventStatements (0: its default; -1: a statement per request)")
	flag.IntVar(&c.ingestEnrolled, "ingest-enrolled", 1000, "part ingest: customers signed up (in a running onboarding journey) for the second scenario (0: none)")
	flag.BoolVar(&c.ingestUnheard, "ingest-unheard", true, "part ingest: first measure with only the samples deployed that do not listen to the events (the API's own cost)")
	flag.StringVar(&c.eProfile, "e-cpuprofile", "", "part e: write a CPU profile of the scan's run (until every enrollment is admitted) to this file; part shape: of each variant's run, to VARIANT-FILE")
	flag.StringVar(&c.ingestProfile, "ingest-cpuprofile", "", "part ingest: write a CPU profile of each scenario's first API run to NAME-<scenario>.pprof")
	flag.IntVar(&c.sizeCustomers, "size-customers", 200000, "part size: customers (and half as many enrollments and messages) to measure")
	flag.IntVar(&c.sizeEvents, "size-events", 1000000, "part size: events to measure")
	flag.StringVar(&c.historyDir, "history-dir", "workflows/testdata/histories/2026-11-25", "part history: folder of recorded sample-*.json histories")
	bareConc := flag.String("bare-concurrency", "32,100,400", "part e: starter concurrencies of the bare baseline, each timed plainly and eagerly before and after the Rapport run; the fastest configuration (mean of its two rates) counts")
	flag.BoolVar(&c.encryption, "encryption", false, "part a: measure enrollments with payload encryption off and on (RAPPORT_PAYLOAD_KEYS, else a generated key), in the same run")
	flag.IntVar(&c.selectCustomers, "select-customers", 1_000_000, "parts select, birthdays: customers copied in")
	flag.IntVar(&c.selectMatchEvery, "select-match-every", 500, "part select: one customer in this many is in the segment")
	flag.IntVar(&c.selectRuns, "select-runs", 5, "parts select, birthdays: timed runs (the median is reported)")
	flag.IntVar(&c.reportCustomers, "report-customers", 1_000_000, "part report: customers copied in")
	flag.IntVar(&c.reportEvents, "report-events", 10_000_000, "part report: events copied in, over 13 months")
	flag.IntVar(&c.reportEnrollments, "report-enrollments", 100_000, "part report: enrollments in five playbooks (two in five: winback)")
	flag.IntVar(&c.reportRuns, "report-runs", 5, "part report: timed runs of each report (the median is reported)")
	flag.StringVar(&c.rapportBin, "rapport-bin", "", `part report: the rapport binary to time ("": built from this tree)`)
	flag.StringVar(&c.reportBefore, "report-before", "", "part report: a rapport binary of an earlier release, timed first on the schema it knew (-report-before-schema)")
	flag.Int64Var(&c.reportBeforeSchema, "report-before-schema", 15, "part report: the migration the -report-before release ends at")
	flag.BoolVar(&c.reportKeep, "report-keep", false, "part report: keep the seeded database (to EXPLAIN on it) instead of dropping it")
	flag.Parse()
	for _, f := range strings.Split(*bareConc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: -bare-concurrency %q: want positive whole numbers separated by commas\n", *bareConc)
			os.Exit(2)
		}
		c.bareConcurrency = append(c.bareConcurrency, n)
	}
	if err := os.Setenv(workflows.EditionEnv, strconv.Itoa(*edition)); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if _, err := workflows.StartEdition(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: -edition %d: %v\n", *edition, err)
		os.Exit(2)
	}
	if c.grpcCompression != "gzip" && c.grpcCompression != "none" {
		fmt.Fprintf(os.Stderr, "bench: -grpc-compression %q: want gzip or none\n", c.grpcCompression)
		os.Exit(2)
	}
	if *serverCPUs != "" {
		split, err := parseServerCPUs(*serverCPUs)
		if err == nil && c.temporal != "" {
			err = fmt.Errorf("it places the dev server the bench starts: not with -temporal or TEMPORAL_ADDRESS")
		}
		if err == nil && !needsTemporal(c.parts) {
			err = fmt.Errorf("parts %s start no dev server to place", c.parts)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: -server-cpus %q: %v\n", *serverCPUs, err)
			os.Exit(2)
		}
		c.serverCPUs = &split
	}
	var err error
	if c.keys, err = benchKeys(c.encryption); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// benchKeys are the payload keys the parts run with: RAPPORT_PAYLOAD_KEYS
// as every Rapport process reads it, else for -encryption a key made for
// the run.
func benchKeys(encryption bool) (*payloadcrypt.Keyring, error) {
	keys, err := payloadcrypt.KeysFromEnv()
	if err != nil || keys != nil || !encryption {
		return keys, err
	}
	spec, err := payloadcrypt.GenerateKeySpec("bench")
	if err != nil {
		return nil, err
	}
	return payloadcrypt.ParseKeys(spec)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func run(c config) error {
	// Ctrl-C cancels the parts, whose deferred clean-ups (databases, the
	// dev server) then run.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.cache > 0 {
		worker.SetStickyWorkflowCacheSize(c.cache)
	}
	if c.serverCPUs != nil {
		restore, err := c.serverCPUs.pinBench(ctx, c.dbBase)
		if err != nil {
			return err
		}
		defer restore()
	} else {
		printMachine()
	}
	defer func() {
		if sharedSelect != nil {
			sharedSelect.cleanup()
		}
	}()
	if c.temporal == "" && needsTemporal(c.parts) {
		port, err := devenv.FreePort()
		if err != nil {
			return err
		}
		bin, err := devenv.TemporalBinary(ctx, false, io.Discard)
		if err != nil {
			return err
		}
		srv, err := devenv.StartTemporal(ctx, devenv.TemporalOptions{Binary: bin, HostPort: fmt.Sprintf("127.0.0.1:%d", port), Namespace: "default"})
		if err != nil {
			return err
		}
		defer srv.Stop()
		c.temporal = srv.HostPort
		fmt.Printf("temporal: started a dev server (in-memory) at %s\n", c.temporal)
		if c.serverCPUs != nil {
			if err := c.serverCPUs.pinServer(srv.PID()); err != nil {
				return err
			}
		}
	}
	if needsTemporal(c.parts) {
		if err := ensureNamespace(ctx, c); err != nil {
			return err
		}
	}
	for _, part := range strings.Split(c.parts, ",") {
		var err error
		switch strings.TrimSpace(part) {
		case "a":
			err = benchEnrollments(ctx, c)
		case "b":
			err = benchScan(ctx, c)
		case "c":
			err = benchTimers(ctx, c)
		case "select":
			err = benchSelect(ctx, c)
		case "birthdays":
			err = benchBirthdays(ctx, c)
		case "e":
			err = benchScanStarts(ctx, c)
		case "ingest":
			err = benchIngest(ctx, c)
		case "shape":
			err = benchShape(ctx, c)
		case "size":
			err = benchSize(ctx, c)
		case "history":
			err = benchHistory(c)
		case "report":
			err = benchReport(ctx, c)
		default:
			err = fmt.Errorf("unknown part %q (a, b, c, e, shape, select, birthdays, ingest, size, history, report)", part)
		}
		if err != nil {
			return fmt.Errorf("part %s: %w", part, err)
		}
	}
	return nil
}

// needsTemporal reports whether a part in parts runs journeys: select and
// birthdays only read the database.
func needsTemporal(parts string) bool {
	// select, birthdays, size, history and report read PostgreSQL only.
	for _, p := range strings.Split(parts, ",") {
		if p = strings.TrimSpace(p); p != "select" && p != "birthdays" && p != "size" && p != "history" && p != "report" {
			return true
		}
	}
	return false
}

func printMachine() {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				model = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	fmt.Printf("machine: %s, %d CPUs (GOMAXPROCS %d), %s %s/%s\n", model, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// ensureNamespace registers the bench namespace and Rapport's search
// attributes in it.
func ensureNamespace(ctx context.Context, c config) error {
	nc, err := client.NewNamespaceClient(client.Options{HostPort: c.temporal, Logger: quiet{}})
	if err != nil {
		return err
	}
	defer nc.Close()
	if _, err := nc.Describe(ctx, c.namespace); err != nil {
		err := nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{Namespace: c.namespace, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
		if err != nil {
			return fmt.Errorf("register namespace %s: %w", c.namespace, err)
		}
		// A new namespace takes a moment to be usable.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := nc.Describe(ctx, c.namespace); err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	tc, err := dial(ctx, c, nil)
	if err != nil {
		return err
	}
	defer tc.Close()
	// A new namespace reaches every frontend cache within ~10s.
	deadline := time.Now().Add(45 * time.Second)
	for {
		err := devenv.EnsureSearchAttributes(ctx, tc, c.namespace)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Second)
	}
}

// benchDelivery sends every channel to a discarded log, with an
// unsubscribe secret so marketing messages render as in production.
func benchDelivery() delivery.Config {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := delivery.Config{Channels: channels.Set{}, UnsubscribeSecret: []byte("bench"), PublicURL: "http://localhost"}
	for _, ch := range []string{"email", "sms", "webhook"} {
		cfg.Channels[ch] = &channels.Log{Name: ch, Logger: discard}
	}
	return cfg
}

// startStack dials Temporal and starts the in-process worker and event API
// over st with one playbook deployed, payloads encrypted with keys (nil:
// in clear): the world parts a and c measure. stop shuts both down.
func startStack(ctx context.Context, c config, st *store.Store, plan *engine.Plan, keys *payloadcrypt.Keyring) (client.Client, *devenv.Stack, func(), error) {
	codec := benchCodec(config{keys: keys}, st)
	tc, err := dial(ctx, c, codec)
	if err != nil {
		return nil, nil, nil, err
	}
	stack, err := devenv.StartStack(ctx, devenv.StackOptions{Client: tc, Store: st, APIKey: benchAPIKey, Delivery: benchDelivery(), Codec: codec})
	if err != nil {
		tc.Close()
		return nil, nil, nil, err
	}
	stop := func() { stack.Stop(); tc.Close() }
	if _, err := stack.Deploy(ctx, plan); err != nil {
		stop()
		return nil, nil, nil, err
	}
	return tc, stack, stop, nil
}

// benchCodec is the payload codec of c.keys over st's customer keys; nil
// when the run is in clear.
func benchCodec(c config, st *store.Store) *payloadcrypt.Codec {
	if c.keys == nil {
		return nil
	}
	return payloadcrypt.New(c.keys, st, payloadcrypt.Options{})
}

// dial connects to the bench namespace with codec's converters (nil: the
// SDK's defaults).
func dial(ctx context.Context, c config, codec *payloadcrypt.Codec) (client.Client, error) {
	opts := c.clientOptions()
	if codec != nil {
		opts = codec.ClientOptions(opts)
	}
	return client.DialContext(ctx, opts)
}

// clientOptions are the options of every client of the run.
func (c config) clientOptions() client.Options {
	opts := client.Options{HostPort: c.temporal, Namespace: c.namespace, Logger: quiet{}}
	if c.grpcCompression == "none" {
		opts.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	}
	return opts
}

// freshStore creates a migrated database for one part and returns a store
// over it whose channels deliver nowhere (a log channel writing to
// io.Discard): the figures are Rapport's, not an SMTP server's.
func freshStore(ctx context.Context, c config, part string) (*store.Store, func(), error) {
	name := fmt.Sprintf("rapport_bench_%s_%d", part, time.Now().UnixNano())
	// A pool of 20: the default (4 on two cores) would make the pool, not
	// Rapport, the bottleneck.
	dbURL := c.dbBase + "/" + name + "?sslmode=disable"
	poolURL := dbURL + "&pool_max_conns=20"
	if _, err := devenv.EnsureDatabase(ctx, dbURL); err != nil {
		return nil, nil, err
	}
	drop := func() {
		conn, err := pgx.Connect(context.Background(), c.dbBase+"/postgres?sslmode=disable")
		if err == nil {
			_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = conn.Close(context.Background())
		}
	}
	if err := store.Migrate(ctx, dbURL); err != nil {
		drop()
		return nil, nil, err
	}
	cfg := store.DefaultConfig()
	cfg.CapMax = 0
	st, err := store.Open(ctx, poolURL, cfg)
	if err != nil {
		drop()
		return nil, nil, err
	}
	return st, func() { st.Close(); drop() }, nil
}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
