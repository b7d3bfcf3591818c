// Package api is Rapport's HTTP front door: the Segment-compatible event API
// (identify, track, batch), manual enrollment, a customer's export and
// erasure, the one-click unsubscribe pages, the health check, and the
// codec server through which the Temporal Web UI and CLI read encrypted
// histories (codec.go).
//
// Every authenticated route asks for a scope (keys.go): events:write,
// enrollments:write, customers:read or admin. Keys are RAPPORT_API_KEY
// (every scope) and the scoped keys of `rapport keys`, stored as SHA-256
// digests; each key has a token-bucket rate limit (429 with Retry-After).
// Provider webhooks, unsubscribe pages and tracking links are
// authenticated by their own signatures and tokens instead.
//
// The package works against small interfaces (Store, Dispatcher, Enroller,
// Unsubscriber) so that it can be tested without PostgreSQL or Temporal;
// NewDispatcher and StoreAdapter wire the real ones.
//
// Delivery guarantee: an event is stored before it is dispatched to the
// journeys, and the call answers 2xx only once dispatch succeeded. When
// Temporal or the database is unreachable the answer is 503 with
// Retry-After; the client retries, the retry finds the event already stored
// (by messageId) and dispatches it again. A fully dispatched event that is
// retried is a no-op. With Options.MarkEvery (rapport serve) the dispatch
// marker is written within that interval after the answer, batched; a
// retry arriving before it dispatches the event again, which journeys
// drop by ID. Events whose client never retried are dispatched
// later by Redispatch (rapport serve runs it every minute).
//
// # Segment compatibility
//
// POST /v1/identify, /v1/track, /v1/page, /v1/screen, /v1/group,
// /v1/alias and /v1/batch (alias /v1/import) accept Segment's tracking
// spec, authenticated by "Authorization: Bearer <key>" or Basic auth with
// the key as user name, plain or Content-Encoding: gzip. Limits are
// Segment's: 32 KiB a call, 500 KiB a batch (decompressed). Unknown
// top-level fields are rejected (400 naming the field); the fields Segment
// libraries add (context, integrations, sentAt, channel, version,
// _metadata, …) are accepted, and so are a batch envelope's timestamp,
// sentAt and context.
//
// Batches: a batch whose envelope is sound answers 200, as Segment does,
// even when items are refused; the answer lists them:
// {"success":true,"calls":2,"rejected":1,"errors":[{"index":1,"status":400,
// "error":"batch[1].userId: …"}]}. Each item is written in one transaction,
// whole or not at all. Refused input is always a 4xx (400 bad field, 409 a
// messageId another user's event has, 422 a value the database cannot
// keep), never a 5xx, since a retry would be refused again; 500 and 503
// mean a retry may help. Calls in flight together that only store an
// event share the statement that writes them (eventGroups,
// Options.EventStatements), each answered as if written alone.
//
// Identity: a call needs userId or anonymousId (a string, or a number
// taken as its decimal text). An anonymous visitor's traits and events are
// kept apart (anonymous_ids, anonymous_events) until an identify, an alias
// (previousId) or any call carrying both ids ties them to the user: the
// traits fill attributes the customer lacks, the events join the
// customer's history (metrics applied, not dispatched), and later calls
// with that anonymousId count for the customer. context.traits change the
// profile like identify traits (an identify's own traits win). group
// calls keep the customer's accounts (customer_groups).
//
// messageId is optional: without one the key is derived from the call
// (a digest of it less sentAt and _metadata), so a retried call still
// counts once. Times are ISO 8601 (RFC 3339, or offsets like +0000) and
// corrected for the client's clock as Segment does: timestamp =
// receivedAt − (sentAt − originalTimestamp, else timestamp) when sentAt is
// sent; without sentAt the time is taken as sent.
//
// Event names are normalised to the lowercase word a playbook names
// (rules.NormalizeEvent): "Order Completed" is order_completed. A
// page call is the event `page`, a screen call `screen`, with name and
// category among the properties. Options.Commerce says which events are
// purchases and refunds (default order_completed and purchase,
// order_refunded) and where the amount is: amount, else revenue, total,
// subtotal, value, else the sum of products[].price × quantity.
//
// Track properties currency, order_id (or orderId), category and score
// fill the event's typed fields; all properties are kept in event.props.
// Identify traits email, phone, name (else firstName + lastName), locale,
// timezone, birthday, createdAt (signup_at), tier and stage fill the
// customer's typed fields (control characters stripped, as they may reach
// message headers); all other traits go to customer.attrs. A trait not
// sent keeps its stored value, "" counts as not sent, null clears.
// context.locale and context.timezone fill locale and time zone when the
// profile has none. Bodies that are not UTF-8, and NUL characters in
// values, are refused before anything is decoded or stored.
package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/unsubscribe"
)

// Limits of the event API. The per-call and per-batch sizes are Segment's
// own, so a Segment client never sends more than we accept.
const (
	MaxCallBytes  = 32 << 10  // one identify, track or enroll body, and each batch item
	MaxBatchBytes = 500 << 10 // one batch body
	MaxBatchItems = 2500      // calls in one batch
)

