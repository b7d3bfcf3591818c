package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
	"github.com/rapport-crm/rapport/unsubscribe"
)

// pgHarness is a server over a fresh PostgreSQL database and a fake
// dispatcher.
func pgHarness(t *testing.T, edit ...func(*Options)) (*harness, *store.Store) {
	t.Helper()
	t.Parallel() // each test has its own database
	st := storetest.New(t)
	h := &harness{t: t, disp: &fakeDispatcher{}}
	opts := Options{
		APIKey: testKey, Store: PGStore{st}, Dispatcher: h.disp,
		Unsubscriber: &TokenUnsubscriber{Secret: storetest.Secret, Applier: st, Customers: PGStore{st}},
		Now:          func() time.Time { return testNow },
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, e := range edit {
		e(&opts)
	}
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	return h, st
}

func TestPGIdentify(t *testing.T) {
	h, st := pgHarness(t)
	ctx := context.Background()
	first := `{"userId":"c1","timestamp":"2026-03-01T08:00:00Z","context":{"locale":"zh-CN","timezone":"Asia/Shanghai"},
		"traits":{"email":"li@example.com","name":"Li Wei","birthday":"1990-04-12","tier":"silver","industry":"tea","vip":true}}`
	if rec := h.do("POST", "/v1/identify", first); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	c, err := st.Customer(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Email != "li@example.com" || c.Name != "Li Wei" || c.Tier != "silver" || c.Locale != "zh-CN" || c.Timezone != "Asia/Shanghai" {
		t.Errorf("profile %+v", c)
	}
	if c.Birthday.Format(time.DateOnly) != "1990-04-12" || !c.SignupAt.Equal(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("birthday %v signup %v", c.Birthday, c.SignupAt)
	}
	if c.Attrs["industry"] != "tea" || c.Attrs["vip"] != true {
		t.Errorf("attrs %v", c.Attrs)
	}
	second := `{"userId":"c1","traits":{"tier":"gold","industry":null,"email":null,"birthday":null}}`
	if rec := h.do("POST", "/v1/identify", second); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	c, _ = st.Customer(ctx, "c1")
	if c.Tier != "gold" || c.Name != "Li Wei" || c.Email != "" || !c.Birthday.IsZero() {
		t.Errorf("after merge: %+v", c)
	}
	if _, ok := c.Attrs["industry"]; ok || c.Attrs["vip"] != true {
		t.Errorf("attrs after clearing industry: %v", c.Attrs)
	}
}

func TestPGTrackStoresEventAndMetricsOnce(t *testing.T) {
	h, st := pgHarness(t)
	ctx := context.Background()
	body := `{"userId":"c9","event":"purchase","messageId":"order-1","timestamp":"2026-03-10T10:00:00Z",
		"properties":{"revenue":"100.50","currency":"usd","order_id":"A-1","sku":"T-1"}}`
	for i := range 3 {
		if rec := h.do("POST", "/v1/track", body); rec.Code != 200 {
			t.Fatalf("call %d: status %d: %s", i, rec.Code, rec.Body)
		}
	}
	var n int
	var amount float64
	var currency, orderID, sku string
	var dispatched bool
	err := st.Pool().QueryRow(ctx, `SELECT count(*) OVER (), e.amount, e.currency, e.order_id, e.props->>'sku', i.dispatched_at IS NOT NULL
		FROM events e JOIN event_ids i ON i.id = e.id WHERE e.customer_id = 'c9'`).Scan(&n, &amount, &currency, &orderID, &sku, &dispatched)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || amount != 100.5 || currency != "USD" || orderID != "A-1" || sku != "T-1" || !dispatched {
		t.Errorf("events: n=%d amount=%v currency=%q order=%q sku=%q dispatched=%v", n, amount, currency, orderID, sku, dispatched)
	}
	c, err := st.Customer(ctx, "c9")
	if err != nil {
		t.Fatal(err)
	}
	if c.OrderCount != 1 || c.LifetimeValue != 100.5 || !c.LastPurchaseAt.Equal(time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("metrics: orders %d ltv %v last %v", c.OrderCount, c.LifetimeValue, c.LastPurchaseAt)
	}
	if d := h.disp.dispatched(); len(d) != 1 || d[0].Customer.OrderCount != 1 {
		t.Errorf("dispatches %+v: want one, with the customer as stored after the event", d)
	}
}

func TestPGDispatchUnavailableThenRetry(t *testing.T) {
	h, st := pgHarness(t)
	h.disp.failures = []error{serviceerror.NewUnavailable("temporal down")}
	body := `{"userId":"c1","event":"signup","messageId":"s-1"}`
	if rec := h.do("POST", "/v1/track", body); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	done, err := PGStore{st}.EventDispatched(context.Background(), "s-1")
	if err != nil || done {
		t.Fatalf("dispatched=%v err=%v after a failed dispatch", done, err)
	}
	if rec := h.do("POST", "/v1/track", body); rec.Code != 200 {
		t.Fatalf("retry: status %d", rec.Code)
	}
	if done, _ = (PGStore{st}).EventDispatched(context.Background(), "s-1"); !done {
		t.Error("not marked dispatched after the retry")
	}
	if n := len(h.disp.dispatched()); n != 1 {
		t.Errorf("%d dispatches, want 1", n)
	}
}

// TestPGBatchKeepsGoodItems: a refused item is listed, the others are
// stored whole, and the refused one leaves no row.
func TestPGBatchKeepsGoodItems(t *testing.T) {
	h, st := pgHarness(t)
	body := `{"batch":[{"type":"identify","userId":"c1","traits":{"email":"a@example.com"}},
		{"type":"identify","userId":"c2","traits":{"email":"not-an-email"}},
		{"type":"track","userId":"c1","event":"x"}]}`
	rec := h.do("POST", "/v1/batch", body)
	want := `{"success":true,"calls":2,"rejected":1,"errors":[{"index":1,"status":400,"error":"batch[1].traits.email: \"not-an-email\" is not an e-mail address"}]}`
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != want {
		t.Fatalf("status %d: %s\nwant %s", rec.Code, rec.Body, want)
	}
	var customers, events int
	if err := st.Pool().QueryRow(context.Background(), `SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM events WHERE customer_id = 'c1')`).Scan(&customers, &events); err != nil {
		t.Fatal(err)
	}
	if customers != 1 || events != 1 {
		t.Errorf("%d customers and %d events, want c1 alone with its event", customers, events)
	}
}

func TestPGUnsubscribe(t *testing.T) {
	h, st := pgHarness(t)
	ctx := context.Background()
	if rec := h.do("POST", "/v1/identify", `{"userId":"c1","traits":{"locale":"zh-CN"}}`); rec.Code != 200 {
		t.Fatal(rec.Body)
	}
	// A real token, signed the way the store signs message footers.
	tok := unsubscribe.Sign(storetest.Secret, unsubscribe.Claims{Customer: "c1", Channel: "email", Topic: "marketing", Expires: testNow.Add(24 * time.Hour)})
	rec := h.do("GET", "/u/"+tok, "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "营销") {
		t.Fatalf("GET: %d %s", rec.Code, rec.Body)
	}
	granted := func() (bool, bool) {
		var g bool
		err := st.Pool().QueryRow(ctx, `SELECT granted FROM consents WHERE customer_id = 'c1' AND channel = 'email' AND topic = 'marketing'`).Scan(&g)
		return g, err == nil
	}
	if _, found := granted(); found {
		t.Fatal("GET recorded a consent decision")
	}
	for i := range 2 { // one-click, then a second click: both fine
		rec = h.do("POST", "/u/"+tok, "List-Unsubscribe=One-Click", "Content-Type", "application/x-www-form-urlencoded")
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "您已退订") {
			t.Fatalf("POST %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if g, found := granted(); !found || g {
		t.Errorf("consent row found=%v granted=%v, want withdrawn", found, g)
	}
	expired := unsubscribe.Sign(storetest.Secret, unsubscribe.Claims{Customer: "c1", Channel: "sms", Topic: "marketing", Expires: testNow.Add(-time.Minute)})
	if rec = h.do("POST", "/u/"+expired, ""); rec.Code != 400 {
		t.Errorf("expired token: %d", rec.Code)
	}
	// A valid token of a customer the database does not have: the real
	// store's error leads to the not-on-file page, not 503.
	gone := unsubscribe.Sign(storetest.Secret, unsubscribe.Claims{Customer: "gone", Channel: "email", Topic: "marketing", Expires: testNow.Add(time.Hour)})
	for _, method := range []string{"GET", "POST"} {
		rec = h.do(method, "/u/"+gone, "List-Unsubscribe=One-Click", "Content-Type", "application/x-www-form-urlencoded")
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "not on file") {
			t.Errorf("%s unknown customer: %d %s", method, rec.Code, rec.Body)
		}
	}
}

func TestPGActiveEnrollmentsAndRegistry(t *testing.T) {
	t.Parallel()
	st := storetest.New(t)
	ctx := context.Background()
	pg := PGStore{st}
	if _, err := st.Pool().Exec(ctx, `INSERT INTO customers (id) VALUES ('c1'), ('c2');
		INSERT INTO enrollments (id, workflow_id, playbook, version, customer_id, status, started_at) VALUES
		('e1', 'w1', 'welcome', 'v1', 'c1', 'active', now()),
		('e2', 'w2', 'winback', 'v2', 'c1', 'completed', now()),
		('e3', 'w3', 'nurture', 'v3', 'c2', 'active', now())`); err != nil {
		t.Fatal(err)
	}
	got, err := pg.ActiveEnrollments(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (ActiveEnrollment{Playbook: "welcome", Version: "v1"}) {
		t.Errorf("active enrollments of c1: %+v", got)
	}
	if _, err := pg.Customer(ctx, "nobody"); !strings.Contains(err.Error(), ErrNotFound.Error()) {
		t.Errorf("missing customer: %v, want ErrNotFound", err)
	}

	src, err := os.ReadFile("../playbooks/onboarding.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := engine.Compile("onboarding.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeployPlaybook(ctx, p.Name, p.Version, src); err != nil {
		t.Fatal(err)
	}
	var live LivePlans
	bad, err := live.Reload(ctx, st)
	if err != nil || len(bad) != 0 {
		t.Fatalf("reload: %v %v", bad, err)
	}
	if got, ok := live.Latest("onboarding"); !ok || got.Version != p.Version || got.Trigger.Event != "signup" {
		t.Errorf("registry after reload: %v %v", ok, got)
	}
	if _, err := st.UndeployPlaybook(ctx, "onboarding"); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Reload(ctx, st); err != nil {
		t.Fatal(err)
	}
	if names := live.Names(); len(names) != 0 {
		t.Errorf("undeployed playbook still live: %v", names)
	}
}

func TestPGRedispatchSweepsEventsClientsGaveUpOn(t *testing.T) {
	h, st := pgHarness(t)
	ctx := context.Background()
	h.disp.failures = []error{serviceerror.NewUnavailable("down"), serviceerror.NewUnavailable("down"), serviceerror.NewUnavailable("down")}
	for _, id := range []string{"fresh", "given-up", "ancient"} {
		body := `{"userId":"c1","event":"signup","messageId":"` + id + `","properties":{"plan":"pro"}}`
		if rec := h.do("POST", "/v1/track", body); rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s: status %d, want 503", id, rec.Code)
		}
	}
	// received_at is the database's clock; place the events around the test clock.
	for id, age := range map[string]time.Duration{"fresh": 10 * time.Second, "given-up": 5 * time.Minute, "ancient": 48 * time.Hour} {
		if _, err := st.Pool().Exec(ctx, `UPDATE event_ids SET received_at = $2 WHERE id = $1`, id, testNow.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := h.srv.Redispatch(ctx, PGStore{st}, time.Minute, 24*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("redispatched %d, err %v; want 1", n, err)
	}
	d := h.disp.dispatched()
	if len(d) != 1 || d[0].Event.ID != "given-up" || d[0].Event.Name != "signup" || d[0].Event.Props["plan"] != "pro" || d[0].Customer.ID != "c1" {
		t.Fatalf("dispatched %+v", d)
	}
	if n, _ = h.srv.Redispatch(ctx, PGStore{st}, time.Minute, 24*time.Hour); n != 0 {
		t.Errorf("second pass redispatched %d, want 0", n)
	}
}

// TestPGDeclaredTypes: with a workspace declaration, a number sent as text
// is stored in PostgreSQL as a number (a rule comparing it with a number
// works on the stored profile), and a batch with a mistyped trait is
// refused whole, naming the field, with nothing written.
func TestPGDeclaredTypes(t *testing.T) {
	h, st := pgHarness(t)
	ws, err := engine.ParseWorkspace("rapport.yaml", []byte("attrs:\n  balance: number\nevents:\n  purchase:\n    props: { quantity: number }\n"))
	if err != nil {
		t.Fatal(err)
	}
	live := &LiveWorkspace{}
	live.Set(ws)
	h.srv.opts.Workspace = live
	ctx := context.Background()
	if rec := h.do("POST", "/v1/identify", `{"userId":"c1","traits":{"balance":" 120.5"}}`); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	c, err := st.Customer(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Attrs["balance"] != 120.5 {
		t.Fatalf("stored balance %#v (%T), want the number 120.5", c.Attrs["balance"], c.Attrs["balance"])
	}
	body := `{"batch":[{"type":"identify","userId":"c2","traits":{"email":"b@example.com"}},
		{"type":"track","userId":"c2","event":"purchase","messageId":"m1","properties":{"quantity":"two"}}]}`
	rec := h.do("POST", "/v1/batch", body)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `batch[1].properties.quantity: expected a number, got \"two\"`) {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var n int
	if err := st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM customers WHERE id = 'c2') * 10 + (SELECT count(*) FROM events)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 10 {
		t.Errorf("customers*10+events = %d: want c2 stored by the good item, no event from the refused one", n)
	}
}
