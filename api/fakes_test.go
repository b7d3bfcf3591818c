package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

// memStore is an in-memory Store that counts writes.
type memStore struct {
	mu         sync.Mutex
	customers  map[string]rules.Customer
	events     map[string]rules.Event // by event ID
	dispatched map[string]bool
	writes     int
	failWith   error // every call fails with this when set
}

func newMemStore() *memStore {
	return &memStore{customers: map[string]rules.Customer{}, events: map[string]rules.Event{}, dispatched: map[string]bool{}}
}

func (m *memStore) Customer(_ context.Context, id string) (rules.Customer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failWith != nil {
		return rules.Customer{}, m.failWith
	}
	c, ok := m.customers[id]
	if !ok {
		return rules.Customer{}, fmt.Errorf("customer %s: %w", id, ErrNotFound)
	}
	return c, nil
}

// UpsertCustomer merges like the PostgreSQL store: non-zero fields
// replace, attrs merge key by key.
func (m *memStore) UpsertCustomer(_ context.Context, c rules.Customer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failWith != nil {
		return m.failWith
	}
	m.writes++
	old := m.customers[c.ID]
	old.ID = c.ID
	for _, f := range []struct{ dst, src *string }{
		{&old.Email, &c.Email}, {&old.Phone, &c.Phone}, {&old.Name, &c.Name}, {&old.Locale, &c.Locale},
		{&old.Timezone, &c.Timezone}, {&old.Tier, &c.Tier}, {&old.Stage, &c.Stage},
	} {
		*f.dst = cmp.Or(*f.src, *f.dst)
	}
	if !c.Birthday.IsZero() {
		old.Birthday = c.Birthday
	}
	if !c.SignupAt.IsZero() {
		old.SignupAt = c.SignupAt
	}
	if len(c.Attrs) > 0 && old.Attrs == nil {
		old.Attrs = map[string]any{}
	}
	maps.Copy(old.Attrs, c.Attrs)
	m.customers[c.ID] = old
	return nil
}

// Ingest writes a call as the PostgreSQL store does, for customers only:
// an anonymous call is accepted and kept nowhere (the anonymous visitors'
// tables are tested over PostgreSQL, spec_pg_test.go).
func (m *memStore) Ingest(ctx context.Context, in store.Ingestion) (store.IngestResult, error) {
	if m.failWith != nil {
		return store.IngestResult{}, m.failWith
	}
	if in.CustomerID == "" {
		return store.IngestResult{}, nil
	}
	res := store.IngestResult{CustomerID: in.CustomerID}
	if in.Profile == nil {
		in.Profile = &store.ProfileChange{}
	}
	if p := in.Profile; p != nil {
		set := p.Set
		set.ID = in.CustomerID
		m.mu.Lock()
		old := m.customers[in.CustomerID]
		m.mu.Unlock()
		set.Locale = cmp.Or(set.Locale, old.Locale, p.Fill.Locale)
		set.Timezone = cmp.Or(set.Timezone, old.Timezone, p.Fill.Timezone)
		if set.SignupAt.IsZero() && old.SignupAt.IsZero() {
			set.SignupAt = p.Fill.SignupAt
		}
		if err := m.UpsertCustomer(ctx, set); err != nil {
			return res, err
		}
		if len(p.Clear) > 0 {
			if err := m.ClearFields(ctx, in.CustomerID, p.Clear); err != nil {
				return res, err
			}
		}
	}
	if in.Event == nil {
		return res, nil
	}
	var err error
	res.Inserted, err = m.InsertEvent(ctx, in.CustomerID, *in.Event)
	if err == nil && !res.Inserted {
		res.Dispatched, _ = m.EventDispatched(ctx, in.Event.ID)
	}
	return res, err
}

func (m *memStore) ClearFields(_ context.Context, id string, fields []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	c := m.customers[id]
	for _, f := range fields {
		switch f {
		case "email":
			c.Email = ""
		case "tier":
			c.Tier = ""
		case "birthday":
			c.Birthday = time.Time{}
		case "signup_at":
			c.SignupAt = time.Time{}
		default:
			name, ok := strings.CutPrefix(f, "attrs.")
			if !ok {
				return fmt.Errorf("memStore cannot clear %q", f)
			}
			delete(c.Attrs, name)
		}
	}
	m.customers[id] = c
	return nil
}

func (m *memStore) InsertEvent(_ context.Context, customerID string, ev rules.Event) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failWith != nil {
		return false, m.failWith
	}
	if _, ok := m.events[ev.ID]; ok {
		return false, nil
	}
	m.writes++
	if _, ok := m.customers[customerID]; !ok {
		m.customers[customerID] = rules.Customer{ID: customerID}
	}
	m.events[ev.ID] = ev
	return true, nil
}

func (m *memStore) EventDispatched(_ context.Context, eventID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dispatched[eventID], nil
}

func (m *memStore) MarkDispatched(_ context.Context, eventID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dispatched[eventID] = true
	return nil
}

func (m *memStore) eventCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.events)
}

// dispatch is one call of the fake dispatcher.
type dispatch struct {
	Customer rules.Customer
	Event    rules.Event
}

// fakeDispatcher records successful dispatches; failures, when set, decide
// the next calls in order (a nil entry succeeds).
type fakeDispatcher struct {
	mu       sync.Mutex
	calls    []dispatch
	failures []error
}

func (d *fakeDispatcher) Dispatch(_ context.Context, c rules.Customer, ev rules.Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.failures) > 0 {
		err := d.failures[0]
		d.failures = d.failures[1:]
		if err != nil {
			return err
		}
	}
	d.calls = append(d.calls, dispatch{c, ev})
	return nil
}

func (d *fakeDispatcher) dispatched() []dispatch {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]dispatch(nil), d.calls...)
}

const testKey = "test-key-0123456789"

// testNow is the pinned clock of every test server.
var testNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// harness is a server over fakes.
type harness struct {
	t     *testing.T
	store *memStore
	disp  *fakeDispatcher
	srv   *Server
}

func newHarness(t *testing.T, edit ...func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, store: newMemStore(), disp: &fakeDispatcher{}}
	opts := Options{
		APIKey: testKey, Store: h.store, Dispatcher: h.disp,
		Now:    func() time.Time { return testNow },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, e := range edit {
		e(&opts)
	}
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	return h
}

// do sends a request with the test key and returns the recorder.
func (h *harness) do(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testKey)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	return rec
}

// errorOf decodes a JSON error answer.
func errorOf(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("answer is not a JSON error: %v: %s", err, rec.Body)
	}
	return e.Error
}

// jsonBody marshals v for a request body.
func jsonBody(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

var _ http.Handler = (*Server)(nil)
