package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/erasure"
	"github.com/rapport-crm/rapport/store"
)

// memKeys is a KeyStore over a list the test edits.
type memKeys struct {
	mu    sync.Mutex
	keys  []store.APIKey
	fail  error
	reads int
}

func (m *memKeys) ActiveAPIKeys(context.Context) ([]store.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.fail != nil {
		return nil, m.fail
	}
	return append([]store.APIKey(nil), m.keys...), nil
}

// add generates a key with scopes and returns its plaintext.
func (m *memKeys) add(t *testing.T, name string, rate float64, burst int, scopes ...string) (id, key string) {
	t.Helper()
	id, key, digest, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = append(m.keys, store.APIKey{ID: id, Name: name, Hash: digest[:], Scopes: scopes, Rate: rate, Burst: burst})
	return id, key
}

func (m *memKeys) revoke(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, k := range m.keys {
		if k.ID == id {
			m.keys = append(m.keys[:i], m.keys[i+1:]...)
			return
		}
	}
}

// clock is a test clock that only moves when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// forgetRecorder is a Forgetter that records who asked to erase whom.
type forgetRecorder struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (f *forgetRecorder) Forget(_ context.Context, id, by string) (erasure.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, id+" by "+by)
	return erasure.Result{ForgetResult: store.ForgetResult{Found: true, CustomerHash: "h"}, JourneysEnded: []string{}}, f.err
}

type exportStub struct{}

func (exportStub) CustomerExport(_ context.Context, id string) (store.CustomerExport, error) {
	if id != "c1" {
		return store.CustomerExport{}, store.ErrNotFound
	}
	var x store.CustomerExport
	x.Profile.ID = id
	return x, nil
}

// keyHarness is a server with stored keys, a movable clock, a forgetter
// and an exporter.
func keyHarness(t *testing.T, edit ...func(*Options)) (*harness, *memKeys, *clock, *forgetRecorder) {
	keys, clk, fg := &memKeys{}, &clock{t: testNow}, &forgetRecorder{}
	h := newHarness(t, append([]func(*Options){func(o *Options) {
		o.Keys, o.Now, o.Forgetter, o.Customers = keys, clk.now, fg, exportStub{}
	}}, edit...)...)
	return h, keys, clk, fg
}

func bearer(key string) []string { return []string{"Authorization", "Bearer " + key} }

// Each route asks for its scope: a key without it gets 403 with a JSON
// error naming the scope, and nothing is written; the legacy key holds
// every scope.
func TestScopes(t *testing.T) {
	h, keys, _, fg := keyHarness(t)
	_, events := keys.add(t, "segment", 0, 0, ScopeEventsWrite)
	_, reader := keys.add(t, "support", 0, 0, ScopeCustomersRead)
	_, admin := keys.add(t, "dpo", 0, 0, ScopeAdmin)
	_, enroller := keys.add(t, "backend", 0, 0, ScopeEnrollmentsWrite)
	calls := []struct {
		method, path, body, scope string
	}{
		{"POST", "/v1/track", trackOK, ScopeEventsWrite},
		{"POST", "/v1/identify", `{"userId":"c1","traits":{"name":"A"}}`, ScopeEventsWrite},
		{"POST", "/v1/batch", `{"batch":[]}`, ScopeEventsWrite},
		{"POST", "/v1/enroll", `{"playbook":"p","userId":"c1"}`, ScopeEnrollmentsWrite},
		{"GET", "/v1/customers/c1", "", ScopeCustomersRead},
		{"POST", "/v1/customers/c1/forget", "", ScopeAdmin},
	}
	for _, c := range calls {
		for _, k := range []struct{ name, key, scope string }{
			{"events", events, ScopeEventsWrite}, {"reader", reader, ScopeCustomersRead},
			{"admin", admin, ScopeAdmin}, {"enroller", enroller, ScopeEnrollmentsWrite}, {"legacy", testKey, c.scope},
		} {
			body := strings.Replace(c.body, `"messageId":"m1"`, `"messageId":"m-`+k.name+`"`, 1)
			rec := h.do(c.method, c.path, body, bearer(k.key)...)
			if k.scope != c.scope {
				if rec.Code != http.StatusForbidden {
					t.Errorf("%s %s with the %s key: %d, want 403", c.method, c.path, k.name, rec.Code)
				} else if msg := errorOf(t, rec); !strings.Contains(msg, "scope "+c.scope) {
					t.Errorf("403 %q does not name the scope %s", msg, c.scope)
				}
				continue
			}
			if rec.Code == http.StatusForbidden || rec.Code == http.StatusUnauthorized {
				t.Errorf("%s %s with the %s key: %d %s", c.method, c.path, k.name, rec.Code, rec.Body)
			}
		}
	}
	if h.store.eventCount() != 2 {
		t.Errorf("%d events stored, want the two tracks of the events and legacy keys", h.store.eventCount())
	}
	if len(fg.calls) != 2 || !strings.HasSuffix(fg.calls[0], " by key:"+keys.keys[2].ID) || fg.calls[1] != "c1 by key:"+LegacyKeyID {
		t.Errorf("erasures %q, want one by the admin key and one by the legacy key", fg.calls)
	}
}

