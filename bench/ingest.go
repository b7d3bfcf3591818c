package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"

	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/scan"
	"github.com/rapport-crm/rapport/store"
)

// Part ingest (issue #15 d) measures the event API on events that start
// no journey — page calls and track product_viewed, which none of the
// sample playbooks triggers on — against a raw INSERT of the same rows,
// one row per statement at the same concurrency, in the same run.
//
// The API is the real one: devenv.StartStack builds the handler, the
// dispatcher and the worker as `rapport serve` and `rapport worker` do,
// behind a real HTTP server on a loopback port, with every sample
// playbook of playbooks/ deployed. Six of them have an exit_when rule,
// so they listen to every event (engine.Plan.Listens): each event is
// signalled to the customer's running journeys of those playbooks (none
// in scenarios unheard and idle, where an event is stored as dispatched
// and goes no further). That is what journeys hear, and it is measured
// here, not changed.

// ingestSample is the folder of the sample playbooks deployed.
const ingestSample = "playbooks"

// ingestSetup is the world of part ingest: a store with customers and
// event history copied in, the stack over it, and an HTTP server.
type ingestSetup struct {
	st      *store.Store
	signals *signalTimer
	tc      client.Client
	stack   *devenv.Stack
	url     string
	client  *http.Client
	ids     []string // the seeded customers
	// deployed are the samples deployed so far; listening those that
	// listen to page and product views (deployed after scenario unheard).
	deployed, listening []*engine.Plan
}

// benchIngest is part ingest.
func benchIngest(ctx context.Context, c config) error {
	fmt.Printf("\n== ingest: events that start no journey through the event API, against a raw INSERT of the same rows (%d customers, %d events of history, %d events a run, concurrency %d)\n",
		c.ingestCustomers, c.ingestHistory, c.ingestEvents, c.concurrency)
	st, cleanup, err := freshStore(ctx, c, "ingest")
	if err != nil {
		return err
	}
	defer cleanup()
	ids, err := seedIngest(ctx, c, st)
	if err != nil {
		return err
	}
	s, stop, err := startIngestStack(ctx, c, st)
	if err != nil {
		return err
	}
	defer stop()
	s.ids = ids

	// Warm-up, not timed: connections, prepared statements, the Temporal
	// client's connection and the dispatcher's first calls.
	if _, err := s.apiRun(ctx, c, s.events("warm", 0, min(500, c.ingestEvents), s.ids), 0); err != nil {
		return err
	}
	if c.ingestUnheard {
		fmt.Printf("unheard: the %d samples that do not listen to page and product views are deployed; the API's own cost, with no journey to tell (a diagnostic, not production: the next scenarios deploy the others)\n",
			len(s.deployed))
		if err := s.compare(ctx, c, "unheard", s.ids); err != nil {
			return err
		}
	}
	if c.ingestUnheard {
		if err := s.deploy(ctx, s.listening); err != nil {
			return err
		}
	}
	fmt.Printf("idle:    all %d samples deployed; no customer has an active enrollment; %d listen to every event (%s), but none runs for the customer: nothing is signalled\n",
		len(s.deployed), len(s.listening), planNames(s.listening))
	if err := s.compare(ctx, c, "idle", s.ids); err != nil {
		return err
	}
	if c.ingestEnrolled > 0 {
		enrolled, err := s.enrol(ctx, c)
		if err != nil {
			return err
		}
		return s.compare(ctx, c, "enrolled", enrolled)
	}
	return nil
}

