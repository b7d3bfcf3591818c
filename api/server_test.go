package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
)

const trackOK = `{"userId":"c1","event":"purchase","messageId":"m1","properties":{"revenue":120.5,"currency":"cny","orderId":42,"category":"tea","sku":"T-1"},"timestamp":"2026-03-10T11:00:00Z"}`

func TestAuth(t *testing.T) {
	basic := func(user string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"))
	}
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"bearer", "Bearer " + testKey, 200},
		{"bearer lower-case scheme", "bearer " + testKey, 200},
		{"segment basic auth with key as user", basic(testKey), 200},
		{"missing", "", 401},
		{"wrong key", "Bearer wrong", 401},
		{"key prefix", "Bearer " + testKey[:5], 401},
		{"key with suffix", "Bearer " + testKey + "x", 401},
		{"basic with wrong user", basic("nobody"), 401},
		{"basic not base64", "Basic !!!", 401},
		{"unknown scheme", "Token " + testKey, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			rec := h.do("POST", "/v1/track", trackOK, "Authorization", tt.header)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if tt.want == 401 {
				if msg := errorOf(t, rec); !strings.Contains(msg, "API key") {
					t.Errorf("error %q does not mention the API key", msg)
				}
				if rec.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if h.store.eventCount() != 0 {
					t.Error("unauthenticated call wrote an event")
				}
			}
		})
	}
}

func TestNewServerRequiresKeyAndDeps(t *testing.T) {
	if _, err := NewServer(Options{Store: newMemStore(), Dispatcher: &fakeDispatcher{}}); err == nil {
		t.Error("server without API key accepted")
	}
	if _, err := NewServer(Options{APIKey: "k"}); err == nil {
		t.Error("server without store accepted")
	}
}

