package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/rapport-crm/rapport/api"
	"github.com/rapport-crm/rapport/erasure"
	"github.com/rapport-crm/rapport/payloadcrypt"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/temporalenv"
	"github.com/rapport-crm/rapport/unsubscribe"
	"github.com/rapport-crm/rapport/workflows"
)

func init() {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the event API (Segment's tracking spec: identify/track/page/screen/group/alias/batch), manual enrollment, unsubscribe pages and /healthz",
		Long: `Run the event API.

Environment (flags override):
  RAPPORT_LISTEN              address to listen on (default :8080)
  DATABASE_URL                PostgreSQL (default ` + store.DefaultDatabaseURL + `)
  TEMPORAL_ADDRESS            Temporal frontend (default localhost:7233)
  TEMPORAL_NAMESPACE          Temporal namespace (default default)
  TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE
                              TLS, mTLS and API key, as the Temporal CLI reads them
                              (see docs/operators.md, "Connecting to Temporal")
  RAPPORT_API_KEY             the legacy/bootstrap key, holding every scope: clients send it as
                              "Authorization: Bearer <key>" or as the Basic auth user name
                              (Segment's write key); scoped keys come from rapport keys create
  RAPPORT_API_RATE            default rate limit of a key, requests per second (default 100; off: none)
  RAPPORT_API_BURST           default burst of a key (default twice the rate)
  RAPPORT_API_EVENT_STATEMENTS
                              statements storing events that run at once; calls arriving while
                              all are busy share the next (default 2; off: one per request)
  RAPPORT_ERASURE_SECRET      key of the erased addresses' hashes: POST /v1/customers/{id}/forget
                              needs it, and identify checks new addresses against them
  RAPPORT_UNSUBSCRIBE_SECRET  secret of the unsubscribe links (the same as the worker's)
  RAPPORT_TWILIO_AUTH_TOKEN   enables the inbound-SMS webhook POST /v1/sms/inbound
                              (STOP, START, HELP; X-Twilio-Signature checked with it)
  RAPPORT_PUBLIC_URL          https URL Twilio calls this server at (required with the token)
  RAPPORT_SMS_HELP            reply to HELP: sender, contact, "Reply STOP to unsubscribe"
  RAPPORT_SES_TOPIC_ARNS      SNS topics (comma-separated) whose SES notifications POST /v1/feedback/ses accepts
  RAPPORT_SENDGRID_WEBHOOK_PUBLIC_KEY  verification key of SendGrid's Signed Event Webhook (POST /v1/feedback/sendgrid)
  RAPPORT_MAILGUN_SIGNING_KEY webhook signing key of Mailgun (POST /v1/feedback/mailgun)
  RAPPORT_TWILIO_AUTH_TOKEN   also enables Twilio status callbacks (POST /v1/feedback/twilio)
  RAPPORT_TRACKING_SECRET     enables tracked links GET /t/c/<token> and the open pixel GET /t/o/<token>.gif
  RAPPORT_SOFT_BOUNCE_LIMIT   soft bounces in a row that suppress an address (default 3)
  RAPPORT_PAYLOAD_KEYS        master keys that encrypt Temporal payloads, id:base64key,... (the
                              worker's); enables the codec server POST /codec/encode, /codec/decode
  RAPPORT_CODEC_ORIGINS       Temporal Web UI origins allowed to call /codec from a browser
                              (comma-separated, e.g. https://temporal.example.com)

The server starts without Temporal and answers event calls with 503 until it
is reachable; clients retry, and stored events are dispatched on the retry.
` + commerceEnvHelp,
		Args: cobra.NoArgs,
		RunE: runServe,
	}
	f := cmd.Flags()
	f.String("listen", serveEnv("RAPPORT_LISTEN", ":8080"), "address to listen on")
	f.String("database-url", serveEnv("DATABASE_URL", store.DefaultDatabaseURL), "PostgreSQL URL")
	f.String("temporal-address", "", "Temporal frontend host:port (default: TEMPORAL_ADDRESS, the config profile, else localhost:7233)")
	f.String("temporal-namespace", "", "Temporal namespace (default: TEMPORAL_NAMESPACE, the config profile, else default)")
	f.Duration("reload", 30*time.Second, "how often to reload the deployed playbooks (and the --workspace file)")
	f.String("workspace", serveEnv("RAPPORT_WORKSPACE", ""), "workspace declaration (playbooks/rapport.yaml) that identify traits and track properties are checked against; empty checks none")
	f.Duration("redispatch-after", time.Minute, "dispatch stored events whose client did not retry a failed call after this long")
	f.Duration("redispatch-window", 24*time.Hour, "never redispatch events received longer ago than this")
	rootCmd.AddCommand(cmd)
}