// seedIngest copies the customers and their event history in (COPY,
// every index maintained) and returns the customers' ids.
func seedIngest(ctx context.Context, c config, st *store.Store) ([]string, error) {
	start := time.Now()
	rows := &copyRows{n: c.ingestCustomers, now: time.Now().UTC().Truncate(time.Second), r: rand.New(rand.NewPCG(15, 4))}
	_, err := st.Pool().CopyFrom(ctx, pgx.Identifier{"customers"},
		[]string{"id", "email", "name", "locale", "timezone", "stage", "order_count", "last_purchase_at", "first_purchase_at",
			"purchase_gap_days", "lifetime_value", "avg_order_value", "birthday", "signup_at", "tags"}, rows)
	if err != nil {
		return nil, fmt.Errorf("seed customers: %w", err)
	}
	customersTook := time.Since(start)
	start = time.Now()
	now := time.Now().UTC()
	// Partitions first (bulk loads create their months, store.EnsureEventMonths).
	if err := st.EnsureEventMonths(ctx, now.Add(-90*24*time.Hour), now); err != nil {
		return nil, err
	}
	history := &historyRows{n: c.ingestHistory, customers: c.ingestCustomers, now: now, r: rand.New(rand.NewPCG(15, 5))}
	_, err = st.Pool().CopyFrom(ctx, pgx.Identifier{"events"},
		[]string{"id", "customer_id", "name", "time", "props", "received_at"}, history)
	if err != nil {
		return nil, fmt.Errorf("seed events: %w", err)
	}
	// The same events' ids and dispatch markers (event_ids, migration 00015).
	history = &historyRows{n: c.ingestHistory, customers: c.ingestCustomers, now: now, r: rand.New(rand.NewPCG(15, 5)), ids: true}
	_, err = st.Pool().CopyFrom(ctx, pgx.Identifier{"event_ids"},
		[]string{"id", "customer_id", "time", "received_at", "dispatched_at"}, history)
	if err != nil {
		return nil, fmt.Errorf("seed event ids: %w", err)
	}
	eventsTook := time.Since(start)
	if _, err := st.Pool().Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return nil, fmt.Errorf("vacuum: %w", err)
	}
	fmt.Printf("seeded:  %d customers in %s and %d events (page and product views over 90 days, dispatched; events and event_ids) in %s with COPY, indexes maintained\n",
		c.ingestCustomers, customersTook.Round(time.Millisecond), c.ingestHistory, eventsTook.Round(time.Millisecond))
	ids := make([]string, c.ingestCustomers)
	for i := range ids {
		ids[i] = fmt.Sprintf("s%07d", i)
	}
	return ids, nil
}

// historyRows generates past page and product views for COPY: spread
// over the customers and the last 90 days, dispatched when received. The
// rows of events, or with ids those of event_ids (the same events: the
// same seed draws the same values).
type historyRows struct {
	n, customers, i int
	now             time.Time
	r               *rand.Rand
	ids             bool
	row             []any
}

func (h *historyRows) Next() bool {
	if h.i >= h.n {
		return false
	}
	i := h.i
	h.i++
	at := h.now.Add(-time.Duration(h.r.Int64N(int64(90 * 24 * time.Hour))))
	name, props := viewProps(h.r, i)
	id, customer := fmt.Sprintf("h%09d", i), fmt.Sprintf("s%07d", h.r.IntN(h.customers))
	if h.ids {
		h.row = []any{id, customer, at, at, at}
	} else {
		h.row = []any{id, customer, name, at, props, at}
	}
	return true
}

func (h *historyRows) Values() ([]any, error) { return h.row, nil }
func (h *historyRows) Err() error             { return nil }

// viewProps are the properties of a page view (i even) or a product view
// as the API stores them.
func viewProps(r *rand.Rand, i int) (string, map[string]any) {
	sku := r.IntN(5000)
	if i%2 == 0 {
		return "page", map[string]any{"name": "Product", "category": "Shop", "path": fmt.Sprintf("/products/%d", sku),
			"title": fmt.Sprintf("Product %d", sku), "referrer": "https://www.google.com/"}
	}
	return "product_viewed", map[string]any{"product_id": fmt.Sprintf("sku-%d", sku), "price": 19.99, "category": "tea"}
}

