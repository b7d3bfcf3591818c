package devenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/rapport-crm/rapport/api"
	"github.com/rapport-crm/rapport/channels"
	"github.com/rapport-crm/rapport/delivery"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/payloadcrypt"
	"github.com/rapport-crm/rapport/scan"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/temporalenv"
	"github.com/rapport-crm/rapport/worker"
	"github.com/rapport-crm/rapport/workflows"

	enums "go.temporal.io/api/enums/v1"
)

// DevOptions configure `rapport dev`.
type DevOptions struct {
	// TemporalAddress and Namespace override the Temporal settings
	// (temporalenv: config profile, TEMPORAL_*); empty keeps them, with
	// 127.0.0.1:7233 when nothing sets an address. A server answering
	// there is reused; otherwise one is started there, unless the settings
	// use TLS or an API key (a remote cluster).
	TemporalAddress string
	Namespace       string
	UIPort          int    // Web UI of a dev server we start
	StateDir        string // the dev server's database file lives here
	DatabaseURL     string
	PlaybookDir     string // sample playbooks to deploy; "" deploys none
	APIAddr         string // event API
	APIKey          string
	SMTPAddr        string // mail catcher SMTP
	MailAddr        string // mail catcher web page
	MetricsAddr     string // worker metrics and /healthz
	Seed            bool   // demo customers and events
	ExitAfter       time.Duration
	Out             io.Writer // what to open, progress
	Log             *slog.Logger
}