// Options configure a Server. Store and Dispatcher are required, and
// APIKey or Keys.
type Options struct {
	// APIKey is RAPPORT_API_KEY, the legacy and bootstrap key: clients
	// present it as a Bearer token or as the Basic auth user name
	// (Segment's write key convention), and it holds every scope.
	APIKey string
	// Keys are the scoped keys of `rapport keys` (api_keys), reloaded
	// every KeyRefresh (default DefaultKeyRefresh) and on an unknown key.
	Keys       KeyStore
	KeyRefresh time.Duration
	// Rate is the default rate limit of a key, in requests per second
	// (RAPPORT_API_RATE), with bucket size Burst (default twice Rate); a
	// key's own limit wins. 0: no limit.
	Rate  float64
	Burst int

	// Forgetter erases customers (POST /v1/customers/{id}/forget); nil
	// answers 404.
	Forgetter Forgetter
	// Customers exports a customer's record (GET /v1/customers/{id});
	// nil answers 404.
	Customers CustomerExporter

	Store      Store
	Dispatcher Dispatcher
	// Enroller starts manual enrollments (POST /v1/enroll); nil disables it.
	Enroller Enroller
	// Unsubscriber serves /u/{token}; nil disables the pages.
	Unsubscriber Unsubscriber
	// SMS enables the inbound-message webhook (SMSPath); nil disables it.
	SMS *SMSOptions
	// Feedback enables the provider-event webhooks and the click and open
	// tracking endpoints (feedback.go); nil disables them.
	Feedback *FeedbackOptions
	// Codec enables the codec server endpoints under CodecPath (codec.go);
	// nil disables them (404).
	Codec *CodecOptions
	// Workspace is the declaration identify traits and track properties
	// are checked against (declared.go); nil checks nothing.
	Workspace *LiveWorkspace
	// MarkEvery, when set, writes the dispatch markers of the events the
	// event API (and the SMS webhook and Redispatch) dispatched in
	// batches at most this often, off the request path (markerBatcher),
	// through the Store's MarkEventsDispatched (EventsMarker, required
	// then): a call answers once its dispatch succeeded without a second
	// write to wait for. A marker lost to a crash only redispatches its
	// event, which journeys drop by ID. Zero writes each marker before the
	// call answers, which tests that read it right after a call rely on.
	MarkEvery time.Duration
	// EventStatements bounds the statements storing events (a Store that
	// is an EventsIngester) that run at once; runs of calls arriving
	// while all are busy share the next one (eventGroups). Zero is
	// DefaultEventStatements; negative gives each request's run of such
	// calls its own statement.
	EventStatements int

	// Checks are the dependencies /healthz reports, by name (db, temporal).
	Checks map[string]func(context.Context) error

	// Commerce names the purchase and refund events and the amount
	// properties; default activities.DefaultCommerce (Segment's
	// e-commerce spec plus `purchase`).
	Commerce activities.Commerce

	// MaxFuture and MaxPast bound event timestamps relative to the receive
	// time; defaults 24h and 5 years (365×5 days).
	MaxFuture time.Duration
	MaxPast   time.Duration
	// RetryAfter is the Retry-After of a 503; default 5s.
	RetryAfter time.Duration

	// Now is the clock; default time.Now. Tests pin it.
	Now func() time.Time
	// Logger receives dispatch failures and other server-side errors;
	// default slog.Default().
	Logger *slog.Logger
}

// Server is the HTTP handler of the API.
type Server struct {
	opts    Options
	keyHash [32]byte  // of the legacy APIKey
	keys    *keyRing  // nil: no stored keys
	rates   *limiters // per key id
	mux     *http.ServeMux
	markers *markerBatcher // nil: provider markers are written per call
	// eventMarkers batches the markers of the events dispatch hands on
	// (Options.MarkEvery); nil: each is written before the call answers.
	eventMarkers *markerBatcher
	// events stores runs of calls that only store an event
	// (Options.EventStatements); nil when the Store cannot.
	events EventsIngester
}