// startIngestStack starts the worker and the API over st, deploys the
// samples that do not listen to page and product views (all of them
// without -ingest-unheard), and serves the API on a loopback port.
func startIngestStack(ctx context.Context, c config, st *store.Store) (*ingestSetup, func(), error) {
	codec := benchCodec(c, st)
	signals := &signalTimer{}
	opts := c.clientOptions()
	opts.Interceptors = []interceptor.ClientInterceptor{signals}
	if codec != nil {
		opts = codec.ClientOptions(opts)
	}
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	// Dispatch markers batched every 5 ms, as rapport serve writes them.
	// Warnings and errors of the API and the worker go to stderr.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	stack, err := devenv.StartStack(ctx, devenv.StackOptions{Client: tc, Store: st, APIKey: benchAPIKey, Delivery: benchDelivery(), Codec: codec,
		MarkEvery: 5 * time.Millisecond, EventStatements: c.ingestStatements, Logger: log})
	if err != nil {
		tc.Close()
		return nil, nil, err
	}
	closers := []func(){tc.Close, stack.Stop}
	stop := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	plans, err := compileSamples(ingestSample)
	if err != nil {
		stop()
		return nil, nil, err
	}
	s := &ingestSetup{st: st, signals: signals, tc: tc, stack: stack}
	var quiet []*engine.Plan
	for _, p := range plans {
		if p.Listens("page") || p.Listens("product_viewed") {
			s.listening = append(s.listening, p)
		} else {
			quiet = append(quiet, p)
		}
	}
	first := quiet
	if !c.ingestUnheard {
		first = plans
	}
	if err := s.deploy(ctx, first); err != nil {
		stop()
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		stop()
		return nil, nil, err
	}
	// The timeouts of rapport serve (cmd/rapport/serve.go).
	hs := &http.Server{Handler: stack.API, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go func() { _ = hs.Serve(ln) }()
	closers = append(closers, func() { _ = hs.Close() })
	tr := &http.Transport{MaxIdleConns: c.concurrency, MaxIdleConnsPerHost: c.concurrency, MaxConnsPerHost: c.concurrency, IdleConnTimeout: time.Minute}
	closers = append(closers, tr.CloseIdleConnections)
	fmt.Printf("stack:   %d sample playbooks in %s/, %d of which listen to every event; API at http://%s\n", len(plans), ingestSample, len(s.listening), ln.Addr())
	s.url, s.client = "http://"+ln.Addr().String(), &http.Client{Transport: tr, Timeout: time.Minute}
	return s, stop, nil
}

// deploy deploys plans as rapport deploy does and pauses their schedules:
// a scheduled scan must not compete with the measurement.
func (s *ingestSetup) deploy(ctx context.Context, plans []*engine.Plan) error {
	if _, err := s.stack.Deploy(ctx, plans...); err != nil {
		return err
	}
	for _, p := range plans {
		if _, err := scan.Pause(ctx, s.tc, p.Name, "bench: paused during part ingest"); err != nil {
			return err
		}
	}
	s.deployed = append(s.deployed, plans...)
	return nil
}