// serveEnv is the environment variable name, or def when it is unset.
func serveEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// serveConfig is everything `rapport serve` needs, checked up front.
type serveConfig struct {
	Listen, DatabaseURL                       string
	Temporal                                  client.Options // temporalenv.Load with the flags over it
	APIKey                                    string
	Rate                                      float64 // RAPPORT_API_RATE; 0: no limit
	Burst                                     int     // RAPPORT_API_BURST
	EventStatements                           int     // RAPPORT_API_EVENT_STATEMENTS; api.Options.EventStatements
	Workspace                                 string
	UnsubscribeSecret                         []byte
	SMS                                       api.SMSOptions      // Replies set by newServeHandler
	Feedback                                  api.FeedbackOptions // Recorder set by newServeHandler
	Reload, RedispatchAfter, RedispatchWindow time.Duration
	PayloadKeys                               *payloadcrypt.Keyring // nil: payloads in clear
	CodecOrigins                              []string
}

func loadServeConfig(cmd *cobra.Command) (serveConfig, error) {
	f := cmd.Flags()
	var c serveConfig
	c.Listen, _ = f.GetString("listen")
	c.DatabaseURL, _ = f.GetString("database-url")
	var o temporalenv.Overrides
	o.Address, _ = f.GetString("temporal-address")
	o.Namespace, _ = f.GetString("temporal-namespace")
	c.Reload, _ = f.GetDuration("reload")
	c.Workspace, _ = f.GetString("workspace")
	c.RedispatchAfter, _ = f.GetDuration("redispatch-after")
	c.RedispatchWindow, _ = f.GetDuration("redispatch-window")
	c.APIKey = os.Getenv("RAPPORT_API_KEY")
	c.UnsubscribeSecret = []byte(os.Getenv("RAPPORT_UNSUBSCRIBE_SECRET"))
	var err error
	if c.Rate, c.Burst, err = apiRateFromEnv(); err != nil {
		return c, err
	}
	if c.EventStatements, err = eventStatementsFromEnv(); err != nil {
		return c, err
	}
	// Checked here so that a bad edition stops serve at start, not at
	// each enrollment it starts (workflows.Input reads it again).
	if _, err = workflows.StartEdition(); err != nil {
		return c, err
	}
	if c.Temporal, err = temporalenv.Load(o); err != nil {
		return c, err
	}
	if c.PayloadKeys, err = payloadcrypt.KeysFromEnv(); err != nil {
		return c, err
	}
	if c.CodecOrigins, err = api.ParseOrigins(os.Getenv("RAPPORT_CODEC_ORIGINS")); err != nil {
		return c, fmt.Errorf("RAPPORT_CODEC_ORIGINS: %w", err)
	}
	if c.SMS, err = smsOptionsFromEnv(); err != nil {
		return c, err
	}
	if c.Feedback, err = feedbackOptionsFromEnv(); err != nil {
		return c, err
	}
	if c.Reload < time.Second {
		return c, fmt.Errorf("--reload %s: must be at least 1s", c.Reload)
	}
	if c.RedispatchAfter < time.Second || c.RedispatchWindow <= c.RedispatchAfter {
		return c, fmt.Errorf("--redispatch-after %s must be at least 1s and shorter than --redispatch-window %s", c.RedispatchAfter, c.RedispatchWindow)
	}
	return c, nil
}

func runServe(cmd *cobra.Command, _ []string) error {
	cfg, err := loadServeConfig(cmd)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := openServeStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.PayloadKeys == nil {
		log.Warn(payloadcrypt.EnvKeys + " is not set: Temporal payloads are stored in clear and /codec is off; see docs/operators.md, Payload encryption")
	}
	codec := payloadcrypt.New(cfg.PayloadKeys, st, payloadcrypt.Options{})
	// Lazy: the API comes up without Temporal and answers 503 meanwhile.
	topts := codec.ClientOptions(cfg.Temporal)
	topts.Logger = tlog.NewStructuredLogger(log.With("component", "temporal"))
	tc, err := client.NewLazyClient(topts)
	if err != nil {
		return fmt.Errorf("temporal client for %s: %w", temporalenv.Describe(topts), err)
	}
	defer tc.Close()

	plans := &api.LivePlans{}
	if err := reloadPlans(ctx, plans, st, log); err != nil {
		return err
	}
	ws := &api.LiveWorkspace{}
	if err := reloadWorkspace(cfg.Workspace, ws); err != nil {
		return err
	}
	go keepReloading(ctx, plans, st, cfg.Reload, log, func() {
		if err := reloadWorkspace(cfg.Workspace, ws); err != nil {
			log.Warn("workspace reload failed; keeping the current declaration", "err", err)
		}
	})

	srv, err := newServeHandler(cfg, st, tc, codec, plans, ws, log)
	if err != nil {
		return err
	}
	go keepRedispatching(ctx, srv, api.PGStore{Store: st}, cfg, log)
	err = listenAndServe(ctx, cfg.Listen, srv, log)
	closeServer(srv)
	return err
}

