package api

import (
	"net/http"
	"testing"

	"github.com/rapport-crm/rapport/engine"
)

// declaredHarness is a server checking calls against a declaration.
func declaredHarness(t *testing.T) *harness {
	t.Helper()
	ws, err := engine.ParseWorkspace("rapport.yaml", []byte("attrs:\n  balance: number\n  vip: boolean\nevents:\n  purchase: { props: { quantity: number, sku: text } }\n"))
	if err != nil {
		t.Fatal(err)
	}
	live := &LiveWorkspace{}
	live.Set(ws)
	return newHarness(t, func(o *Options) { o.Workspace = live })
}

// TestDeclaredValuesAre400NamingTheField checks that a declared trait or
// property of the wrong type is refused, naming the field, and that
// nothing of the request is stored.
func TestDeclaredValuesAre400NamingTheField(t *testing.T) {
	tests := []struct{ name, path, body, want string }{
		{"trait", "/v1/identify", `{"userId":"c1","traits":{"balance":"abc"}}`, `traits.balance: expected a number, got "abc"`},
		{"boolean trait", "/v1/identify", `{"userId":"c1","traits":{"vip":"yes"}}`, `traits.vip: expected true or false, got "yes"`},
		{"property", "/v1/track", `{"userId":"c1","event":"purchase","messageId":"m1","properties":{"sku":7}}`, `properties.sku: expected text, got a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := declaredHarness(t)
			rec := h.do("POST", tt.path, tt.body)
			if rec.Code != http.StatusBadRequest || errorOf(t, rec) != tt.want {
				t.Fatalf("got %d %s, want 400 %q", rec.Code, rec.Body, tt.want)
			}
			if h.store.writes != 0 || len(h.disp.dispatched()) != 0 {
				t.Errorf("a refused call wrote %d rows or dispatched", h.store.writes)
			}
		})
	}
}

// TestDeclaredNumbersSentAsTextAreStoredAsNumbers checks the conversion,
// and that undeclared traits and events are stored as sent.
func TestDeclaredNumbersSentAsTextAreStoredAsNumbers(t *testing.T) {
	h := declaredHarness(t)
	if rec := h.do("POST", "/v1/identify", `{"userId":"c1","traits":{"balance":" 120.5","company":"Acme"}}`); rec.Code != http.StatusOK {
		t.Fatalf("identify: %d %s", rec.Code, rec.Body)
	}
	c := h.store.customers["c1"]
	if c.Attrs["balance"] != 120.5 || c.Attrs["company"] != "Acme" {
		t.Errorf("attrs %#v, want balance 120.5 (a number) and company as sent", c.Attrs)
	}
	if rec := h.do("POST", "/v1/track", `{"userId":"c1","event":"purchase","messageId":"m1","properties":{"quantity":"3","colour":"red"}}`); rec.Code != http.StatusOK {
		t.Fatalf("track: %d %s", rec.Code, rec.Body)
	}
	ev := h.store.events["m1"]
	if ev.Props["quantity"] != 3.0 || ev.Props["colour"] != "red" {
		t.Errorf("props %#v, want quantity 3 (a number) and colour as sent", ev.Props)
	}
	if rec := h.do("POST", "/v1/track", `{"userId":"c1","event":"page_viewed","messageId":"m2","properties":{"quantity":"lots"}}`); rec.Code != http.StatusOK {
		t.Errorf("an undeclared event is stored as sent: %d %s", rec.Code, rec.Body)
	}
}