func planNames(plans []*engine.Plan) string {
	names := make([]string, len(plans))
	for i, p := range plans {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

// compileSamples compiles every playbook of dir, leaving out the
// workspace file, as rapport dev deploys them.
func compileSamples(dir string) ([]*engine.Plan, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no playbooks in %s/: run the bench from the repository root", dir)
	}
	var plans []*engine.Plan
	for _, f := range files {
		if engine.IsWorkspaceFile(f) {
			continue
		}
		p, err := engine.CompileFile(f)
		if err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// ingestEvent is one generated event: the body of its API call and the
// row a raw INSERT writes for it.
type ingestEvent struct {
	id, customer, name string
	at                 time.Time
	props              map[string]any
	body               []byte
}

// events generates n events of one run for customers: every other one a
// page call, the others track product_viewed, to customers drawn at
// random. Each has its own messageId.
func (s *ingestSetup) events(label string, run, n int, customers []string) []ingestEvent {
	r := rand.New(rand.NewPCG(uint64(run), uint64(len(label))))
	now := time.Now().UTC().Truncate(time.Millisecond)
	out := make([]ingestEvent, n)
	for i := range out {
		name, props := viewProps(r, i)
		e := ingestEvent{id: fmt.Sprintf("%s-%s%d-%06d", runTag, label, run, i), customer: customers[r.IntN(len(customers))], name: name, at: now, props: props}
		var call map[string]any
		if name == "page" {
			p := map[string]any{}
			for k, v := range props {
				if k != "name" && k != "category" {
					p[k] = v
				}
			}
			call = map[string]any{"type": "page", "name": props["name"], "category": props["category"], "properties": p}
		} else {
			call = map[string]any{"type": "track", "event": "Product Viewed", "properties": props}
		}
		call["userId"], call["messageId"], call["timestamp"] = e.customer, e.id, now.Format(time.RFC3339Nano)
		e.body, _ = json.Marshal(call)
		out[i] = e
	}
	return out
}

// runStats are one timed run's figures.
type runStats struct {
	n, errors int
	took      time.Duration
	latencies []time.Duration // per call
	firstErr  string
	failed    []apiCall // API calls that failed, to send again after the run
	busy      float64   // share of the machine's CPU in use during the run
}

func (r runStats) rate() float64 { return float64(r.n-r.errors) / r.took.Seconds() }

func (r runStats) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	l := slices.Clone(r.latencies)
	slices.Sort(l)
	return l[min(len(l)-1, int(p*float64(len(l))))]
}

// apiRun posts evs to the API, concurrency calls at a time: one call per
// event, or batches of batch events on /v1/batch. A call that fails
// counts its events as errors.
func (s *ingestSetup) apiRun(ctx context.Context, c config, evs []ingestEvent, batch int) (runStats, error) {
	var calls []apiCall
	if batch <= 0 {
		for _, e := range evs {
			typ := "track"
			if e.name == "page" {
				typ = "page"
			}
			var m map[string]any
			_ = json.Unmarshal(e.body, &m)
			delete(m, "type")
			b, _ := json.Marshal(m)
			calls = append(calls, apiCall{path: "/v1/" + typ, body: b, n: 1})
		}
	} else {
		for i := 0; i < len(evs); i += batch {
			part := evs[i:min(i+batch, len(evs))]
			items := make([]json.RawMessage, len(part))
			for j, e := range part {
				items[j] = e.body
			}
			b, _ := json.Marshal(map[string]any{"batch": items})
			calls = append(calls, apiCall{path: "/v1/batch", body: b, n: len(part)})
		}
	}
	return timedRun(ctx, c.concurrency, len(evs), len(calls), func(i int) error {
		return s.post(ctx, calls[i].path, calls[i].body)
	}, func(stats *runStats, i int) {
		stats.errors += calls[i].n
		stats.failed = append(stats.failed, calls[i])
	})
}

// timedRun makes calls 0…n-1 of do on concurrency goroutines and times
// each and the whole run, with the machine's CPU meanwhile, into stats
// for events events; failed counts a failed call i into stats (its
// first error is kept).
func timedRun(ctx context.Context, concurrency, events, n int, do func(i int) error, failed func(stats *runStats, i int)) (runStats, error) {
	var (
		mu    sync.Mutex
		stats = runStats{n: events}
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	cpu0 := machineCPU()
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				err := do(i)
				took := time.Since(t0)
				mu.Lock()
				stats.latencies = append(stats.latencies, took)
				if err != nil {
					failed(&stats, i)
					if stats.firstErr == "" {
						stats.firstErr = err.Error()
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	stats.took = time.Since(start)
	stats.busy = machineCPU().since(cpu0)
	return stats, ctx.Err()
}

// apiCall is one call of the event API carrying n events.
type apiCall struct {
	path string
	body []byte
	n    int
}

// resend sends failed calls again, one at a time, as a Segment client
// retries a 5xx, until each succeeds (at most 10 tries, a second apart).
func (s *ingestSetup) resend(ctx context.Context, failed []apiCall) error {
	for _, c := range failed {
		var err error
		for try := 0; try < 10; try++ {
			if err = s.post(ctx, c.path, c.body); err == nil {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil {
			return fmt.Errorf("sent again 10 times: %w", err)
		}
	}
	return nil
}

// post sends one call and reads the answer; anything but 200 with
// success true (and no item refused in a batch) is an error.
func (s *ingestSetup) post(ctx context.Context, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+benchAPIKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var ans struct {
		Success  bool `json:"success"`
		Rejected int  `json:"rejected"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(b, &ans) != nil || !ans.Success || ans.Rejected > 0 {
		return fmt.Errorf("%s: %d %s", path, res.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

// Raw inserts of a row: into events alone (the baseline of issue #15),
// and into event_ids and events in one statement, as the store writes an
// event's id with it since migration 00015. The id is written dispatched
// (the row as it ends up), so that the baseline's rows do not sit in the
// partial index of undispatched events the API's markers go through.
const (
	rawInsert = `INSERT INTO events (id, customer_id, name, time, amount, currency, order_id, category, score, props)
		VALUES ($1, $2, $3, $4, 0, '', '', '', 0, $5)`
	rawInsertWithID = `WITH id AS (
			INSERT INTO event_ids (id, customer_id, time, dispatched_at) VALUES ($1, $2, $4, now()) ON CONFLICT (id) DO NOTHING RETURNING id
		)
		INSERT INTO events (id, customer_id, name, time, amount, currency, order_id, category, score, props)
		SELECT $1, $2, $3, $4, 0, '', '', '', 0, $5 FROM id`
)

// rawRun inserts the rows of evs (ids prefixed) with sql, one statement
// per row, concurrency at a time, over the store's pool.
func (s *ingestSetup) rawRun(ctx context.Context, c config, evs []ingestEvent, sql, prefix string) (runStats, error) {
	return timedRun(ctx, c.concurrency, len(evs), len(evs), func(i int) error {
		e := evs[i]
		_, err := s.st.Pool().Exec(ctx, sql, prefix+e.id, e.customer, e.name, e.at, e.props)
		return err
	}, func(stats *runStats, _ int) { stats.errors++ })
}

// compare times -ingest-runs rounds of: single calls, the raw INSERT of
// the same rows, and batches (-ingest-batch), each in a run of its own
// events to customers, and reports the medians and the ratios to the raw
// rate of the same round. It then checks what the API did: each event
// stored once, every one marked dispatched, no enrollment started.
func (s *ingestSetup) compare(ctx context.Context, c config, label string, customers []string) error {
	enrollments0, err := s.count(ctx, `SELECT count(*) FROM enrollments`)
	if err != nil {
		return err
	}
	var single, raw, rawIDs, batch []runStats
	var all []ingestEvent
	var prof *os.File
	if c.ingestProfile != "" {
		name := strings.TrimSuffix(c.ingestProfile, ".pprof") + "-" + label + ".pprof"
		if prof, err = os.Create(name); err != nil {
			return err
		}
		defer prof.Close()
	}
	var apiCost, rawCost cost
	for run := range c.ingestRuns {
		evs := s.events(label+"s", run, c.ingestEvents, customers)
		if prof != nil && run == 0 {
			if err := pprof.StartCPUProfile(prof); err != nil {
				return err
			}
		}
		m := s.meter()
		st, err := s.apiRun(ctx, c, evs, 0)
		apiCost = apiCost.plus(s.meter().minus(m))
		if prof != nil && run == 0 {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return err
		}
		single = append(single, st)
		all = append(all, evs...)
		m = s.meter()
		r, err := s.rawRun(ctx, c, evs, rawInsert, "raw-")
		rawCost = rawCost.plus(s.meter().minus(m))
		if err != nil {
			return err
		}
		raw = append(raw, r)
		if r, err = s.rawRun(ctx, c, evs, rawInsertWithID, "rawid-"); err != nil {
			return err
		}
		rawIDs = append(rawIDs, r)
		if c.ingestBatch > 0 {
			evs := s.events(label+"b", run, c.ingestEvents, customers)
			b, err := s.apiRun(ctx, c, evs, c.ingestBatch)
			if err != nil {
				return err
			}
			batch = append(batch, b)
			all = append(all, evs...)
		}
	}
	var failed []apiCall
	for _, r := range slices.Concat(single, batch) {
		failed = append(failed, r.failed...)
	}
	if len(failed) > 0 {
		if err := s.resend(ctx, failed); err != nil {
			return err
		}
		fmt.Printf("%-15s %d calls that failed were sent again after the runs, as Segment clients retry (their events count as errors above)\n", label+" retried:", len(failed))
	}
	printRuns(label+" api", "events/s, one event a call", single)
	printRuns(label+" raw", "rows/s, one INSERT into events a row", raw)
	printRuns(label+" raw+id", "rows/s, one INSERT into event_ids and events a row", rawIDs)
	if len(batch) > 0 {
		printRuns(label+" batch", fmt.Sprintf("events/s, /v1/batch of %d", c.ingestBatch), batch)
	}
	printRatio(label+" ratio", "api/raw", single, raw)
	printRatio(label+" ratio", "api/raw+id", single, rawIDs)
	if len(batch) > 0 {
		printRatio(label+" ratio", "batch/raw", batch, raw)
	}
	n := len(single) * c.ingestEvents
	apiCost.print(label+" cost api:", "event through the API (one a call)", n)
	rawCost.print(label+" cost raw:", "row inserted raw", n)
	perSignal := time.Duration(0)
	if apiCost.signals > 0 {
		perSignal = apiCost.signalTime / time.Duration(apiCost.signals)
	}
	fmt.Printf("%-15s per event through the API (one a call): %.2f signals to journeys, %s each (wall time; the dispatcher sends an event's signals concurrently), median call %s\n",
		label+" signals:", float64(apiCost.signals)/float64(n), perSignal.Round(10*time.Microsecond), (runStats{latencies: allLatencies(single)}).pct(0.5).Round(10*time.Microsecond))
	return s.check(ctx, label, all, enrollments0)
}

// cost is what a run used: CPU of this process, of the dev server the
// bench started and of the PostgreSQL backends serving the part's
// database, and the Temporal client's signals. (pg_stat_database's
// counters are left out: an idle backend reports them up to 10 s late.)
type cost struct {
	process, server, postgres time.Duration
	signals                   int64
	signalTime                time.Duration
}

func (s *ingestSetup) meter() cost {
	return cost{process: cpuTime(), server: childCPUTime(), postgres: backendCPU(s.st.Pool().Config().ConnConfig.Database),
		signals: s.signals.calls.Load(), signalTime: time.Duration(s.signals.nanos.Load())}
}

func (a cost) minus(b cost) cost {
	return cost{a.process - b.process, a.server - b.server, a.postgres - b.postgres, a.signals - b.signals, a.signalTime - b.signalTime}
}

func (a cost) plus(b cost) cost {
	return cost{a.process + b.process, a.server + b.server, a.postgres + b.postgres, a.signals + b.signals, a.signalTime + b.signalTime}
}

func (a cost) print(label, per string, n int) {
	fmt.Printf("%-15s per %s: %.2f ms CPU in all (%.2f this process, %.2f the dev server, %.2f PostgreSQL's backends)\n",
		label, per, ms(a.process+a.server+a.postgres, n), ms(a.process, n), ms(a.server, n), ms(a.postgres, n))
}

// backendCPU is the CPU time used so far by the PostgreSQL backends
// connected to database db (their process title names it), read from
// /proc; a backend that exited is not counted.
func backendCPU(db string) time.Duration {
	entries, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range entries {
		cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.HasPrefix(cmd, []byte("postgres: ")) || !bytes.Contains(cmd, []byte(" "+db+" ")) {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

func allLatencies(runs []runStats) []time.Duration {
	var out []time.Duration
	for _, r := range runs {
		out = append(out, r.latencies...)
	}
	return out
}

// signalTimer counts the Temporal client's signals and the wall time
// they take, to tell what share of an event's dispatch they are.
type signalTimer struct {
	interceptor.ClientInterceptorBase
	calls, nanos atomic.Int64
}

func (t *signalTimer) InterceptClient(next interceptor.ClientOutboundInterceptor) interceptor.ClientOutboundInterceptor {
	return &signalTiming{ClientOutboundInterceptorBase: interceptor.ClientOutboundInterceptorBase{Next: next}, t: t}
}

type signalTiming struct {
	interceptor.ClientOutboundInterceptorBase
	t *signalTimer
}

func (s *signalTiming) SignalWorkflow(ctx context.Context, in *interceptor.ClientSignalWorkflowInput) error {
	start := time.Now()
	err := s.Next.SignalWorkflow(ctx, in)
	s.t.calls.Add(1)
	s.t.nanos.Add(int64(time.Since(start)))
	return err
}

// check verifies the API's work: every event stored exactly once under
// its messageId (a second send of some changes nothing), every one
// marked dispatched, and no enrollment started by them.
func (s *ingestSetup) check(ctx context.Context, label string, evs []ingestEvent, enrollments0 int) error {
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.id
	}
	// Resend the first 200 events: dedupe by messageId.
	again := evs[:min(200, len(evs))]
	for _, e := range again {
		var m map[string]any
		_ = json.Unmarshal(e.body, &m)
		b, _ := json.Marshal(map[string]any{"batch": []any{m}})
		if err := s.post(ctx, "/v1/batch", b); err != nil {
			return fmt.Errorf("resend %s: %w", e.id, err)
		}
	}
	// The markers are written in batches after the calls answered: wait
	// for the last ones (a minute at most).
	var stored, withID, dispatched int
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		err := s.st.Pool().QueryRow(ctx, `SELECT count(*), count(dispatched_at) FROM event_ids WHERE id = ANY($1)`, ids).Scan(&withID, &dispatched)
		if err != nil {
			return err
		}
		if dispatched == len(evs) || time.Now().After(deadline) {
			break
		}
	}
	if err := s.st.Pool().QueryRow(ctx, `SELECT count(*) FROM events WHERE id = ANY($1)`, ids).Scan(&stored); err != nil {
		return err
	}
	var p50, p99, max float64
	err := s.st.Pool().QueryRow(ctx, `
		SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.99) WITHIN GROUP (ORDER BY d), max(d)
		FROM (SELECT extract(epoch FROM dispatched_at - received_at) * 1000 AS d FROM event_ids WHERE id = ANY($1)) x`, ids).Scan(&p50, &p99, &max)
	if err != nil {
		return err
	}
	fmt.Printf("%-15s dispatch marker written after the event was stored: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", label+" markers:", p50, p99, max)
	enrollments, err := s.count(ctx, `SELECT count(*) FROM enrollments`)
	if err != nil {
		return err
	}
	fmt.Printf("%-15s %d events sent (%d sent twice): %d rows in events, %d in event_ids, %d marked dispatched; enrollments %d before, %d after\n",
		label+" check:", len(evs), len(again), stored, withID, dispatched, enrollments0, enrollments)
	if stored != len(evs) || withID != len(evs) || dispatched != len(evs) || enrollments != enrollments0 {
		return fmt.Errorf("%s: the API did not store and dispatch each event once, or started journeys", label)
	}
	return nil
}

// enrol signs -ingest-enrolled customers up through the API, which
// starts the sample onboarding journeys (and welcome_resend), and waits
// until their enrollments are recorded: customers in a running journey
// whose playbook listens to every event (onboarding's exit_when).
func (s *ingestSetup) enrol(ctx context.Context, c config) ([]string, error) {
	ids := s.ids[:min(c.ingestEnrolled, len(s.ids))]
	before, err := s.count(ctx, `SELECT count(*) FROM enrollments WHERE status = 'active'`)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	evs := make([]ingestEvent, len(ids))
	for i, id := range ids {
		b, _ := json.Marshal(map[string]any{"type": "track", "event": "signup", "userId": id, "messageId": fmt.Sprintf("%s-signup-%s", runTag, id)})
		evs[i] = ingestEvent{id: id, name: "signup", body: b}
	}
	st, err := s.apiRun(ctx, c, evs, 0)
	if err != nil {
		return nil, err
	}
	if st.errors > 0 {
		return nil, fmt.Errorf("signups: %d errors, first %s", st.errors, st.firstErr)
	}
	// onboarding and welcome_resend each enrol every customer.
	want := before + 2*len(ids)
	if err := waitCount(ctx, s.st, `SELECT count(*) FROM enrollments WHERE status = 'active'`, want, 10*time.Minute); err != nil {
		return nil, err
	}
	var listening int
	if err := s.st.Pool().QueryRow(ctx, `SELECT count(DISTINCT customer_id) FROM enrollments WHERE status = 'active' AND playbook = 'onboarding'`).Scan(&listening); err != nil {
		return nil, err
	}
	// Let the journeys reach their waits before the measurement.
	time.Sleep(5 * time.Second)
	fmt.Printf("enrolled: %d customers signed up through the API in %s; %d active enrollments, %d customers in a running onboarding journey, which hears every event (exit_when)\n",
		len(ids), time.Since(start).Round(time.Millisecond), want, listening)
	return ids, nil
}

func (s *ingestSetup) count(ctx context.Context, sql string) (int, error) {
	var n int
	err := s.st.Pool().QueryRow(ctx, sql).Scan(&n)
	return n, err
}

// printRuns prints the median run of a series and every run's rate.
func printRuns(label, unit string, runs []runStats) {
	rates := make([]float64, len(runs))
	errs := 0
	var lat []time.Duration
	first := ""
	for i, r := range runs {
		rates[i] = r.rate()
		errs += r.errors
		lat = append(lat, r.latencies...)
		if first == "" {
			first = r.firstErr
		}
	}
	all := runStats{latencies: lat}
	busy := 0.0
	for _, r := range runs {
		busy += r.busy / float64(len(runs))
	}
	fmt.Printf("%-15s median %.0f %s (runs %s); %d errors; latency p50 %s, p99 %s over all runs; machine CPU %.0f%% busy\n",
		label+":", medianF(rates), unit, fmtRates(rates), errs, all.pct(0.5).Round(10*time.Microsecond), all.pct(0.99).Round(10*time.Microsecond), 100*busy)
	if first != "" {
		fmt.Printf("%-15s first error: %s\n", "", first)
	}
}

// printRatio prints the median of each round's ratio and the ratio of
// the medians.
func printRatio(label, what string, api, raw []runStats) {
	ratios := make([]float64, len(api))
	a, r := make([]float64, len(api)), make([]float64, len(api))
	for i := range api {
		a[i], r[i] = api[i].rate(), raw[i].rate()
		ratios[i] = a[i] / r[i]
	}
	fmt.Printf("%-15s %s %.3f median of each round's ratio (rounds %s), %.3f of the medians (target ≥ 0.5)\n",
		label+":", what, medianF(ratios), fmtRatios(ratios), medianF(a)/medianF(r))
}

func medianF(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func fmtRates(v []float64) string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(out, ", ")
}

func fmtRatios(v []float64) string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = strconv.FormatFloat(x, 'f', 3, 64)
	}
	return strings.Join(out, ", ")
}

// cpuSample is the machine's CPU time, busy and total, from /proc/stat.
type cpuSample struct{ busy, total int64 }

func machineCPU() cpuSample {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuSample{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var s cpuSample
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		s.total += n
		if i != 3 && i != 4 { // idle, iowait
			s.busy += n
		}
	}
	return s
}

// since is the share of the CPU busy between s0 and s.
func (s cpuSample) since(s0 cpuSample) float64 {
	if s.total == s0.total {
		return 0
	}
	return float64(s.busy-s0.busy) / float64(s.total-s0.total)
}