// closeServer writes the dispatch markers still pending once the HTTP
// server has finished its calls, before the store closes (deferred above).
func closeServer(srv *api.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Close(ctx)
}

// openServeStore connects and refuses to run on a schema that lacks
// migrations (the dispatch marker, for one): `rapport migrate up` first.
func openServeStore(ctx context.Context, databaseURL string) (*store.Store, error) {
	states, err := store.MigrationStatus(ctx, databaseURL)
	if err != nil {
		return nil, err
	}
	for _, s := range states {
		if !s.Applied {
			return nil, fmt.Errorf("database schema is not up to date (%s is not applied): run rapport migrate up", s.File)
		}
	}
	cfg, err := store.ConfigFromEnv() // the worker's settings: soft-bounce limit, erasure secrets, pool size
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, databaseURL, cfg)
}

func newServeHandler(cfg serveConfig, st *store.Store, tc client.Client, codec *payloadcrypt.Codec, plans *api.LivePlans, ws *api.LiveWorkspace, log *slog.Logger) (*api.Server, error) {
	if len(cfg.UnsubscribeSecret) == 0 {
		log.Warn("RAPPORT_UNSUBSCRIBE_SECRET is not set: unsubscribe links answer 503")
	}
	commerce, err := commerceFromEnv()
	if err != nil {
		return nil, err
	}
	if cfg.APIKey == "" {
		log.Info("RAPPORT_API_KEY is not set: only keys made with rapport keys create are accepted")
	}
	pg := api.PGStore{Store: st}
	disp := api.NewEventDispatcher(plans, api.TemporalJourneys{Client: tc}, pg, log)
	return api.NewServer(api.Options{
		APIKey: cfg.APIKey,
		Keys:   pg,
		Rate:   cfg.Rate,
		Burst:  cfg.Burst,
		Forgetter: &erasure.Eraser{Store: st, Journeys: erasure.Temporal{Client: tc},
			Keys: erasure.KeysAndCache(erasure.KeysOf(st), codec)},
		Customers:       st,
		Commerce:        commerce,
		Store:           pg,
		Dispatcher:      disp,
		Enroller:        disp,
		Workspace:       ws,
		Unsubscriber:    &api.TokenUnsubscriber{Secret: cfg.UnsubscribeSecret, Applier: st, Customers: pg},
		SMS:             smsOptions(cfg.SMS, st),
		Feedback:        feedbackOptions(cfg.Feedback, st),
		MarkEvery:       markerEvery,
		EventStatements: cfg.EventStatements,
		Codec:           codecOptions(codec, cfg.CodecOrigins),
		Checks: map[string]func(context.Context) error{
			"db": func(ctx context.Context) error { return st.Pool().Ping(ctx) },
			"temporal": func(ctx context.Context) error {
				_, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{})
				return err
			},
		},
		Logger: log,
	})
}

// DefaultAPIRate is a key's rate limit when neither the key nor
// RAPPORT_API_RATE sets one: requests per second, with a burst of twice
// as many. A batch is one request, so this is far above what a Segment
// source sends; it stops a leaked or runaway key, not a busy one.
const DefaultAPIRate = 100

// apiRateFromEnv reads RAPPORT_API_RATE (requests per second, "off" for
// no limit) and RAPPORT_API_BURST.
func apiRateFromEnv() (rate float64, burst int, err error) {
	rate = DefaultAPIRate
	switch v := strings.TrimSpace(os.Getenv("RAPPORT_API_RATE")); v {
	case "":
	case "off":
		return 0, 0, nil
	default:
		if rate, err = strconv.ParseFloat(v, 64); err != nil || rate <= 0 || math.IsInf(rate, 0) {
			return 0, 0, fmt.Errorf("RAPPORT_API_RATE: %q is not a positive number of requests per second (or off)", v)
		}
	}
	if v := strings.TrimSpace(os.Getenv("RAPPORT_API_BURST")); v != "" {
		if burst, err = strconv.Atoi(v); err != nil || burst < 1 {
			return 0, 0, fmt.Errorf("RAPPORT_API_BURST: %q is not a positive whole number", v)
		}
	}
	return rate, burst, nil
}