// DefaultDevOptions reads the environment and fills in the defaults.
func DefaultDevOptions() DevOptions {
	state := filepath.Join(os.TempDir(), "rapport-dev")
	if dir, err := os.UserCacheDir(); err == nil {
		state = filepath.Join(dir, "rapport-dev")
	}
	return DevOptions{
		UIPort:      8233,
		StateDir:    state,
		DatabaseURL: envOr("DATABASE_URL", store.DefaultDatabaseURL),
		PlaybookDir: "playbooks",
		APIAddr:     envOr("RAPPORT_LISTEN", "127.0.0.1:8080"),
		APIKey:      envOr("RAPPORT_API_KEY", "dev-key"),
		SMTPAddr:    "127.0.0.1:1025",
		MailAddr:    "127.0.0.1:8025",
		MetricsAddr: envOr("RAPPORT_METRICS_ADDR", "127.0.0.1:9090"),
		Seed:        true,
		Out:         os.Stdout,
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// devUnsubscribeSecret signs unsubscribe links in dev only.
const devUnsubscribeSecret = "rapport-dev-unsubscribe-secret"

// devErasureSecret keys the hashes `rapport forget` keeps of an erased
// customer's addresses, in dev only (production: RAPPORT_ERASURE_SECRET).
const devErasureSecret = "rapport-dev-erasure-secret"

// Dev is a running development environment; Close stops everything it
// started, in reverse order.
type Dev struct {
	opts            DevOptions
	temporal        client.Options // loaded by startTemporal; dial adds metrics and logger
	keys            *payloadcrypt.Keyring
	keysFrom        string // where the keys came from, for the banner (never the keys)
	codec           *payloadcrypt.Codec
	startedTemporal bool
	closers         []func()
	UIURL           string // Temporal Web UI, "" when unknown
	APIURL          string
	MailURL         string
	Mail            *MailCatcher
	Stack           *Stack
}

// Close stops what Start started, last first.
func (d *Dev) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

func (d *Dev) onClose(f func()) { d.closers = append(d.closers, f) }

func (d *Dev) say(format string, args ...any) { fmt.Fprintf(d.opts.Out, format+"\n", args...) }

// StartDev brings the whole product up: Temporal (reused or started),
// PostgreSQL (database created and migrated), the mail catcher, worker
// and API in process, the sample playbooks deployed, demo data. On error
// everything started so far is stopped.
func StartDev(ctx context.Context, o DevOptions) (d *Dev, err error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	d = &Dev{opts: o}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.keys, d.keysFrom, err = DevPayloadKeys(o.StateDir); err != nil {
		return d, err
	}
	if err := d.startTemporal(ctx); err != nil {
		return d, err
	}
	set, err := d.startMail()
	if err != nil {
		return d, err
	}
	st, err := d.startDatabase(ctx)
	if err != nil {
		return d, err
	}
	d.codec = payloadcrypt.New(d.keys, st, payloadcrypt.Options{})
	c, m, err := d.dial(ctx)
	if err != nil {
		return d, err
	}
	stack, err := StartStack(ctx, StackOptions{Client: c, Store: st, APIKey: o.APIKey,
		Delivery: d.delivery(set), Metrics: m, Logger: o.Log,
		Codec: d.codec, CodecOrigins: d.uiOrigins()})
	if err != nil {
		return d, err
	}
	d.Stack = stack
	d.onClose(stack.Stop)
	if err := d.serve(stack, m, c, st); err != nil {
		return d, err
	}
	if err := d.deploySamples(ctx); err != nil {
		return d, err
	}
	if o.Seed {
		if err := d.seed(ctx, st); err != nil {
			return d, err
		}
	}
	return d, nil
}

// startTemporal reuses the server at TemporalAddress when one answers,
// otherwise starts `temporal server start-dev` there with the Web UI and
// Rapport's search attributes, keeping its state in StateDir.
func (d *Dev) startTemporal(ctx context.Context) error {
	topts, err := temporalenv.Load(temporalenv.Overrides{Address: d.opts.TemporalAddress, Namespace: d.opts.Namespace, DefaultAddress: "127.0.0.1:7233"})
	if err != nil {
		return err
	}
	d.temporal = topts
	d.opts.TemporalAddress, d.opts.Namespace = topts.HostPort, topts.Namespace
	o := d.opts
	if c, err := DialTemporalWith(ctx, topts, 3*time.Second); err == nil {
		c.Close()
		d.say("temporal: using the server at %s", temporalenv.Describe(topts))
		d.UIURL = fmt.Sprintf("http://localhost:%d", o.UIPort)
		return nil
	} else if temporalenv.Secured(topts) {
		return fmt.Errorf("%w: %v", temporalenv.ErrNoDevServer, err)
	}
	bin, err := TemporalBinary(ctx, true, o.Out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.StateDir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(o.StateDir, "temporal.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("temporal log: %w", err)
	}
	d.onClose(func() { _ = logf.Close() })
	d.say("temporal: starting %s server start-dev on %s (log %s)", bin, o.TemporalAddress, logf.Name())
	srv, err := StartTemporal(ctx, TemporalOptions{
		Binary: bin, HostPort: o.TemporalAddress, UIPort: o.UIPort, UICodecEndpoint: d.codecEndpoint(), Namespace: o.Namespace,
		DBFile: filepath.Join(o.StateDir, "temporal.db"), SearchAttributes: workflows.SearchAttributes, Log: logf,
	})
	if err != nil {
		return err
	}
	d.onClose(srv.Stop)
	d.UIURL = srv.UIURL
	d.startedTemporal = true
	return nil
}

// delivery sends through set, with dev's unsubscribe secret and links to
// the local API (http: dev only).
func (d *Dev) delivery(set channels.Set) delivery.Config {
	return delivery.Config{Channels: set, UnsubscribeSecret: []byte(devUnsubscribeSecret),
		PublicURL: "http://" + hostPortURL(d.opts.APIAddr)}
}

// DevPayloadKeys are the payload encryption keys of `rapport dev`:
// RAPPORT_PAYLOAD_KEYS when set, else a key generated on the first run
// and kept in stateDir/payload-keys (mode 0600) beside the dev server's
// database, so histories stay readable across restarts. The key is
// printed nowhere; from says where it came from.
func DevPayloadKeys(stateDir string) (keys *payloadcrypt.Keyring, from string, err error) {
	if keys, err := payloadcrypt.KeysFromEnv(); keys != nil || err != nil {
		return keys, payloadcrypt.EnvKeys, err
	}
	path := filepath.Join(stateDir, "payload-keys")
	spec, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		spec, err = createDevKey(stateDir, path)
	}
	if err != nil {
		return nil, "", fmt.Errorf("dev payload key %s: %w", path, err)
	}
	keys, err = payloadcrypt.ParseKeys(strings.TrimSpace(string(spec)))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w (delete the file to generate a new key)", path, err)
	}
	return keys, path, nil
}

// createDevKey writes a new key to path, unless another rapport dev
// writes one first (then that one is used).
func createDevKey(dir, path string) ([]byte, error) {
	spec, err := payloadcrypt.GenerateKeySpec("dev")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(spec + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	return []byte(spec), f.Close()
}

// codecEndpoint is the URL of the codec the dev server's Web UI decodes
// payloads through: the event API's /codec, unauthenticated on loopback
// (devCodec). "" when the API is not on a loopback address or its port is
// not known in advance.
func (d *Dev) codecEndpoint() string {
	if !devCodecServed(d.opts.APIAddr) {
		return ""
	}
	return "http://" + hostPortURL(d.opts.APIAddr) + api.CodecPath
}

// devCodecServed says whether rapport dev serves the codec without a key
// on addr: only a fixed loopback address.
func devCodecServed(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// uiOrigins are the origins a browser shows the dev server's Web UI at.
func (d *Dev) uiOrigins() []string {
	return []string{fmt.Sprintf("http://localhost:%d", d.opts.UIPort), fmt.Sprintf("http://127.0.0.1:%d", d.opts.UIPort)}
}

// startDatabase creates the database if needed, migrates it and opens
// the store.
func (d *Dev) startDatabase(ctx context.Context) (*store.Store, error) {
	created, err := EnsureDatabase(ctx, d.opts.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if created {
		d.say("postgres: created database %s", dbName(d.opts.DatabaseURL))
	}
	if err := store.Migrate(ctx, d.opts.DatabaseURL); err != nil {
		return nil, err
	}
	cfg := store.DefaultConfig()
	cfg.ErasureSecrets = [][]byte{[]byte(devErasureSecret)}
	st, err := store.Open(ctx, d.opts.DatabaseURL, cfg)
	if err != nil {
		return nil, err
	}
	d.onClose(st.Close)
	d.say("postgres: %s migrated", dbName(d.opts.DatabaseURL))
	return st, nil
}

// dial connects the client the worker and API share, with SDK metrics,
// and registers the search attributes on a reused server that lacks them.
func (d *Dev) dial(ctx context.Context) (client.Client, *worker.Metrics, error) {
	m := worker.NewMetrics()
	d.onClose(func() { _ = m.Close() })
	opts := d.codec.ClientOptions(d.temporal)
	opts.MetricsHandler, opts.Logger = m.TemporalHandler(), sdklog.NewStructuredLogger(d.opts.Log)
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to Temporal at %s: %w", temporalenv.Describe(opts), err)
	}
	d.onClose(c.Close)
	if err := EnsureSearchAttributes(ctx, c, d.opts.Namespace); err != nil {
		return nil, nil, err
	}
	return c, m, nil
}

// EnsureSearchAttributes registers Rapport's search attributes in
// namespace, adding only those missing.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enums.IndexedValueType{}
	for name, typ := range workflows.SearchAttributes {
		if _, ok := have.GetCustomAttributes()[name]; ok {
			continue
		}
		v, ok := enums.IndexedValueType_shorthandValue[typ]
		if !ok {
			return fmt.Errorf("search attribute %s: unknown type %s", name, typ)
		}
		missing[name] = enums.IndexedValueType(v)
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}

// startMail starts the SMTP catcher and its web page, and returns the
// channels: email into the catcher, SMS and webhooks to the log.
func (d *Dev) startMail() (channels.Set, error) {
	mc, err := StartMailCatcher(d.opts.SMTPAddr)
	if err != nil {
		return nil, fmt.Errorf("%w (is another rapport dev running?)", err)
	}
	d.Mail = mc
	d.onClose(func() { _ = mc.Close() })
	email, err := channels.NewEmail(channels.SMTPConfig{Addr: mc.Addr(), From: "Rapport Demo <hello@rapport.dev>", TLS: channels.TLSNone})
	if err != nil {
		return nil, err
	}
	set := channels.Set{"email": email}
	for _, name := range []string{"sms", "webhook"} {
		set[name] = &channels.Log{Name: name, Logger: d.opts.Log}
	}
	url, err := d.listen("mail catcher", d.opts.MailAddr, mc.Handler())
	if err != nil {
		return nil, err
	}
	d.MailURL = url
	return set, nil
}

// serve starts the event API and the metrics endpoint. On a loopback
// address the API also serves the codec to the dev server's Web UI
// without a key (api.DevCodecHandler): the UI has no way to send one.
func (d *Dev) serve(stack *Stack, m *worker.Metrics, c client.Client, st *store.Store) error {
	h := stack.API
	if devCodecServed(d.opts.APIAddr) && d.codec.Enabled() {
		mux := http.NewServeMux()
		mux.Handle(api.CodecPath+"/", api.DevCodecHandler(api.CodecOptions{Handler: d.codec.Handler(), AllowedOrigins: d.uiOrigins()}))
		mux.Handle("/", stack.API)
		h = mux
	}
	url, err := d.listen("event API", d.opts.APIAddr, h)
	if err != nil {
		return err
	}
	d.APIURL = url
	if d.opts.MetricsAddr == "off" {
		return nil
	}
	_, err = d.listen("metrics", d.opts.MetricsAddr, m.Handler(worker.HealthChecks(c, st)))
	return err
}

// listen serves h on addr until Close and returns its URL.
func (d *Dev) listen(what, addr string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s: listen on %s: %w", what, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	d.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return "http://" + hostPortURL(ln.Addr().String()), nil
}

// deploySamples deploys every playbook in PlaybookDir and runs the scans
// of the scheduled ones once, so the demo shows segment enrollments now.
func (d *Dev) deploySamples(ctx context.Context) error {
	if d.opts.PlaybookDir == "" {
		return nil
	}
	plans, err := compileDir(d.opts.PlaybookDir)
	if err != nil {
		return err
	}
	deps, err := d.Stack.Deploy(ctx, plans...)
	for _, dep := range deps {
		d.say("deploy: %s", dep)
	}
	return err
}

func compileDir(dir string) ([]*engine.Plan, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no playbooks (*.yaml) in %s: run rapport dev from the repository root or pass --playbooks", dir)
	}
	var plans []*engine.Plan
	var errs []error
	for _, f := range files {
		if engine.IsWorkspaceFile(f) {
			continue // the workspace declaration, not a playbook
		}
		p, err := engine.CompileFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		plans = append(plans, p)
	}
	return plans, errors.Join(errs...)
}

// seed stores the demo customers, triggers the scans of the scheduled
// playbooks and sends the demo events through the API.
func (d *Dev) seed(ctx context.Context, st *store.Store) error {
	now := time.Now()
	n, err := SeedCustomers(ctx, st, now)
	if err != nil {
		return err
	}
	d.say("seed: %d demo customers (en/zh, %d time zones, lapsed/active/high-value/new)", n, len(demoZones))
	for _, name := range d.Stack.Plans.Names() {
		p, _ := d.Stack.Plans.Latest(name)
		if scan.Scheduled(p) {
			if err := scan.Trigger(ctx, d.Stack.opts.Client, name); err != nil {
				return err
			}
			d.say("seed: scan of %s triggered", name)
		}
	}
	return SendDemoCalls(d.Stack.API, d.opts.APIKey, DemoCalls(now), func(what string) { d.say("seed: %s", what) })
}

// PrintWhatToOpen prints the URLs and example commands.
func (d *Dev) PrintWhatToOpen() {
	o := d.opts
	q := url.QueryEscape(`RapportPlaybook="winback"`)
	d.say("")
	d.say("Rapport is running. Open:")
	if d.UIURL != "" {
		d.say("  Temporal UI, all journeys:  %s/namespaces/%s/workflows?query=%s", d.UIURL, o.Namespace, url.QueryEscape(`WorkflowType="Journey"`))
		d.say("  Temporal UI, winback only:  %s/namespaces/%s/workflows?query=%s", d.UIURL, o.Namespace, q)
		d.say("  Temporal UI, scan schedules: %s/namespaces/%s/schedules", d.UIURL, o.Namespace)
	}
	if d.codec.Enabled() {
		d.say("  Payloads are encrypted (key from %s); codec endpoint %s%s", d.keysFrom, d.APIURL, api.CodecPath)
		if d.UIURL != "" && !d.startedTemporal {
			d.say("    (a dev server rapport dev did not start: in its UI, set the codec endpoint (Data Encoder) to %s%s)", d.APIURL, api.CodecPath)
		}
	}
	d.say("  Mail sent (caught):         %s/", d.MailURL)
	d.say("  Event API:                  %s  (key: %s)", d.APIURL, o.APIKey)
	if o.MetricsAddr != "off" {
		d.say("  Metrics / health:           http://%s/metrics  http://%s/healthz", hostPortURL(o.MetricsAddr), hostPortURL(o.MetricsAddr))
	}
	d.say("")
	d.say("Try:")
	d.say(`  RAPPORT_API_URL=%s RAPPORT_API_KEY=%s rapport track --customer demo-05 --event %q --prop order_id=D-2005 --prop revenue=120`, d.APIURL, o.APIKey, tryOrderEvent)
	d.say(`  curl -s -H 'Authorization: Bearer %s' -d '{"userId":"demo-07","event":%q,"properties":{"subject":"Broken lid"}}' %s/v1/track`, o.APIKey, tryComplaintEvent, d.APIURL)
	d.say("Ctrl-C stops everything rapport dev started.")
}

// Wait blocks until ctx ends or exitAfter (when > 0) passes.
func Wait(ctx context.Context, exitAfter time.Duration) {
	if exitAfter <= 0 {
		<-ctx.Done()
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(exitAfter):
	}
}

func hostPortURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" || host == "127.0.0.1" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func dbName(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "?"
	}
	return strings.TrimPrefix(u.Path, "/") + " on " + u.Host
}
