package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/store"
)

// The regression tests of issue #13: each sends what a Segment client
// sends and checks the HTTP answer and the rows in PostgreSQL.

// query reads one row of scalars.
func query(t *testing.T, st *store.Store, sql string, dst ...any) {
	t.Helper()
	if err := st.Pool().QueryRow(context.Background(), sql).Scan(dst...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// mustStatus sends a call and checks the status.
func mustStatus(t *testing.T, h *harness, path, body string, want int) *httptest.ResponseRecorder {
	t.Helper()
	rec := h.do("POST", path, body)
	if rec.Code != want {
		t.Fatalf("POST %s: status %d, want %d: %s", path, rec.Code, want, rec.Body)
	}
	return rec
}

func TestSpecClassicBatchEnvelope(t *testing.T) {
	h, st := pgHarness(t)
	// analytics-node 6: timestamp and sentAt beside the batch, the
	// client's clock an hour fast.
	body := `{"batch":[{"type":"track","userId":"c1","event":"Signed Up","timestamp":"2026-03-10T12:59:00.000Z","messageId":"m1",
		"context":{"library":{"name":"analytics-node","version":"6.2.0"}},"_metadata":{"nodeVersion":"20"}}],
		"timestamp":"2026-03-10T13:00:00.000Z","sentAt":"2026-03-10T13:00:00.000Z","context":{"locale":"de-DE"}}`
	mustStatus(t, h, "/v1/batch", body, 200)
	var name string
	var at time.Time
	query(t, st, `SELECT name, time FROM events WHERE id = 'm1'`, &name, &at)
	if name != "signed_up" || !at.Equal(testNow.Add(-time.Minute)) {
		t.Errorf("event %s at %v, want signed_up at %v (receive time less the client's sentAt − timestamp)", name, at, testNow.Add(-time.Minute))
	}
}

func TestSpecClockSkewAndOffsets(t *testing.T) {
	h, st := pgHarness(t)
	// A clock 3 h fast: originalTimestamp and sentAt both read 3 h ahead.
	mustStatus(t, h, "/v1/track", `{"userId":"c1","event":"x","messageId":"fast","originalTimestamp":"2026-03-10T14:59:30+0000","sentAt":"2026-03-10T15:00:00+0000"}`, 200)
	// No sentAt: the time is taken as sent, in a +0800 offset.
	mustStatus(t, h, "/v1/track", `{"userId":"c1","event":"x","messageId":"import","timestamp":"2026-03-01T08:00:00+0800"}`, 200)
	var fast, imported time.Time
	query(t, st, `SELECT (SELECT time FROM events WHERE id = 'fast'), (SELECT time FROM events WHERE id = 'import')`, &fast, &imported)
	if !fast.Equal(testNow.Add(-30 * time.Second)) {
		t.Errorf("skewed event at %v, want %v", fast, testNow.Add(-30*time.Second))
	}
	if !imported.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("imported event at %v, want 2026-03-01T00:00Z", imported)
	}
}

func TestSpecAnonymousThenIdentifyMerges(t *testing.T) {
	h, st := pgHarness(t)
	mustStatus(t, h, "/v1/page", `{"anonymousId":"anon-1","name":"Pricing","properties":{"url":"https://x.io/pricing"}}`, 200)
	mustStatus(t, h, "/v1/track", `{"anonymousId":"anon-1","event":"Order Completed","messageId":"o1","properties":{"revenue":20,"order_id":"A1"}}`, 200)
	mustStatus(t, h, "/v1/identify", `{"anonymousId":"anon-1","traits":{"plan":"pro"}}`, 200)
	var customers, anonEvents int
	query(t, st, `SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM anonymous_events)`, &customers, &anonEvents)
	if customers != 0 || anonEvents != 2 || len(h.disp.dispatched()) != 0 {
		t.Fatalf("before identify: %d customers, %d anonymous events, %d dispatches; want 0, 2, 0", customers, anonEvents, len(h.disp.dispatched()))
	}
	mustStatus(t, h, "/v1/identify", `{"userId":"u1","anonymousId":"anon-1","traits":{"email":"u1@example.com"}}`, 200)
	var events, orders int
	var ltv float64
	var plan, tied string
	query(t, st, `SELECT (SELECT count(*) FROM event_ids WHERE customer_id = 'u1' AND dispatched_at IS NOT NULL),
		c.order_count, c.lifetime_value::float8, c.attrs->>'plan', (SELECT customer_id FROM anonymous_ids WHERE anonymous_id = 'anon-1')
		FROM customers c WHERE id = 'u1'`, &events, &orders, &ltv, &plan, &tied)
	if events != 2 || orders != 1 || ltv != 20 || plan != "pro" || tied != "u1" {
		t.Errorf("after identify: %d events, %d orders, ltv %v, plan %q, tied to %q", events, orders, ltv, plan, tied)
	}
	if len(h.disp.dispatched()) != 0 {
		t.Error("merged history was dispatched to journeys")
	}
	// Later anonymous calls of the tied id count for the customer.
	mustStatus(t, h, "/v1/track", `{"anonymousId":"anon-1","event":"Product Viewed","messageId":"pv1"}`, 200)
	if d := h.disp.dispatched(); len(d) != 1 || d[0].Customer.ID != "u1" || d[0].Event.Name != "product_viewed" {
		t.Errorf("dispatches %+v, want product_viewed for u1", d)
	}
}

func TestSpecAliasGroupScreenContextTraits(t *testing.T) {
	h, st := pgHarness(t)
	mustStatus(t, h, "/v1/screen", `{"anonymousId":"dev-9","name":"Home","category":"app"}`, 200)
	mustStatus(t, h, "/v1/alias", `{"previousId":"dev-9","userId":"u2"}`, 200)
	mustStatus(t, h, "/v1/group", `{"userId":"u2","groupId":"acme","traits":{"plan":"enterprise"}}`, 200)
	mustStatus(t, h, "/v1/track", `{"userId":"u2","event":"x","context":{"traits":{"email":"u2@example.com","name":"Ann\r\nBcc: evil@x.io"}}}`, 200)
	var screen, cat, group, email, name string
	query(t, st, `SELECT e.name, e.category, g.traits->>'plan', c.email, c.name FROM customers c
		JOIN events e ON e.customer_id = c.id AND e.name = 'screen' JOIN customer_groups g ON g.customer_id = c.id AND g.group_id = 'acme'
		WHERE c.id = 'u2'`, &screen, &cat, &group, &email, &name)
	if cat != "app" || group != "enterprise" || email != "u2@example.com" || name != "AnnBcc: evil@x.io" {
		t.Errorf("screen %s/%s group plan %q email %q name %q", screen, cat, group, email, name)
	}
}

func TestSpecMessageIDOptionalAndDerived(t *testing.T) {
	h, st := pgHarness(t)
	body := `{"userId":"c1","event":"Cart Viewed","timestamp":"2026-03-10T11:00:00Z","properties":{"cart_id":"k1"}}`
	for range 2 { // a retry of a call without messageId counts once
		mustStatus(t, h, "/v1/track", body, 200)
	}
	var n int
	var id string
	query(t, st, `SELECT count(*) OVER (), id FROM events`, &n, &id)
	if n != 1 || !strings.HasPrefix(id, "derived-") {
		t.Errorf("%d events, id %q: want one with a derived key", n, id)
	}
}

func TestSpecEcommerceMetrics(t *testing.T) {
	h, st := pgHarness(t)
	mustStatus(t, h, "/v1/track", `{"userId":"c1","event":"Order Completed","messageId":"o1","timestamp":"2026-03-09T10:00:00Z","properties":{"order_id":"A1","total":120,"revenue":100}}`, 200)
	mustStatus(t, h, "/v1/track", `{"userId":"c1","event":"Order Completed","messageId":"o2","properties":{"order_id":"A2","products":[{"price":10,"quantity":3},{"price":5}]}}`, 200)
	mustStatus(t, h, "/v1/track", `{"userId":"c1","event":"Order Refunded","messageId":"r1","properties":{"order_id":"A1","total":40}}`, 200)
	for _, ev := range []string{"Product Viewed", "Product Added", "Checkout Started", "Order Cancelled"} {
		mustStatus(t, h, "/v1/track", `{"userId":"c1","event":"`+ev+`","properties":{"total":999}}`, 200)
	}
	var orders, refunds int
	var ltv, refunded float64
	var last time.Time
	query(t, st, `SELECT order_count, lifetime_value::float8, refund_count, refunded_amount::float8, last_purchase_at FROM customers WHERE id = 'c1'`,
		&orders, &ltv, &refunds, &refunded, &last)
	if orders != 2 || ltv != 95 || refunds != 1 || refunded != 40 || !last.Equal(testNow) {
		t.Errorf("orders %d ltv %v refunds %d refunded %v last %v; want 2, 100+35−40=95, 1, 40, %v", orders, ltv, refunds, refunded, last, testNow)
	}
}

func TestSpecCommerceConfigurable(t *testing.T) {
	h, st := pgHarness(t, func(o *Options) {
		o.Commerce = activities.Commerce{PurchaseEvents: []string{"Deal Won"}, AmountProps: []string{"deal_value"}}
	})
	mustStatus(t, h, "/v1/track", `{"userId":"c1","event":"Deal Won","properties":{"deal_value":500,"revenue":1}}`, 200)
	mustStatus(t, h, "/v1/track", `{"userId":"c1","event":"Order Completed","properties":{"revenue":7}}`, 200)
	var orders int
	var ltv float64
	query(t, st, `SELECT order_count, lifetime_value::float8 FROM customers WHERE id = 'c1'`, &orders, &ltv)
	if orders != 1 || ltv != 500 {
		t.Errorf("orders %d ltv %v; want only deal_won to count, with deal_value 500", orders, ltv)
	}
}

func TestSpecPermanentErrorsAre4xx(t *testing.T) {
	h, st := pgHarness(t)
	mustStatus(t, h, "/v1/track", `{"userId":"c1","event":"x","messageId":"n","properties":{"note":"a\u0000b"}}`, 400)
	mustStatus(t, h, "/v1/track", `{"userId":"c1","event":"Order Completed","messageId":"big","properties":{"revenue":1e12}}`, 400)
	mustStatus(t, h, "/v1/track", "{\"userId\":\"c1\",\"event\":\"caf\xe9\",\"messageId\":\"u\"}", 400)
	var n int
	query(t, st, `SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM events)`, &n)
	if n != 0 {
		t.Fatalf("%d rows written by refused calls", n)
	}
	// Two purchases that each fit but whose sum overflows the lifetime
	// value: the second is the caller's error, the same on retry.
	mustStatus(t, h, "/v1/track", `{"userId":"c1","event":"Order Completed","messageId":"p1","properties":{"revenue":900000000000}}`, 200)
	for range 2 {
		rec := mustStatus(t, h, "/v1/track", `{"userId":"c1","event":"Order Completed","messageId":"p2","properties":{"revenue":900000000000}}`, 422)
		if msg := errorOf(t, rec); !strings.HasPrefix(msg, "body: a value cannot be stored") {
			t.Errorf("error %q", msg)
		}
	}
	var events, orders int
	query(t, st, `SELECT (SELECT count(*) FROM events), (SELECT order_count FROM customers WHERE id = 'c1')`, &events, &orders)
	if events != 1 || orders != 1 {
		t.Errorf("%d events, %d orders after the overflow; want the first purchase alone", events, orders)
	}
}

func TestSpecBatchItemsAtomicAndListed(t *testing.T) {
	h, st := pgHarness(t)
	body := `{"batch":[
		{"type":"identify","userId":"c1","traits":{"email":"a@example.com"}},
		{"type":"track","userId":"c1","event":"x","messageId":"bad","properties":{"p":"\u0000"}},
		{"type":"track","anonymousId":"a9","event":"y","messageId":"anon"},
		{"type":"page","userId":7,"name":"Home"},
		{"type":"group","userId":"c1","groupId":"g1"},
		{"type":"alias","userId":"c1","previousId":"a9"}]}`
	rec := mustStatus(t, h, "/v1/batch", body, 200)
	var got success
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Calls != 5 || got.Rejected != 1 || got.Errors[0].Index != 1 || !strings.HasPrefix(got.Errors[0].Error, "batch[1].properties.p: contains a NUL") {
		t.Fatalf("answer %s", rec.Body)
	}
	var c1Events, pages, badRows int
	query(t, st, `SELECT (SELECT count(*) FROM events WHERE customer_id = 'c1'), (SELECT count(*) FROM events WHERE customer_id = '7' AND name = 'page'),
		(SELECT count(*) FROM events WHERE id = 'bad')`, &c1Events, &pages, &badRows)
	if c1Events != 1 || pages != 1 || badRows != 0 {
		t.Errorf("c1 has %d events (want the aliased anonymous one), user 7 %d pages, %d rows of the bad item", c1Events, pages, badRows)
	}
}

func TestSpecMessageIDOfAnotherUser(t *testing.T) {
	h, st := pgHarness(t)
	mustStatus(t, h, "/v1/track", `{"userId":"c1","event":"x","messageId":"shared"}`, 200)
	rec := mustStatus(t, h, "/v1/track", `{"userId":"c2","event":"Order Completed","messageId":"shared","properties":{"revenue":5}}`, 409)
	if msg := errorOf(t, rec); !strings.HasPrefix(msg, `messageId: "shared" is already used`) {
		t.Errorf("error %q", msg)
	}
	var owner string
	var c2 int
	query(t, st, `SELECT (SELECT customer_id FROM events WHERE id = 'shared'), (SELECT count(*) FROM customers WHERE id = 'c2')`, &owner, &c2)
	if owner != "c1" || c2 != 0 {
		t.Errorf("event owned by %q, %d rows for c2: want c1's event untouched and no bare c2", owner, c2)
	}
}

func TestSpecGzipBody(t *testing.T) {
	h, st := pgHarness(t)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(`{"batch":[{"type":"track","userId":"c1","event":"Product Added","messageId":"z1"}]}`))
	_ = zw.Close()
	rec := h.do("POST", "/v1/batch", buf.String(), "Content-Encoding", "gzip")
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var name string
	query(t, st, `SELECT name FROM events WHERE id = 'z1'`, &name)
	if name != "product_added" {
		t.Errorf("stored %q", name)
	}
	if rec := h.do("POST", "/v1/batch", "not gzip", "Content-Encoding", "gzip"); rec.Code != 400 {
		t.Errorf("bad gzip: status %d, want 400", rec.Code)
	}
}