// eventStatementsFromEnv reads RAPPORT_API_EVENT_STATEMENTS as
// api.Options.EventStatements: a positive whole number, "off" (-1, a
// statement per request), or unset (0, the API's default).
func eventStatementsFromEnv() (int, error) {
	switch v := strings.TrimSpace(os.Getenv("RAPPORT_API_EVENT_STATEMENTS")); v {
	case "":
		return 0, nil
	case "off":
		return -1, nil
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("RAPPORT_API_EVENT_STATEMENTS: %q is not a positive whole number (or off)", v)
		}
		return n, nil
	}
}

// codecOptions serves the codec endpoint when payloads are encrypted:
// without keys there is nothing for it to decode.
func codecOptions(codec *payloadcrypt.Codec, origins []string) *api.CodecOptions {
	if !codec.Enabled() {
		return nil
	}
	return &api.CodecOptions{Handler: codec.Handler(), AllowedOrigins: origins}
}

// smsOptionsFromEnv reads the inbound-SMS webhook's settings. The token
// enables it; the signature covers the URL Twilio called, so the public
// https URL is required with it.
func smsOptionsFromEnv() (api.SMSOptions, error) {
	o := api.SMSOptions{AuthToken: os.Getenv("RAPPORT_TWILIO_AUTH_TOKEN"), PublicURL: os.Getenv("RAPPORT_PUBLIC_URL"), Help: os.Getenv("RAPPORT_SMS_HELP")}
	if o.AuthToken == "" {
		return o, nil
	}
	if err := unsubscribe.CheckPublicURL(o.PublicURL, false); err != nil {
		return o, fmt.Errorf("RAPPORT_TWILIO_AUTH_TOKEN is set: the inbound-SMS webhook needs the URL Twilio calls: %w", err)
	}
	return o, nil
}

// markerEvery is how often the dispatch markers of events (API calls and
// provider events) are written in one statement: a call then waits for
// no write after its dispatch.
const markerEvery = 5 * time.Millisecond

// feedbackOptions records provider events in st, their dispatch markers
// batched.
func feedbackOptions(o api.FeedbackOptions, st *store.Store) *api.FeedbackOptions {
	o.Recorder = st
	o.MarkEvery = markerEvery
	return &o
}

// smsOptions enables the webhook over st when a token is configured.
func smsOptions(o api.SMSOptions, st *store.Store) *api.SMSOptions {
	if o.AuthToken == "" {
		return nil
	}
	o.Replies = st
	return &o
}

func reloadPlans(ctx context.Context, plans *api.LivePlans, st *store.Store, log *slog.Logger) error {
	bad, err := plans.Reload(ctx, st)
	if err != nil {
		return fmt.Errorf("load deployed playbooks: %w", err)
	}
	for _, e := range bad {
		log.Error("deployed playbook left out", "err", e)
	}
	return nil
}

// keepReloading picks up deploys and undeploys every interval; a failed
// reload keeps the plans it had.
func keepReloading(ctx context.Context, plans *api.LivePlans, st *store.Store, every time.Duration, log *slog.Logger, also func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := reloadPlans(ctx, plans, st, log); err != nil && ctx.Err() == nil {
				log.Warn("reload failed; keeping the current playbooks", "err", err)
			}
			also()
		}
	}
}

// keepRedispatching dispatches, every RedispatchAfter, the stored events
// whose failed call the client never retried.
func keepRedispatching(ctx context.Context, srv *api.Server, pending api.PendingLister, cfg serveConfig, log *slog.Logger) {
	t := time.NewTicker(cfg.RedispatchAfter)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := srv.Redispatch(ctx, pending, cfg.RedispatchAfter, cfg.RedispatchWindow); err != nil && ctx.Err() == nil {
				log.Warn("redispatch pass stopped; the next pass retries", "err", err)
			}
		}
	}
}

// listenAndServe runs the HTTP server until ctx is cancelled (SIGINT,
// SIGTERM), then stops accepting and lets calls in flight finish.
func listenAndServe(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Addr: addr, Handler: h,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("rapport serve listening", "addr", addr)
	select {
	case err := <-errc:
		return fmt.Errorf("listen on %s: %w", addr, err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing calls in flight")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