func TestTrackStoresTypedEventAndDispatches(t *testing.T) {
	h := newHarness(t)
	rec := h.do("POST", "/v1/track", trackOK)
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"success":true}` {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	ev, ok := h.store.events["m1"]
	if !ok {
		t.Fatal("event not stored under its messageId")
	}
	if ev.Name != "purchase" || ev.Amount != 120.5 || ev.Currency != "CNY" || ev.OrderID != "42" || ev.Category != "tea" {
		t.Errorf("typed fields wrong: %+v", ev)
	}
	if ev.Props["sku"] != "T-1" || ev.Props["revenue"] != 120.5 {
		t.Errorf("props not kept: %v", ev.Props)
	}
	if want := time.Date(2026, 3, 10, 11, 0, 0, 0, time.UTC); !ev.Time.Equal(want) {
		t.Errorf("time %v, want %v", ev.Time, want)
	}
	if _, ok := h.store.customers["c1"]; !ok {
		t.Error("track for an unknown customer did not create the record")
	}
	d := h.disp.dispatched()
	if len(d) != 1 || d[0].Event.ID != "m1" || d[0].Customer.ID != "c1" {
		t.Fatalf("dispatches %+v, want one of m1 for c1", d)
	}
	if !h.store.dispatched["m1"] {
		t.Error("event not marked dispatched")
	}
}

func TestTrackAmountAliasesAndTimestampDefault(t *testing.T) {
	tests := []struct {
		props string
		want  float64
	}{
		{`{"amount": 10, "revenue": 20}`, 10},
		{`{"revenue": 20, "total": 30}`, 20},
		{`{"total": 30, "value": 40}`, 30},
		{`{"value": 40}`, 40},
		{`{"amount": "12.50"}`, 12.5},
		{`{"amount": null, "total": 7}`, 7},
		{`{}`, 0},
	}
	for i, tt := range tests {
		h := newHarness(t)
		body := fmt.Sprintf(`{"userId":"c1","event":"purchase","messageId":"m%d","properties":%s}`, i, tt.props)
		if rec := h.do("POST", "/v1/track", body); rec.Code != 200 {
			t.Fatalf("%s: status %d: %s", tt.props, rec.Code, rec.Body)
		}
		ev := h.store.events[fmt.Sprintf("m%d", i)]
		if ev.Amount != tt.want {
			t.Errorf("%s: amount %v, want %v", tt.props, ev.Amount, tt.want)
		}
		if !ev.Time.Equal(testNow) {
			t.Errorf("%s: time %v, want the receive time %v", tt.props, ev.Time, testNow)
		}
	}
}

func TestBadCallsAre400NamingTheField(t *testing.T) {
	long := strings.Repeat("a", 200)
	tests := []struct {
		name, path, body, field string
	}{
		{"not JSON", "/v1/track", `{"userId":`, "body: invalid JSON"},
		{"a list", "/v1/track", `[1]`, "body: expected a JSON object, got a list"},
		{"null", "/v1/track", `null`, "body: expected a JSON object, got null"},
		{"userId missing", "/v1/track", `{"event":"x","messageId":"m"}`, "userId: required"},
		{"userId path", "/v1/track", `{"userId":"../x","event":"x","messageId":"m"}`, "userId: customer id may only contain"},
		{"userId dots", "/v1/track", `{"userId":"..","event":"x","messageId":"m"}`, "userId: customer id cannot be only dots"},
		{"userId empty", "/v1/track", `{"userId":"","event":"x","messageId":"m"}`, "userId: required"},
		{"userId 200 chars", "/v1/track", `{"userId":"` + long + `","event":"x","messageId":"m"}`, "userId: customer id is 200 characters"},
		{"userId control char", "/v1/track", `{"userId":"a\u0007b","event":"x","messageId":"m"}`, "userId: customer id may only contain"},
		{"userId unicode", "/v1/identify", `{"userId":"客户1"}`, "userId: customer id may only contain"},
		{"messageId with space", "/v1/track", `{"userId":"c1","event":"x","messageId":"a b"}`, "messageId: may only contain"},
		{"event missing", "/v1/track", `{"userId":"c1","messageId":"m"}`, "event: required"},
		{"event a list", "/v1/track", `{"userId":"c1","event":["x"],"messageId":"m"}`, "event: must be a string, got a list"},
		{"event control char", "/v1/track", `{"userId":"c1","event":"a\nb","messageId":"m"}`, "event: contains the control character"},
		{"unknown field", "/v1/track", `{"userId":"c1","event":"x","messageId":"m","userID":"c1"}`, "userID: unknown field"},
		{"traits on track", "/v1/track", `{"userId":"c1","event":"x","messageId":"m","traits":{}}`, "traits: unknown field for a track call"},
		{"type mismatch", "/v1/track", `{"type":"identify","userId":"c1"}`, "type: \"identify\" sent to the track endpoint"},
		{"timestamp not RFC 3339", "/v1/track", `{"userId":"c1","event":"x","messageId":"m","timestamp":"10/03/2026"}`, "timestamp: must be an ISO 8601 time"},
		{"neither userId nor anonymousId", "/v1/track", `{"event":"x","messageId":"m"}`, "userId: required, or anonymousId"},
		{"userId an object", "/v1/track", `{"userId":{},"event":"x"}`, "userId: must be a string or a number"},
		{"NUL in a property", "/v1/track", `{"userId":"c1","event":"x","properties":{"note":"a\u0000b"}}`, "properties.note: contains a NUL character"},
		{"revenue out of range", "/v1/track", `{"userId":"c1","event":"Order Completed","properties":{"revenue":1e12}}`, "properties.revenue: 1e+12 is out of range"},
		{"invalid UTF-8 in an event name", "/v1/track", "{\"userId\":\"c1\",\"event\":\"caf\xe9\"}", "body: invalid UTF-8 at byte 27"},
		{"group without userId", "/v1/group", `{"anonymousId":"a1","groupId":"g1"}`, "userId: required for a group call"},
		{"alias without previousId", "/v1/alias", `{"userId":"c1"}`, "previousId: required"},
		{"timestamp a number", "/v1/track", `{"userId":"c1","event":"x","messageId":"m","timestamp":1700000000}`, "timestamp: must be a string"},
		{"timestamp far future", "/v1/track", `{"userId":"c1","event":"x","messageId":"m","timestamp":"2026-03-12T12:00:00Z"}`, "timestamp: 2026-03-12T12:00:00Z is more than 24h0m0s in the future"},
		{"timestamp far past", "/v1/track", `{"userId":"c1","event":"x","messageId":"m","timestamp":"2019-01-01T00:00:00Z"}`, "timestamp: 2019-01-01T00:00:00Z is more than"},
		{"properties a string", "/v1/track", `{"userId":"c1","event":"x","messageId":"m","properties":"x"}`, "properties: must be an object, got a string"},
		{"amount not a number", "/v1/track", `{"userId":"c1","event":"x","messageId":"m","properties":{"amount":"x"}}`, "properties.amount: must be a number, got \"x\""},
		{"revenue a bool", "/v1/track", `{"userId":"c1","event":"x","messageId":"m","properties":{"revenue":true}}`, "properties.revenue: must be a number, got a boolean"},
		{"currency a number", "/v1/track", `{"userId":"c1","event":"x","messageId":"m","properties":{"currency":1}}`, "properties.currency: must be a string"},
		{"order id fractional", "/v1/track", `{"userId":"c1","event":"x","messageId":"m","properties":{"order_id":1.5}}`, "properties.order_id: must be a string or a whole number"},
		{"context locale a number", "/v1/track", `{"userId":"c1","event":"x","messageId":"m","context":{"locale":1}}`, "context.locale: must be a string"},
		{"traits a list", "/v1/identify", `{"userId":"c1","traits":[]}`, "traits: must be an object, got a list"},
		{"email invalid", "/v1/identify", `{"userId":"c1","traits":{"email":"not-an-email"}}`, "traits.email: \"not-an-email\" is not an e-mail address"},
		{"email with name", "/v1/identify", `{"userId":"c1","traits":{"email":"Ann <a@x.io>"}}`, "traits.email:"},
		{"phone a number", "/v1/identify", `{"userId":"c1","traits":{"phone":8613800000000}}`, "traits.phone: must be a string, got a number"},
		{"bad time zone", "/v1/identify", `{"userId":"c1","traits":{"timezone":"Mars/Olympus"}}`, "traits.timezone: \"Mars/Olympus\" is not an IANA time zone"},
		{"Local time zone", "/v1/identify", `{"userId":"c1","traits":{"timezone":"Local"}}`, "traits.timezone:"},
		{"bad locale", "/v1/identify", `{"userId":"c1","traits":{"locale":"english"}}`, "traits.locale: \"english\" is not a locale"},
		{"bad birthday", "/v1/identify", `{"userId":"c1","traits":{"birthday":"12 April"}}`, "traits.birthday: must be a date like 1990-04-12"},
		{"bad stage", "/v1/identify", `{"userId":"c1","traits":{"stage":"vip"}}`, "traits.stage: \"vip\" is not a customer stage"},
		{"event on identify", "/v1/identify", `{"userId":"c1","event":"x"}`, "event: unknown field for a identify call"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			rec := h.do("POST", tt.path, tt.body)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", rec.Code, rec.Body)
			}
			if msg := errorOf(t, rec); !strings.HasPrefix(msg, tt.field) {
				t.Errorf("error %q, want it to start with %q", msg, tt.field)
			}
			if h.store.writes != 0 || len(h.disp.dispatched()) != 0 {
				t.Error("a rejected call wrote or dispatched something")
			}
		})
	}
}

func TestAcceptsSegmentLibraryFields(t *testing.T) {
	h := newHarness(t)
	body := `{"type":"track","userId":"shop:42","anonymousId":"a-1","event":"Order Completed","messageId":"ajs-next-1",
		"properties":{"total":9.9},"context":{"library":{"name":"analytics.js"},"locale":"zh-CN","ip":"1.2.3.4"},
		"integrations":{"All":true},"sentAt":"2026-03-10T11:59:59Z","originalTimestamp":"2026-03-10T11:59:58Z",
		"channel":"client","version":2,"_metadata":{"bundled":[]},"writeKey":"ignored"}`
	rec := h.do("POST", "/v1/track", body)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if ev := h.store.events["ajs-next-1"]; ev.Name != "order_completed" || ev.Amount != 9.9 {
		t.Errorf("event %+v: the spec name must be stored as the playbook word order_completed", ev)
	}
}

func TestTooLarge(t *testing.T) {
	h := newHarness(t)
	big := strings.Repeat("x", MaxCallBytes)
	body := `{"userId":"c1","event":"x","messageId":"m","properties":{"p":"` + big + `"}}`
	rec := h.do("POST", "/v1/track", body)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413: %s", rec.Code, rec.Body)
	}
	if msg := errorOf(t, rec); !strings.Contains(msg, "32 KiB") {
		t.Errorf("error %q does not name the limit", msg)
	}
	// A batch may be bigger than one call, but not than 500 KiB …
	items := make([]string, 0, 20)
	for i := range 20 {
		items = append(items, fmt.Sprintf(`{"type":"track","userId":"c1","event":"x","messageId":"m%d","properties":{"p":"%s"}}`, i, strings.Repeat("y", 30<<10)))
	}
	rec = h.do("POST", "/v1/batch", `{"batch":[`+strings.Join(items, ",")+`]}`)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("600 KiB batch: status %d, want 413", rec.Code)
	}
	// … and each of its calls is held to the per-call limit.
	rec = h.do("POST", "/v1/batch", `{"batch":[{"type":"track","userId":"c1","event":"x","messageId":"m","properties":{"p":"`+big+`"}}]}`)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"error":"batch[0]: call is`) {
		t.Fatalf("oversized batch item: status %d: %s", rec.Code, rec.Body)
	}
	if h.store.writes != 0 {
		t.Error("an oversized call wrote something")
	}
}