// TestSpecOrderCompletedStartsLoyaltyLadder: the sample loyalty_ladder,
// as shipped, starts on Segment's "Order Completed" (issue #13: it never
// did), through the real dispatcher, with the metrics already updated.
func TestSpecOrderCompletedStartsLoyaltyLadder(t *testing.T) {
	src, err := os.ReadFile("../playbooks/loyalty_ladder.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := engine.Compile("loyalty_ladder.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	reg := engine.NewRegistry()
	reg.Add(plan)
	j := &fakeJourneys{}
	h, st := pgHarness(t, func(o *Options) {
		o.Dispatcher = NewEventDispatcher(reg, j, enrollmentsOf(nil), nil)
	})
	mustStatus(t, h, "/v1/track", `{"userId":"c1","event":"Order Completed","messageId":"o1","properties":{"order_id":"A1","revenue":80}}`, 200)
	if want := []string{"loyalty_ladder/c1/o1"}; !slices.Equal(j.enrolls, want) {
		t.Errorf("enrollments %v, want %v", j.enrolls, want)
	}
	var orders int
	query(t, st, `SELECT order_count FROM customers WHERE id = 'c1'`, &orders)
	if orders != 1 {
		t.Errorf("order_count %d, want 1", orders)
	}
}

// TestSpecIdenticalCallsWithoutMessageIDInABatch: identical calls without
// messageId share the derived key and count once; no error is reported
// for an id the client never sent.
func TestSpecIdenticalCallsWithoutMessageIDInABatch(t *testing.T) {
	h, st := pgHarness(t)
	item := `{"type":"track","userId":"c1","event":"Product Added","timestamp":"2026-03-10T11:00:00Z"}`
	rec := mustStatus(t, h, "/v1/batch", `{"batch":[`+item+`,`+item+`,{"type":"identify","userId":"c1"},{"type":"identify","userId":"c1"}]}`, 200)
	if strings.TrimSpace(rec.Body.String()) != `{"success":true,"calls":4}` {
		t.Errorf("answer %s", rec.Body)
	}
	var n int
	query(t, st, `SELECT count(*) FROM events`, &n)
	if n != 1 {
		t.Errorf("%d events, want 1", n)
	}
}