// No key, an unknown key, a key that only looks like one: 401, with
// WWW-Authenticate, and nothing written.
func TestUnknownKeysAre401(t *testing.T) {
	h, keys, _, _ := keyHarness(t)
	_, good := keys.add(t, "segment", 0, 0, ScopeEventsWrite)
	for _, header := range []string{"", "Bearer " + good[:len(good)-1], "Bearer rk_k000000000000_xxx", "Bearer " + good + "x"} {
		rec := h.do("POST", "/v1/track", trackOK, "Authorization", header)
		if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%q: %d, want 401 with WWW-Authenticate", header, rec.Code)
		}
	}
	if h.store.eventCount() != 0 {
		t.Error("an unauthenticated call wrote an event")
	}
}

// Two keys work at once (rotation: the new one is deployed, then the old
// one revoked); a new key works at its first call, a revoked one stops
// within the refresh interval; the ring reads the store once per refresh,
// not per call.
func TestKeyRotation(t *testing.T) {
	h, keys, clk, _ := keyHarness(t)
	oldID, oldKey := keys.add(t, "segment 2026-01", 0, 0, ScopeEventsWrite)
	if rec := h.do("POST", "/v1/track", trackOK, bearer(oldKey)...); rec.Code != 200 {
		t.Fatalf("old key: %d", rec.Code)
	}
	_, newKey := keys.add(t, "segment 2026-06", 0, 0, ScopeEventsWrite)
	clk.advance(keyMissReload)
	for _, k := range []string{newKey, oldKey, newKey} {
		if rec := h.do("POST", "/v1/track", trackOK, bearer(k)...); rec.Code != 200 {
			t.Fatalf("during rotation: %d %s", rec.Code, rec.Body)
		}
	}
	reads := keys.reads
	keys.revoke(oldID)
	clk.advance(DefaultKeyRefresh)
	if rec := h.do("POST", "/v1/track", trackOK, bearer(oldKey)...); rec.Code != http.StatusUnauthorized {
		t.Errorf("revoked key: %d, want 401", rec.Code)
	}
	for range 5 {
		if rec := h.do("POST", "/v1/track", trackOK, bearer(newKey)...); rec.Code != 200 {
			t.Errorf("new key after the revocation: %d", rec.Code)
		}
	}
	if n := keys.reads - reads; n != 1 {
		t.Errorf("%d reads of the keys for 6 calls in one refresh interval, want 1", n)
	}
}

// Keys that cannot be read: a key never seen is 503 with Retry-After (a
// retry may succeed), a key loaded before keeps working.
func TestKeyStoreDown(t *testing.T) {
	h, keys, clk, _ := keyHarness(t)
	_, known := keys.add(t, "a", 0, 0, ScopeEventsWrite)
	if rec := h.do("POST", "/v1/track", trackOK, bearer(known)...); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	_, fresh := keys.add(t, "b", 0, 0, ScopeEventsWrite)
	keys.fail = errors.New("connection refused")
	clk.advance(DefaultKeyRefresh)
	if rec := h.do("POST", "/v1/track", trackOK, bearer(known)...); rec.Code != 200 {
		t.Errorf("known key while the keys cannot be read: %d", rec.Code)
	}
	rec := h.do("POST", "/v1/track", trackOK, bearer(fresh)...)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("unseen key while the keys cannot be read: %d, want 503 with Retry-After", rec.Code)
	}
}

// A key over its rate gets 429 with Retry-After in whole seconds and a
// JSON error naming the key; the bucket refills with time; each key has
// its own bucket; the server default applies to keys without their own
// (the legacy key included); signature-authenticated endpoints are never
// limited by a key's rate.
func TestRateLimit(t *testing.T) {
	h, keys, clk, _ := keyHarness(t, func(o *Options) { o.Rate, o.Burst = 0.5, 1 })
	slowID, slow := keys.add(t, "slow", 1, 2, ScopeEventsWrite)
	_, other := keys.add(t, "other", 1, 2, ScopeEventsWrite)
	for i := range 2 {
		if rec := h.do("POST", "/v1/track", trackOK, bearer(slow)...); rec.Code != 200 {
			t.Fatalf("call %d within the burst: %d", i, rec.Code)
		}
	}
	rec := h.do("POST", "/v1/track", trackOK, bearer(slow)...)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("third call: %d Retry-After %q, want 429 and 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	if msg := errorOf(t, rec); !strings.Contains(msg, slowID) || !strings.Contains(msg, "rate limit") {
		t.Errorf("429 error %q", msg)
	}
	if rec := h.do("POST", "/v1/track", trackOK, bearer(other)...); rec.Code != 200 {
		t.Errorf("another key shares the bucket: %d", rec.Code)
	}
	clk.advance(time.Second)
	if rec := h.do("POST", "/v1/track", trackOK, bearer(slow)...); rec.Code != 200 {
		t.Errorf("after a second: %d, want a token back", rec.Code)
	}
	// The legacy key takes the default: 0.5/s, burst 1.
	h.do("POST", "/v1/track", trackOK)
	rec = h.do("POST", "/v1/track", trackOK)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "2" {
		t.Errorf("legacy key over the default: %d Retry-After %q, want 429 and 2", rec.Code, rec.Header().Get("Retry-After"))
	}
	for _, path := range []string{"/u/not-a-token", "/healthz"} {
		if rec := h.do("GET", path, "", bearer(slow)...); rec.Code == http.StatusTooManyRequests {
			t.Errorf("GET %s limited by the key's rate", path)
		}
	}
}