func TestWrongContentType(t *testing.T) {
	h := newHarness(t)
	rec := h.do("POST", "/v1/track", trackOK, "Content-Type", "text/plain")
	if rec.Code != http.StatusUnsupportedMediaType {
		t.Fatalf("status %d, want 415", rec.Code)
	}
	if rec = h.do("POST", "/v1/track", trackOK, "Content-Type", "application/json; charset=utf-8"); rec.Code != 200 {
		t.Fatalf("json with charset: status %d", rec.Code)
	}
}

func TestReplayedMessageIDAppliedOnce(t *testing.T) {
	h := newHarness(t)
	for i := range 3 {
		if rec := h.do("POST", "/v1/track", trackOK); rec.Code != 200 {
			t.Fatalf("call %d: status %d: %s", i, rec.Code, rec.Body)
		}
	}
	if n := h.store.eventCount(); n != 1 {
		t.Errorf("%d events stored, want 1", n)
	}
	if d := h.disp.dispatched(); len(d) != 1 {
		t.Errorf("%d dispatches, want 1", len(d))
	}
}

func TestDispatchUnavailableIs503AndRetryDispatchesOnce(t *testing.T) {
	failures := []error{
		serviceerror.NewUnavailable("connection refused"),
		fmt.Errorf("enroll: %w", ErrUnavailable),
		&serviceerror.DeadlineExceeded{Message: "timeout"},
	}
	for _, failure := range failures {
		t.Run(failure.Error(), func(t *testing.T) {
			h := newHarness(t)
			h.disp.failures = []error{failure}
			rec := h.do("POST", "/v1/track", trackOK)
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503: %s", rec.Code, rec.Body)
			}
			if rec.Header().Get("Retry-After") != "5" {
				t.Errorf("Retry-After %q, want 5", rec.Header().Get("Retry-After"))
			}
			if h.store.eventCount() != 1 {
				t.Fatal("the event was not stored before the failed dispatch")
			}
			if h.store.dispatched["m1"] {
				t.Fatal("a failed dispatch was marked done")
			}
			if rec = h.do("POST", "/v1/track", trackOK); rec.Code != 200 {
				t.Fatalf("retry: status %d: %s", rec.Code, rec.Body)
			}
			if rec = h.do("POST", "/v1/track", trackOK); rec.Code != 200 {
				t.Fatalf("second retry: status %d", rec.Code)
			}
			if d := h.disp.dispatched(); len(d) != 1 {
				t.Errorf("%d successful dispatches, want exactly 1", len(d))
			}
			if h.store.eventCount() != 1 {
				t.Errorf("%d events stored, want 1", h.store.eventCount())
			}
		})
	}
}

