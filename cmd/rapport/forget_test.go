package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/rapport-crm/rapport/api"
	"github.com/rapport-crm/rapport/erasure"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// Without --yes the customer id must be typed; anything else, or no
// input at all (a script), erases nothing.
func TestConfirmForget(t *testing.T) {
	for _, tc := range []struct {
		in  string
		yes bool
		ok  bool
	}{
		{"ada\n", false, true},
		{"  ada  \n", false, true},
		{"ada", false, true},
		{"y\n", false, false},
		{"", false, false},
		{"Ada\n", false, false},
		{"", true, true},
	} {
		var prompt bytes.Buffer
		err := confirmForget(strings.NewReader(tc.in), &prompt, "ada", tc.yes)
		if (err == nil) != tc.ok {
			t.Errorf("input %q yes %v: %v", tc.in, tc.yes, err)
		}
		if !tc.yes && !strings.Contains(prompt.String(), "Type the customer id") {
			t.Errorf("no prompt: %q", prompt.String())
		}
		if err != nil && !errors.Is(err, errNotConfirmed) {
			t.Errorf("error %v", err)
		}
	}
}

type noJourneys struct{}

func (noJourneys) End(context.Context, string, string) error { return nil }

// rapport forget over PostgreSQL: the customer is gone, the audit row
// names the --by, the JSON answer says what was deleted; a second run
// says nothing was held.
func TestForgetCommand(t *testing.T) {
	cfg := storetest.Config()
	cfg.ErasureSecrets = [][]byte{[]byte("cli-test-erasure-secret-01234")}
	st := storetest.NewWithConfig(t, cfg)
	ctx := context.Background()
	if _, err := st.Ingest(ctx, store.Ingestion{CustomerID: "ada", Profile: &store.ProfileChange{Set: storeCustomer("ada", "ada@example.cn")}}); err != nil {
		t.Fatal(err)
	}
	e := &erasure.Eraser{Store: st, Journeys: noJourneys{}}
	var out bytes.Buffer
	if err := forget(ctx, &out, e, "ada", forgetOptions{JSON: true, By: "cli:dpo"}); err != nil {
		t.Fatal(err)
	}
	var res erasure.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if !res.Found || res.Deleted["customers"] != 1 || res.Addresses != 1 || res.DataKeyDeleted {
		t.Errorf("result %s", out.String())
	}
	var by string
	if err := st.Pool().QueryRow(ctx, `SELECT requested_by FROM erasures`).Scan(&by); err != nil || by != "cli:dpo" {
		t.Errorf("audit by %q %v", by, err)
	}
	out.Reset()
	if err := forget(ctx, &out, e, "ada", forgetOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "nothing held about customer ada") {
		t.Errorf("second run: %s", out.String())
	}
}

// rapport keys: create prints the key once and stores only its digest;
// list shows ids, names and scopes but no key; revoke takes it out of
// the active list; a bad scope or a missing name is refused naming the
// flag.
func TestKeysCommands(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	var out bytes.Buffer
	if err := keysCreate(ctx, &out, st, keysCreateOptions{Name: "segment", Scopes: []string{api.ScopeEventsWrite}, Rate: 5, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var created struct {
		ID     string   `json:"id"`
		Key    string   `json:"key"`
		Scopes []string `json:"scopes"`
		Rate   float64  `json:"rate"`
	}
	if err := json.Unmarshal(out.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Key, "rk_"+created.ID+"_") || created.Rate != 5 || len(created.Scopes) != 1 {
		t.Fatalf("created %s", out.String())
	}
	keys, err := st.ActiveAPIKeys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatal(keys, err)
	}
	if d := api.KeyDigest(created.Key); !bytes.Equal(keys[0].Hash, d[:]) {
		t.Error("stored digest is not the key's SHA-256")
	}
	out.Reset()
	if err := keysList(ctx, &out, st, false, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), created.ID) || !strings.Contains(out.String(), "events:write") || strings.Contains(out.String(), created.Key[len(created.Key)-20:]) {
		t.Errorf("list: %s", out.String())
	}
	out.Reset()
	if err := keysRevoke(ctx, &out, st, created.ID); err != nil {
		t.Fatal(err)
	}
	if err := keysRevoke(ctx, &out, st, created.ID); err == nil {
		t.Error("revoking twice succeeded")
	}
	if keys, _ := st.ActiveAPIKeys(ctx); len(keys) != 0 {
		t.Errorf("revoked key still active: %+v", keys)
	}
	for _, o := range []keysCreateOptions{{Name: "x", Scopes: []string{"write"}}, {Name: "x"}, {Scopes: []string{api.ScopeAdmin}}} {
		err := keysCreate(ctx, &out, st, o)
		if err == nil || !(strings.Contains(err.Error(), "--scope") || strings.Contains(err.Error(), "--name")) {
			t.Errorf("%+v: %v, want an error naming the flag", o, err)
		}
	}
}

func storeCustomer(id, email string) rules.Customer { return rules.Customer{ID: id, Email: email} }
