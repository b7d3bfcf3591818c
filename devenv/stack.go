package devenv

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/rapport-crm/rapport/api"
	"github.com/rapport-crm/rapport/delivery"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/erasure"
	"github.com/rapport-crm/rapport/payloadcrypt"
	"github.com/rapport-crm/rapport/scan"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/worker"
	"github.com/rapport-crm/rapport/workflows"
)

// StackOptions configure an in-process Rapport: worker and event API over
// one Temporal client and one store.
type StackOptions struct {
	// Client carries Codec's converters (Codec.ClientOptions) when Codec
	// is set.
	Client client.Client
	Store  *store.Store
	// Delivery is what the worker sends through (channels, link
	// secrets); its UnsubscribeSecret also verifies unsubscribe links.
	Delivery delivery.Config
	// Codec is the payload codec the client was dialled with: the
	// reconcile activities decode with it, and the API serves it as its
	// codec endpoint (authenticated, CORS for CodecOrigins). Nil: no
	// encryption, no endpoint.
	Codec        *payloadcrypt.Codec
	CodecOrigins []string
	APIKey       string
	Metrics      *worker.Metrics // default: a fresh registry
	// Feedback enables the provider webhooks and tracking endpoints, as
	// `rapport serve` does from its environment; the Recorder defaults
	// to Store. Nil leaves them off (404).
	Feedback *api.FeedbackOptions
	// MarkEvery batches the API's dispatch markers (api.Options.MarkEvery),
	// as `rapport serve` does; zero writes each before the call answers.
	MarkEvery time.Duration
	// EventStatements is api.Options.EventStatements: zero is the API's
	// default, as `rapport serve` runs it.
	EventStatements int
	Logger          *slog.Logger // default: discard
}

// Stack is the worker and the event API running in this process, what
// `rapport worker` and `rapport serve` run as two processes in production.
type Stack struct {
	opts   StackOptions
	Worker *worker.Worker
	Plans  *api.LivePlans
	// API is the event API handler (mount on an http.Server or httptest).
	API        http.Handler
	Dispatcher *api.EventDispatcher
	server     *api.Server
}

// StartStack starts the worker and builds the API over the deployed plans.
func StartStack(ctx context.Context, o StackOptions) (*Stack, error) {
	// Its worker's scans and its API start journeys (workflows.Input);
	// a bad edition stops it here, naming the setting.
	if _, err := workflows.StartEdition(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Metrics == nil {
		o.Metrics = worker.NewMetrics()
	}
	s := &Stack{opts: o, Plans: &api.LivePlans{}}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	pg := api.PGStore{Store: o.Store}
	s.Dispatcher = api.NewEventDispatcher(s.Plans, api.TemporalJourneys{Client: o.Client}, pg, o.Logger)
	srv, err := api.NewServer(api.Options{
		APIKey: o.APIKey, Store: pg, Dispatcher: s.Dispatcher, Enroller: s.Dispatcher,
		Keys: pg, Customers: o.Store,
		// Erasure needs the store's erasure secret (store.Config); without
		// one it answers 503 naming RAPPORT_ERASURE_SECRET.
		Forgetter:       &erasure.Eraser{Store: o.Store, Journeys: erasure.Temporal{Client: o.Client}, Keys: keyEraser(o)},
		Unsubscriber:    &api.TokenUnsubscriber{Secret: o.Delivery.UnsubscribeSecret, Applier: o.Store, Customers: pg},
		Feedback:        feedbackOptions(o.Feedback, o.Store),
		MarkEvery:       o.MarkEvery,
		EventStatements: o.EventStatements,
		Codec:           codecOptions(o.Codec, o.CodecOrigins),
		Checks:          healthChecks(o.Client, o.Store),
		Logger:          o.Logger,
	})
	if err != nil {
		return nil, err
	}
	s.API, s.server = srv, srv
	s.Worker = worker.New(worker.Options{Client: o.Client, Store: o.Store, Delivery: o.Delivery, Codec: o.Codec, Metrics: o.Metrics, Logger: o.Logger})
	if err := s.Worker.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// feedbackOptions records provider events in st unless o names another
// recorder.
func feedbackOptions(o *api.FeedbackOptions, st *store.Store) *api.FeedbackOptions {
	if o == nil {
		return nil
	}
	c := *o
	if c.Recorder == nil {
		c.Recorder = st
	}
	return &c
}

// codecOptions serves the codec endpoint when payloads are encrypted.
func codecOptions(codec *payloadcrypt.Codec, origins []string) *api.CodecOptions {
	if codec == nil || !codec.Enabled() {
		return nil
	}
	return &api.CodecOptions{Handler: codec.Handler(), AllowedOrigins: origins}
}

func healthChecks(c client.Client, st *store.Store) map[string]func(context.Context) error {
	out := map[string]func(context.Context) error{}
	for name, check := range worker.HealthChecks(c, st) {
		out[name] = check
	}
	return out
}

// Reload refreshes the API's plans from the deployed versions.
func (s *Stack) Reload(ctx context.Context) error {
	bad, err := s.Plans.Reload(ctx, s.opts.Store)
	if err != nil {
		return fmt.Errorf("load deployed playbooks: %w", err)
	}
	for _, e := range bad {
		s.opts.Logger.Warn("deployed playbook left out", "error", e)
	}
	return nil
}

// Deploy deploys plans (versions, schedules) and reloads the API's plans,
// as `rapport deploy` followed by the server's periodic reload.
func (s *Stack) Deploy(ctx context.Context, plans ...*engine.Plan) ([]scan.Deployment, error) {
	deps, err := scan.Deploy(ctx, s.opts.Store, s.opts.Client, plans)
	if err != nil {
		return deps, err
	}
	return deps, s.Reload(ctx)
}

// Stop writes the API's pending dispatch markers and stops the worker
// (running activities finish). Stop the HTTP server in front of API first.
func (s *Stack) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.server.Close(ctx)
	s.Worker.Stop()
}

// keyEraser deletes an erased customer's data key in the store and drops
// it from this stack's codec cache.
func keyEraser(o StackOptions) erasure.KeyEraser {
	if o.Codec == nil {
		return erasure.KeysOf(o.Store)
	}
	return erasure.KeysAndCache(erasure.KeysOf(o.Store), o.Codec)
}
