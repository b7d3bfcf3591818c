package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/rapport-crm/rapport/store"
)

// Scopes of an API key: what it may call. A key holds exactly the scopes
// it was given; admin does not imply the others, so the key that erases
// customers is not also the write key shipped in a web page.
const (
	// ScopeEventsWrite: the Segment-compatible event API (identify,
	// track, page, screen, group, alias, batch, import).
	ScopeEventsWrite = "events:write"
	// ScopeEnrollmentsWrite: manual enrollment (POST /v1/enroll). Apart
	// from events:write because a Segment write key often sits in a
	// browser, and must not start journeys for arbitrary customers.
	ScopeEnrollmentsWrite = "enrollments:write"
	// ScopeCustomersRead: a customer's complete record (GET
	// /v1/customers/{id}), for access requests.
	ScopeCustomersRead = "customers:read"
	// ScopeAdmin: erasure (POST /v1/customers/{id}/forget) and the
	// operators' endpoints (the payload codec's /codec/encode and
	// /codec/decode).
	ScopeAdmin = "admin"
)

// Scopes are every scope, in the order documented.
var Scopes = []string{ScopeEventsWrite, ScopeEnrollmentsWrite, ScopeCustomersRead, ScopeAdmin}

// CheckScopes refuses an empty list or an unknown scope, naming it.
func CheckScopes(scopes []string) error {
	if len(scopes) == 0 {
		return fmt.Errorf("a key needs at least one scope (%s)", strings.Join(Scopes, ", "))
	}
	for _, s := range scopes {
		if !slices.Contains(Scopes, s) {
			return fmt.Errorf("unknown scope %q (scopes: %s)", s, strings.Join(Scopes, ", "))
		}
	}
	return nil
}

// LegacyKeyID is the id of RAPPORT_API_KEY (Options.APIKey), which holds
// every scope: the bootstrap key of a deployment, and what deployments
// from before scoped keys keep using.
const LegacyKeyID = "legacy"

// Key is an authenticated API key, as handlers see it (KeyFrom).
type Key struct {
	ID     string
	Name   string
	Scopes []string
	// Rate and Burst are the key's own limit; 0 takes the server's.
	Rate  float64
	Burst int
}

// Has says whether the key holds scope.
func (k Key) Has(scope string) bool { return slices.Contains(k.Scopes, scope) }

type keyCtx struct{}

// KeyFrom is the API key that authenticated the request, for handlers
// mounted with Handle (the audit's "who").
func KeyFrom(ctx context.Context) (Key, bool) {
	k, ok := ctx.Value(keyCtx{}).(Key)
	return k, ok
}

// NewKey generates a key: "rk_<id>_<secret>", where id names the key in
// listings and logs and secret is 256 random bits (base64url). Only
// digest, the SHA-256 of the whole key, is stored: a key this random
// cannot be found from its digest by guessing, so a slow password hash
// would add nothing but latency to every call.
func NewKey() (id, key string, digest [32]byte, err error) {
	var idb [6]byte
	var sec [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", "", digest, fmt.Errorf("generate key id: %w", err)
	}
	if _, err := rand.Read(sec[:]); err != nil {
		return "", "", digest, fmt.Errorf("generate key: %w", err)
	}
	id = "k" + hex.EncodeToString(idb[:])
	key = "rk_" + id + "_" + base64.RawURLEncoding.EncodeToString(sec[:])
	return id, key, KeyDigest(key), nil
}

// KeyDigest is what is stored of a key, and what a presented key is
// looked up by.
func KeyDigest(key string) [32]byte { return sha256.Sum256([]byte(key)) }

// KeyStore lists the keys that authenticate; store.Store implements it.
type KeyStore interface {
	ActiveAPIKeys(ctx context.Context) ([]store.APIKey, error)
}

// Defaults of the key ring.
const (
	// DefaultKeyRefresh is how often the stored keys are reloaded: a
	// revoked key stops working within it.
	DefaultKeyRefresh = 10 * time.Second
	// keyMissReload is how often an unknown key may trigger a reload, so
	// that a new key works at once while a flood of bad keys costs the
	// database at most one query a second.
	keyMissReload = time.Second
)

// keyRing holds the stored keys by digest, reloaded every refresh and
// on an unknown key (at most once per keyMissReload).
type keyRing struct {
	src     KeyStore
	refresh time.Duration
	now     func() time.Time
	log     *slog.Logger

	reloading sync.Mutex // one reload at a time
	mu        sync.RWMutex
	byDigest  map[[32]byte]Key
	loaded    bool
	loadedAt  time.Time
	missAt    time.Time
}

