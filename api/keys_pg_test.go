package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/erasure"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// Keys made as `rapport keys create` makes them and kept in PostgreSQL:
// the table holds no plaintext key (nor its secret part), only the
// digest; two keys work at once; a revoked key is 401 once the ring
// reloads.
func TestPGKeysHashedAndRotated(t *testing.T) {
	t.Parallel()
	clk := &clock{t: testNow}
	st := storetest.New(t)
	h := newHarness(t, func(o *Options) { o.APIKey, o.Now, o.Store, o.Keys = "", clk.now, PGStore{st}, PGStore{st} })
	ctx := context.Background()
	var plain []string
	var ids []string
	for _, name := range []string{"segment 2026-01", "segment 2026-06"} {
		id, key, digest, err := NewKey()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateAPIKey(ctx, store.APIKey{ID: id, Name: name, Hash: digest[:], Scopes: []string{ScopeEventsWrite}}); err != nil {
			t.Fatal(err)
		}
		plain, ids = append(plain, key), append(ids, id)
	}
	var rows string
	if err := st.Pool().QueryRow(ctx, `SELECT string_agg(row_to_json(k)::text || encode(key_hash, 'escape'), ' ') FROM api_keys k`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	for _, key := range plain {
		secret := key[strings.LastIndex(key, "_")+1:]
		if strings.Contains(rows, key) || strings.Contains(rows, secret) {
			t.Errorf("api_keys holds the plaintext key: %s", rows)
		}
	}
	for i, key := range plain {
		body := strings.Replace(trackOK, `"m1"`, `"m`+ids[i]+`"`, 1)
		if rec := h.do("POST", "/v1/track", body, bearer(key)...); rec.Code != 200 {
			t.Fatalf("key %s: %d %s", ids[i], rec.Code, rec.Body)
		}
	}
	if ok, err := st.RevokeAPIKey(ctx, ids[0]); err != nil || !ok {
		t.Fatalf("revoke: %v %v", ok, err)
	}
	clk.advance(DefaultKeyRefresh)
	if rec := h.do("POST", "/v1/track", trackOK, bearer(plain[0])...); rec.Code != http.StatusUnauthorized {
		t.Errorf("revoked key: %d, want 401", rec.Code)
	}
	if rec := h.do("POST", "/v1/track", trackOK, bearer(plain[1])...); rec.Code != 200 {
		t.Errorf("the other key after the revocation: %d", rec.Code)
	}
	if rec := h.do("POST", "/v1/track", trackOK); rec.Code != http.StatusUnauthorized {
		t.Errorf("a server without RAPPORT_API_KEY took the test key: %d", rec.Code)
	}
	all, err := st.APIKeys(ctx, true)
	if err != nil || len(all) != 2 || all[0].RevokedAt == nil || all[1].RevokedAt != nil {
		t.Errorf("listing with revoked: %+v %v", all, err)
	}
}

// endedJourneys records the workflows an erasure ends.
type endedJourneys struct {
	mu  sync.Mutex
	ids []string
}

func (e *endedJourneys) End(_ context.Context, workflowID, _ string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ids = append(e.ids, workflowID)
	return nil
}

// The admin API over PostgreSQL: GET /v1/customers/{id} exports the
// record; POST …/forget ends the running journey, erases, answers what it
// did and records the key in the audit row; afterwards the export is
// 404, and an identify that brings the customer back with the same email
// has that address suppressed (erased).
func TestPGForgetThroughTheAPI(t *testing.T) {
	t.Parallel()
	cfg := storetest.Config()
	cfg.ErasureSecrets = [][]byte{[]byte("api-test-erasure-secret-0123")}
	st := storetest.NewWithConfig(t, cfg)
	ended := &endedJourneys{}
	h := newHarness(t, func(o *Options) {
		o.Store = PGStore{st}
		o.Customers = st
		o.Forgetter = &erasure.Eraser{Store: st, Journeys: ended}
	})
	ctx := context.Background()
	if rec := h.do("POST", "/v1/identify", `{"userId":"ada","traits":{"email":"ada@example.cn","name":"Ada L"}}`); rec.Code != 200 {
		t.Fatal(rec.Code, rec.Body)
	}
	if _, err := st.Pool().Exec(ctx, `INSERT INTO enrollments (id, workflow_id, playbook, version, customer_id, status, started_at)
		VALUES ('run-1', 'rapport/winback/ada', 'winback', 'v1', 'ada', 'active', now())`); err != nil {
		t.Fatal(err)
	}
	rec := h.do("GET", "/v1/customers/ada", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"email":"ada@example.cn"`) || !strings.Contains(rec.Body.String(), `"rapport/winback/ada"`) {
		t.Fatalf("export: %d %s", rec.Code, rec.Body)
	}
	rec = h.do("POST", "/v1/customers/ada/forget", "")
	if rec.Code != 200 {
		t.Fatalf("forget: %d %s", rec.Code, rec.Body)
	}
	var res struct {
		Found     bool             `json:"found"`
		Ended     []string         `json:"journeys_ended"`
		Addresses int              `json:"addresses_suppressed"`
		Deleted   map[string]int64 `json:"deleted"`
		At        time.Time        `json:"erased_at"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Found || len(res.Ended) != 1 || res.Ended[0] != "winback" || res.Addresses != 1 || res.Deleted["customers"] != 1 || res.At.IsZero() {
		t.Errorf("answer %s", rec.Body)
	}
	if len(ended.ids) != 1 || ended.ids[0] != "rapport/winback/ada" {
		t.Errorf("ended %v", ended.ids)
	}
	var by string
	if err := st.Pool().QueryRow(ctx, `SELECT requested_by FROM erasures`).Scan(&by); err != nil || by != "key:"+LegacyKeyID {
		t.Errorf("audit requested_by %q %v", by, err)
	}
	if rec := h.do("GET", "/v1/customers/ada", ""); rec.Code != 404 {
		t.Errorf("export after erasure: %d", rec.Code)
	}
	if rec := h.do("POST", "/v1/identify", `{"userId":"ada","traits":{"email":"Ada@Example.cn"}}`); rec.Code != 200 {
		t.Fatal(rec.Code, rec.Body)
	}
	x, err := st.CustomerExport(ctx, "ada")
	if err != nil || len(x.Suppressions) != 1 || x.Suppressions[0].Reason != "erased" {
		t.Errorf("customer back with an erased address: suppressions %+v %v", x.Suppressions, err)
	}
}