// NewServer checks the options and builds the handler. It starts nothing:
// mount it on any http.Server or httptest.Server.
func NewServer(opts Options) (*Server, error) {
	if opts.APIKey == "" && opts.Keys == nil {
		return nil, errors.New("api: an API key is required (RAPPORT_API_KEY, or keys made with rapport keys create)")
	}
	if opts.Rate < 0 || opts.Burst < 0 {
		return nil, fmt.Errorf("api: rate limit %v/s, burst %d: must not be negative", opts.Rate, opts.Burst)
	}
	if opts.KeyRefresh <= 0 {
		opts.KeyRefresh = DefaultKeyRefresh
	}
	if opts.Store == nil || opts.Dispatcher == nil {
		return nil, errors.New("api: Store and Dispatcher are required")
	}
	if opts.MaxFuture <= 0 {
		opts.MaxFuture = 24 * time.Hour
	}
	if opts.MaxPast <= 0 {
		opts.MaxPast = 5 * 365 * 24 * time.Hour
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 5 * time.Second
	}
	if opts.Commerce.PurchaseEvents == nil && opts.Commerce.RefundEvents == nil && opts.Commerce.AmountProps == nil {
		opts.Commerce = activities.DefaultCommerce()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.EventStatements == 0 {
		opts.EventStatements = DefaultEventStatements
	}
	s := &Server{opts: opts, keyHash: KeyDigest(opts.APIKey), mux: http.NewServeMux(),
		rates: &limiters{rate: opts.Rate, burst: opts.Burst}}
	if opts.Keys != nil {
		s.keys = &keyRing{src: opts.Keys, refresh: opts.KeyRefresh, now: opts.Now, log: opts.Logger}
	}
	if ing, ok := opts.Store.(EventsIngester); ok {
		s.events = ing
		if opts.EventStatements > 0 {
			s.events = newEventGroups(ing, opts.EventStatements, opts.Logger)
		}
	}
	s.routes()
	if f := opts.Feedback; f != nil && f.Recorder != nil && f.MarkEvery > 0 {
		s.markers = newMarkerBatcher(f.Recorder.MarkFeedbackDispatched, f.MarkEvery, opts.Logger)
	}
	if opts.MarkEvery > 0 {
		m, ok := opts.Store.(EventsMarker)
		if !ok {
			return nil, errors.New("api: MarkEvery needs a Store that marks events in batches (EventsMarker)")
		}
		s.eventMarkers = newMarkerBatcher(m.MarkEventsDispatched, opts.MarkEvery, opts.Logger)
	}
	return s, nil
}

// Close writes the dispatch markers still pending and stops their
// batcher; call it after the HTTP server has finished its calls in
// flight. Markers of calls that finish later are written at once.
func (s *Server) Close(ctx context.Context) {
	if s.markers != nil {
		s.markers.Close(ctx)
	}
	if s.eventMarkers != nil {
		s.eventMarkers.Close(ctx)
	}
}

// flushMarkers writes the pending dispatch markers, so that a redispatch
// pass does not take an event dispatched moments ago for one whose
// dispatch failed.
func (s *Server) flushMarkers(ctx context.Context) {
	if s.markers != nil {
		s.markers.Flush(ctx)
	}
	if s.eventMarkers != nil {
		s.eventMarkers.Flush(ctx)
	}
}

func (s *Server) routes() {
	for _, typ := range []string{"identify", "track", "page", "screen", "group", "alias"} {
		s.mux.Handle("POST /v1/"+typ, s.authed(ScopeEventsWrite, s.limited(MaxCallBytes, s.handleCall(typ))))
	}
	s.mux.Handle("POST /v1/batch", s.authed(ScopeEventsWrite, s.limited(MaxBatchBytes, s.handleBatch)))
	s.mux.Handle("POST /v1/import", s.authed(ScopeEventsWrite, s.limited(MaxBatchBytes, s.handleBatch))) // Segment's alias of batch
	s.mux.Handle("POST /v1/enroll", s.authed(ScopeEnrollmentsWrite, s.limited(MaxCallBytes, s.handleEnroll)))
	s.mux.Handle("GET /v1/customers/{id}", s.authed(ScopeCustomersRead, s.handleCustomerExport))
	s.mux.Handle("POST /v1/customers/{id}/forget", s.authed(ScopeAdmin, s.handleForget))
	// Provider webhooks, the unsubscribe pages and tracking are
	// authenticated by their own signatures and tokens, not API keys, so
	// no key's rate limit applies to them.
	s.mux.HandleFunc("GET /u/{token}", s.handleUnsubscribePage)
	s.mux.HandleFunc("POST /u/{token}", s.handleUnsubscribe)
	s.mux.HandleFunc("GET "+unsubscribe.Path, s.handleUnsubscribePage) // ?token=…, as unsubscribe.URL links
	s.mux.HandleFunc("POST "+unsubscribe.Path, s.handleUnsubscribe)
	s.mux.HandleFunc("POST "+SMSPath, s.handleSMS)
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.feedbackRoutes()
	s.codecRoutes()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// presentedKey extracts the key from an Authorization header value.
func presentedKey(header string) (string, bool) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "bearer":
		return cred, cred != ""
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return "", false
		}
		user, _, _ := strings.Cut(string(raw), ":")
		return user, user != ""
	}
	return "", false
}

// limited caps the request body at n bytes and insists on JSON.
func (s *Server) limited(n int64, next http.HandlerFunc) http.HandlerFunc {
	return limitJSON(n, next)
}

// errorBody is every error answer: {"error": "userId: required"}.
type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// writeUnavailable answers 503 with Retry-After, telling the client to send
// the same call again later.
func (s *Server) writeUnavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", fmt.Sprint(int(s.opts.RetryAfter.Round(time.Second)/time.Second)))
	writeError(w, http.StatusServiceUnavailable, msg)
}