// Handle mounts a route that asks for a scope (the codec endpoints ask
// for admin): the handler sees the key, others get 403.
func TestHandleWithScope(t *testing.T) {
	h, keys, _, _ := keyHarness(t)
	adminID, admin := keys.add(t, "ops", 0, 0, ScopeAdmin)
	_, events := keys.add(t, "segment", 0, 0, ScopeEventsWrite)
	h.srv.Handle("POST /codec/decode", ScopeAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := KeyFrom(r.Context())
		writeJSON(w, 200, map[string]string{"by": k.ID})
	}))
	h.srv.Handle("OPTIONS /codec/decode", "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	if rec := h.do("POST", "/codec/decode", "{}", bearer(admin)...); rec.Code != 200 || !strings.Contains(rec.Body.String(), adminID) {
		t.Errorf("admin: %d %s", rec.Code, rec.Body)
	}
	if rec := h.do("POST", "/codec/decode", "{}", bearer(events)...); rec.Code != 403 {
		t.Errorf("events key: %d, want 403", rec.Code)
	}
	if rec := h.do("OPTIONS", "/codec/decode", "", "Authorization", ""); rec.Code != 204 {
		t.Errorf("open preflight: %d", rec.Code)
	}
}

// The erasure and export endpoints: 404 for an unknown customer, 503
// (naming the variable) when the server has no erasure secret.
func TestCustomerEndpoints(t *testing.T) {
	h, _, _, fg := keyHarness(t)
	if rec := h.do("GET", "/v1/customers/c1", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"id":"c1"`) {
		t.Errorf("export: %d %s", rec.Code, rec.Body)
	}
	if rec := h.do("GET", "/v1/customers/nobody", ""); rec.Code != 404 {
		t.Errorf("export of an unknown customer: %d", rec.Code)
	}
	fg.err = store.ErrNoErasureSecret
	rec := h.do("POST", "/v1/customers/c1/forget", "")
	if rec.Code != 503 || !strings.Contains(errorOf(t, rec), "RAPPORT_ERASURE_SECRET") {
		t.Errorf("forget without a secret: %d %s", rec.Code, rec.Body)
	}
	plain := newHarness(t)
	if rec := plain.do("POST", "/v1/customers/c1/forget", ""); rec.Code != 404 {
		t.Errorf("forget on a server without a Forgetter: %d", rec.Code)
	}
}

// A server needs a legacy key or stored keys, and a non-negative rate.
func TestNewServerKeysOrLegacy(t *testing.T) {
	if _, err := NewServer(Options{Keys: &memKeys{}, Store: newMemStore(), Dispatcher: &fakeDispatcher{}}); err != nil {
		t.Errorf("stored keys only: %v", err)
	}
	if _, err := NewServer(Options{APIKey: "k", Rate: -1, Store: newMemStore(), Dispatcher: &fakeDispatcher{}}); err == nil {
		t.Error("negative rate accepted")
	}
}

// CheckScopes names what is wrong.
func TestCheckScopes(t *testing.T) {
	if err := CheckScopes([]string{ScopeEventsWrite, ScopeAdmin}); err != nil {
		t.Error(err)
	}
	if err := CheckScopes(nil); err == nil {
		t.Error("no scope accepted")
	}
	if err := CheckScopes([]string{"events:read"}); err == nil || !strings.Contains(err.Error(), `"events:read"`) {
		t.Errorf("unknown scope: %v", err)
	}
}

// Many calls at once when the keys go stale reload them once, not once
// per call.
func TestKeyRingReloadsOnceUnderLoad(t *testing.T) {
	h, keys, clk, _ := keyHarness(t)
	_, key := keys.add(t, "segment", 0, 0, ScopeEventsWrite)
	if rec := h.do("POST", "/v1/track", trackOK, bearer(key)...); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	clk.advance(DefaultKeyRefresh)
	before := keys.reads
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok, err := h.srv.keys.lookup(context.Background(), KeyDigest(key)); !ok || err != nil {
				t.Errorf("lookup: %v %v", ok, err)
			}
		}()
	}
	wg.Wait()
	if n := keys.reads - before; n != 1 {
		t.Errorf("%d reloads for 20 concurrent calls, want 1", n)
	}
}