func TestOtherDispatchFailureIs500(t *testing.T) {
	h := newHarness(t)
	h.disp.failures = []error{errors.New("bug")}
	rec := h.do("POST", "/v1/track", trackOK)
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "bug") {
		t.Error("internal error text leaked to the client")
	}
}

func TestStoreUnavailableIs503(t *testing.T) {
	h := newHarness(t)
	h.store.failWith = fmt.Errorf("connect: %w", ErrUnavailable)
	rec := h.do("POST", "/v1/track", trackOK)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, want 503 with Retry-After", rec.Code)
	}
	if len(h.disp.dispatched()) != 0 {
		t.Error("dispatched an event that was not stored")
	}
}

func TestIdentifyMergesTraits(t *testing.T) {
	h := newHarness(t)
	first := `{"userId":"c1","messageId":"i1","timestamp":"2026-03-01T08:00:00Z","context":{"locale":"zh_cn","timezone":"Asia/Shanghai"},
		"traits":{"email":"li@example.com","firstName":"Li","lastName":"Wei","birthday":"1990-04-12","tier":"silver","industry":"tea","phone":"+8613800000000"}}`
	if rec := h.do("POST", "/v1/identify", first); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	c := h.store.customers["c1"]
	if c.Email != "li@example.com" || c.Name != "Li Wei" || c.Tier != "silver" || c.Phone != "+8613800000000" {
		t.Errorf("typed traits wrong: %+v", c)
	}
	if c.Locale != "zh-CN" || c.Timezone != "Asia/Shanghai" {
		t.Errorf("context locale/timezone not honoured: %q %q", c.Locale, c.Timezone)
	}
	if !c.Birthday.Equal(time.Date(1990, 4, 12, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("birthday %v", c.Birthday)
	}
	if !c.SignupAt.Equal(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("signup_at %v, want the first identify's timestamp", c.SignupAt)
	}
	if c.Attrs["industry"] != "tea" || c.Attrs["firstName"] != "Li" {
		t.Errorf("attrs %v", c.Attrs)
	}
	// A later identify changes only what it sends; null clears.
	second := `{"userId":"c1","traits":{"tier":"gold","industry":null,"locale":"en","createdAt":"2025-01-02T03:04:05Z"},"context":{"timezone":"Europe/Paris"}}`
	if rec := h.do("POST", "/v1/identify", second); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	c = h.store.customers["c1"]
	if c.Tier != "gold" || c.Email != "li@example.com" || c.Name != "Li Wei" || c.Locale != "en" {
		t.Errorf("merge wrong: %+v", c)
	}
	if c.Timezone != "Asia/Shanghai" {
		t.Errorf("the device context overrode a known time zone: %q", c.Timezone)
	}
	if _, ok := c.Attrs["industry"]; ok {
		t.Error("null trait did not clear the attribute")
	}
	if !c.SignupAt.Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("createdAt did not set signup_at: %v", c.SignupAt)
	}
	// "" counts as not sent, null clears a core field; signup_at stays.
	third := `{"userId":"c1","timestamp":"2026-03-10T09:00:00Z","traits":{"email":null,"tier":""}}`
	if rec := h.do("POST", "/v1/identify", third); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	c = h.store.customers["c1"]
	if c.Email != "" || c.Tier != "gold" {
		t.Errorf("email %q (want cleared), tier %q (want kept)", c.Email, c.Tier)
	}
	if !c.SignupAt.Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("a later identify moved signup_at to %v", c.SignupAt)
	}
	if len(h.disp.dispatched()) != 0 {
		t.Error("identify dispatched an event")
	}
}