// lookup finds the key with digest d. An error means the keys could not
// be read and the key is not known from before: the caller answers 503.
func (r *keyRing) lookup(ctx context.Context, d [32]byte) (Key, bool, error) {
	now := r.now()
	r.mu.RLock()
	k, ok := r.byDigest[d]
	stale := !r.loaded || now.Sub(r.loadedAt) >= r.refresh
	retryMiss := !ok && now.Sub(r.missAt) >= keyMissReload
	r.mu.RUnlock()
	if !stale && !retryMiss {
		return k, ok, nil
	}
	if err := r.reload(ctx, now, !ok); err != nil {
		if ok {
			r.log.Warn("API keys could not be reloaded; using the ones loaded before", "err", err)
			return k, true, nil
		}
		return Key{}, false, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok = r.byDigest[d]
	return k, ok, nil
}

func (r *keyRing) reload(ctx context.Context, now time.Time, miss bool) error {
	r.reloading.Lock()
	defer r.reloading.Unlock()
	// Another call may have reloaded while this one waited: reload only
	// if the keys are still stale, or this miss may still retry.
	r.mu.RLock()
	stale := !r.loaded || now.Sub(r.loadedAt) >= r.refresh
	retryMiss := miss && now.Sub(r.missAt) >= keyMissReload
	r.mu.RUnlock()
	if !stale && !retryMiss {
		return nil
	}
	keys, err := r.src.ActiveAPIKeys(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if miss {
		r.missAt = now
	}
	if err != nil {
		return fmt.Errorf("read API keys: %w", err)
	}
	m := make(map[[32]byte]Key, len(keys))
	for _, k := range keys {
		var d [32]byte
		if copy(d[:], k.Hash) != len(d) {
			continue
		}
		m[d] = Key{ID: k.ID, Name: k.Name, Scopes: k.Scopes, Rate: k.Rate, Burst: k.Burst}
	}
	r.byDigest, r.loaded, r.loadedAt = m, true, now
	return nil
}

// limiters are the token buckets of the keys, by key id.
type limiters struct {
	rate  float64 // default requests per second; 0: no limit
	burst int     // default burst; 0: twice the rate
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

// allow takes a token from k's bucket at now, or says how long until
// one is there.
func (l *limiters) allow(k Key, now time.Time) (bool, time.Duration) {
	r, b := k.Rate, k.Burst
	if r == 0 {
		r = l.rate
	}
	if r == 0 {
		return true, 0
	}
	if b == 0 && k.Rate == 0 {
		b = l.burst
	}
	if b == 0 {
		b = max(1, int(math.Ceil(2*r)))
	}
	l.mu.Lock()
	lim, ok := l.m[k.ID]
	if !ok {
		if l.m == nil {
			l.m = map[string]*rate.Limiter{}
		}
		lim = rate.NewLimiter(rate.Limit(r), b)
		lim.SetLimitAt(now, rate.Limit(r)) // start the bucket full at now, not at the zero time
		l.m[k.ID] = lim
	} else if lim.Limit() != rate.Limit(r) || lim.Burst() != b {
		lim.SetLimitAt(now, rate.Limit(r))
		lim.SetBurstAt(now, b)
	}
	l.mu.Unlock()
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// identify finds the key presented: the legacy key (compared as SHA-256
// digests in constant time, so neither content nor length leaks through
// timing), else a stored one by digest.
func (s *Server) identify(ctx context.Context, presented string) (Key, bool, error) {
	d := KeyDigest(presented)
	if s.opts.APIKey != "" && subtle.ConstantTimeCompare(d[:], s.keyHash[:]) == 1 {
		return Key{ID: LegacyKeyID, Name: "RAPPORT_API_KEY", Scopes: Scopes}, true, nil
	}
	if s.keys == nil {
		return Key{}, false, nil
	}
	return s.keys.lookup(ctx, d)
}

// authed admits requests carrying an API key that holds scope, within
// the key's rate limit; the key travels in the context (KeyFrom). The key
// is sent as "Bearer <key>" or as Basic auth with the key as user name
// (how Segment libraries send their write key). No key, or an unknown or
// revoked one: 401. A key without the scope: 403 naming it. Over the
// key's rate: 429 with Retry-After. An empty scope admits anyone (no key
// read at all).
func (s *Server) authed(scope string, next http.HandlerFunc) http.Handler {
	if scope == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		presented, ok := presentedKey(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rapport", Basic realm="rapport"`)
			writeError(w, http.StatusUnauthorized, "missing API key: send Authorization: Bearer <key>")
			return
		}
		k, found, err := s.identify(r.Context(), presented)
		if err != nil {
			s.opts.Logger.Error("API key check failed", "err", err)
			s.writeUnavailable(w, "the API key cannot be checked now; retry")
			return
		}
		if !found {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rapport", Basic realm="rapport"`)
			writeError(w, http.StatusUnauthorized, "invalid API key")
			return
		}
		if ok, wait := s.rates.allow(k, s.opts.Now()); !ok {
			secs := int(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", fmt.Sprint(secs))
			writeError(w, http.StatusTooManyRequests, fmt.Sprintf("API key %s is over its rate limit; retry after %ds", k.ID, secs))
			return
		}
		if !k.Has(scope) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("API key %s lacks the scope %s that %s %s requires", k.ID, scope, r.Method, r.Pattern))
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), keyCtx{}, k)))
	})
}

// Handle mounts h at pattern (an http.ServeMux pattern, e.g. "POST
// /codec/decode") behind the API key check for scope (authed: 401, 403,
// 429); scope "" mounts it open (a CORS preflight, say). Call it before
// the server takes requests.
func (s *Server) Handle(pattern, scope string, h http.Handler) {
	s.mux.Handle(pattern, s.Authenticated(scope, h))
}

// Authenticated is h behind the API key check for scope, for a handler
// mounted on another mux.
func (s *Server) Authenticated(scope string, h http.Handler) http.Handler {
	return s.authed(scope, h.ServeHTTP)
}