func TestBatch(t *testing.T) {
	h := newHarness(t)
	body := `{"batch":[
		{"type":"identify","userId":"c1","traits":{"email":"a@example.com"}},
		{"type":"track","userId":"c1","event":"signup","messageId":"b1"},
		{"type":"track","userId":"c2","event":"purchase","messageId":"b2","properties":{"amount":5}}
	],"sentAt":"2026-03-10T12:00:00Z"}`
	rec := h.do("POST", "/v1/batch", body)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"calls":3`) {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	d := h.disp.dispatched()
	if len(d) != 2 || d[0].Event.ID != "b1" || d[1].Event.ID != "b2" {
		t.Fatalf("dispatches %+v, want b1 then b2", d)
	}
	if d[0].Customer.Email != "a@example.com" {
		t.Error("the track after an identify in the same batch did not see its traits")
	}
}

// TestBatchBadItemsAreListedTheRestApplied checks that a refused item does
// not cost the batch its good items: the answer is 200 (classic
// analytics-node does not retry 4xx and would drop the whole batch) with
// the refused items in errors; only a bad envelope is a 400.
func TestBatchBadItemsAreListedTheRestApplied(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"bad userId", `{"batch":[{"type":"identify","userId":"c1"},{"type":"track","userId":"c1","event":"x","messageId":"m1"},{"type":"track","userId":"a/b","event":"x","messageId":"m2"}]}`, "batch[2].userId:"},
		{"missing type", `{"batch":[{"userId":"c1"}]}`, "batch[0].type: required"},
		{"unsupported type", `{"batch":[{"type":"ping","userId":"c1"}]}`, `batch[0].type: "ping" is not a Segment call type`},
		{"item not an object", `{"batch":[{"type":"identify","userId":"c1"},7]}`, "batch[1]: expected a JSON object, got a number"},
		{"bad trait", `{"batch":[{"type":"identify","userId":"c1"},{"type":"identify","userId":"c1","traits":{"email":"x"}}]}`, "batch[1].traits.email:"},
		{"bad property", `{"batch":[{"type":"track","userId":"c1","event":"x","messageId":"m1","properties":{"score":"high"}}]}`, "batch[0].properties.score: must be a number"},
		{"repeated messageId", `{"batch":[{"type":"track","userId":"c1","event":"x","messageId":"m1"},{"type":"track","userId":"c1","event":"x","messageId":"m1"}]}`, "batch[1].messageId: repeats batch[0].messageId"},
		{"invalid UTF-8", "{\"batch\":[{\"type\":\"identify\",\"userId\":\"c1\"},{\"type\":\"track\",\"userId\":\"c1\",\"event\":\"caf\xe9\"}]}", "batch[1]: invalid UTF-8 at byte 42"},
		{"unknown item field", `{"batch":[{"type":"track","userId":"c1","event":"x","messageId":"m1","extra":1}]}`, "batch[0].extra: unknown field"},
		{"unknown top-level field", `{"batch":[],"foo":1}`, "foo: unknown field"},
		{"empty", `{"batch":[]}`, "batch: is empty"},
		{"missing", `{}`, "batch: required"},
		{"not a list", `{"batch":{}}`, "batch: must be a list, got an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			rec := h.do("POST", "/v1/batch", tt.body)
			if !strings.HasPrefix(tt.want, "batch[") {
				if rec.Code != http.StatusBadRequest || !strings.HasPrefix(errorOf(t, rec), tt.want) {
					t.Fatalf("bad envelope: status %d %s, want 400 %q", rec.Code, rec.Body, tt.want)
				}
				return
			}
			var got success
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
				t.Fatalf("status %d %s, want 200 with per-item errors", rec.Code, rec.Body)
			}
			if len(got.Errors) != 1 || got.Errors[0].Status != 400 || !strings.HasPrefix(got.Errors[0].Error, tt.want) {
				t.Fatalf("errors %+v, want one 400 starting %q", got.Errors, tt.want)
			}
			var sent struct{ Batch []json.RawMessage }
			if err := json.Unmarshal([]byte(tt.body), &sent); err != nil || got.Calls != len(sent.Batch)-1 {
				t.Errorf("%d calls applied, want the %d good ones", got.Calls, len(sent.Batch)-1)
			}
		})
	}
}

func TestBatchTooManyItems(t *testing.T) {
	h := newHarness(t)
	items := strings.Repeat(`{},`, MaxBatchItems) + `{}`
	rec := h.do("POST", "/v1/batch", `{"batch":[`+items+`]}`)
	if rec.Code != 400 || !strings.Contains(errorOf(t, rec), "the limit is 2500") {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}

// A dispatch failure in the middle of a batch still stores every event;
// the retried batch dispatches the rest, and each event once.
func TestBatchDispatchFailureStoresAllAndRetryCompletes(t *testing.T) {
	h := newHarness(t)
	h.disp.failures = []error{nil, serviceerror.NewUnavailable("down")}
	body := `{"batch":[
		{"type":"track","userId":"c1","event":"x","messageId":"a"},
		{"type":"track","userId":"c1","event":"x","messageId":"b"},
		{"type":"track","userId":"c1","event":"x","messageId":"c"}]}`
	rec := h.do("POST", "/v1/batch", body)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	if h.store.eventCount() != 3 {
		t.Fatalf("%d events stored, want all 3", h.store.eventCount())
	}
	if rec = h.do("POST", "/v1/batch", body); rec.Code != 200 {
		t.Fatalf("retry: status %d: %s", rec.Code, rec.Body)
	}
	var ids []string
	for _, d := range h.disp.dispatched() {
		ids = append(ids, d.Event.ID)
	}
	if strings.Join(ids, ",") != "a,b,c" {
		t.Errorf("dispatched %v, want a,b,c each once", ids)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	h := newHarness(t)
	if rec := h.do("GET", "/v1/track", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/track: %d, want 405", rec.Code)
	}
	if rec := h.do("POST", "/v1/ping", "{}"); rec.Code != http.StatusNotFound {
		t.Errorf("POST /v1/ping: %d, want 404", rec.Code)
	}
}
