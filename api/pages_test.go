package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/unsubscribe"
)

var testSecret = []byte("unsubscribe-secret")

// fakeApplier records withdrawals.
type fakeApplier struct {
	mu   sync.Mutex
	got  []unsubscribe.Claims
	fail error
}

func (a *fakeApplier) Unsubscribe(_ context.Context, c unsubscribe.Claims) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.got = append(a.got, c)
	return nil
}

func unsubHarness(t *testing.T) (*harness, *fakeApplier) {
	app := &fakeApplier{}
	var h *harness
	h = newHarness(t, func(o *Options) {
		o.Unsubscriber = &TokenUnsubscriber{Secret: testSecret, Applier: app, Customers: o.Store}
	})
	h.store.customers["c1"] = rules.Customer{ID: "c1", Locale: "zh-CN"}
	h.store.customers["c2"] = rules.Customer{ID: "c2"}
	return h, app
}

func token(customer string, expires time.Time) string {
	return unsubscribe.Sign(testSecret, unsubscribe.Claims{Customer: customer, Channel: "email", Topic: "marketing", Expires: expires})
}

func TestUnsubscribeFlow(t *testing.T) {
	h, app := unsubHarness(t)
	tok := token("c2", testNow.Add(time.Hour))

	rec := h.do("GET", "/u/"+tok, "", "Authorization", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "Stop receiving marketing messages from us by email?") || !strings.Contains(rec.Body.String(), `method="post"`) {
		t.Fatalf("GET: status %d: %s", rec.Code, rec.Body)
	}
	if len(app.got) != 0 {
		t.Fatal("GET withdrew consent; mail scanners follow links")
	}
	if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Referrer-Policy") != "no-referrer" {
		t.Error("page is cacheable or leaks the token in Referer")
	}

	rec = h.do("POST", "/u/"+tok, "List-Unsubscribe=One-Click", "Authorization", "", "Content-Type", "application/x-www-form-urlencoded")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "You are unsubscribed from marketing messages by email") {
		t.Fatalf("POST: status %d: %s", rec.Code, rec.Body)
	}
	if len(app.got) != 1 || app.got[0].Customer != "c2" || app.got[0].Topic != "marketing" || app.got[0].Channel != "email" {
		t.Fatalf("withdrawals %+v", app.got)
	}
	// The link unsubscribe.URL makes (/unsubscribe?token=…) works the same.
	link, err := url.Parse(unsubscribe.URL("https://x.example", testSecret, unsubscribe.Claims{Customer: "c2", Channel: "sms", Topic: "*", Expires: testNow.Add(time.Hour)}))
	if err != nil {
		t.Fatal(err)
	}
	rec = h.do("POST", link.RequestURI(), "List-Unsubscribe=One-Click", "Authorization", "", "Content-Type", "application/x-www-form-urlencoded")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "unsubscribed from all messages by SMS") {
		t.Fatalf("POST %s: status %d: %s", link.RequestURI(), rec.Code, rec.Body)
	}
	if len(app.got) != 2 || app.got[1].Topic != unsubscribe.AllTopics {
		t.Fatalf("withdrawals %+v", app.got)
	}
}

func TestUnsubscribeLanguage(t *testing.T) {
	h, _ := unsubHarness(t)
	tests := []struct {
		customer, acceptLanguage, want string
	}{
		{"c1", "", "确定不再通过电子邮件接收我们的营销消息吗"},          // the customer's locale
		{"c1", "en-US", "确定不再通过"},                   // … wins over the browser
		{"c2", "zh-TW,zh;q=0.9", "确定不再通过"},          // no locale: the browser's
		{"c2", "fr-FR, de;q=0.8", "Stop receiving"}, // neither known: English
	}
	for _, tt := range tests {
		rec := h.do("GET", "/u/"+token(tt.customer, testNow.Add(time.Hour)), "", "Accept-Language", tt.acceptLanguage)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("%s with Accept-Language %q: status %d, want %q in: %s", tt.customer, tt.acceptLanguage, rec.Code, tt.want, rec.Body)
		}
	}
}

func TestUnsubscribeBadTokens(t *testing.T) {
	good := token("c2", testNow.Add(time.Hour))
	forged := unsubscribe.Sign([]byte("other secret"), unsubscribe.Claims{Customer: "c2", Channel: "email", Topic: "marketing", Expires: testNow.Add(time.Hour)})
	tests := map[string]string{
		"expired":   token("c2", testNow.Add(-time.Second)),
		"forged":    forged,
		"truncated": good[:len(good)-3],
		"garbage":   "not-a-token",
		"too long":  strings.Repeat("a", maxTokenLen+1),
	}
	for name, tok := range tests {
		t.Run(name, func(t *testing.T) {
			h, app := unsubHarness(t)
			for _, method := range []string{"GET", "POST"} {
				rec := h.do(method, "/u/"+tok, "List-Unsubscribe=One-Click", "Content-Type", "application/x-www-form-urlencoded")
				if rec.Code != http.StatusBadRequest {
					t.Fatalf("%s: status %d, want 400", method, rec.Code)
				}
				body := rec.Body.String()
				if !strings.Contains(body, "not valid or has expired") {
					t.Errorf("%s: page %s", method, body)
				}
				for _, leak := range []string{"signature", "malformed", "expired (at", "c2"} {
					if strings.Contains(body, leak) {
						t.Errorf("%s: page leaks %q", method, leak)
					}
				}
			}
			if len(app.got) != 0 {
				t.Error("a bad token withdrew consent")
			}
		})
	}
	h, _ := unsubHarness(t)
	if rec := h.do("GET", "/unsubscribe", ""); rec.Code != http.StatusBadRequest {
		t.Errorf("no token: status %d, want 400", rec.Code)
	}
}

func TestUnsubscribeStoreFailureIs503(t *testing.T) {
	h, app := unsubHarness(t)
	app.fail = errors.New("db down")
	rec := h.do("POST", "/u/"+token("c2", testNow.Add(time.Hour)), "")
	if rec.Code != http.StatusServiceUnavailable || strings.Contains(rec.Body.String(), "db down") {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}

// TestUnsubscribeUnknownCustomer: a valid link for a customer who is not
// on file (never imported, or erased) gets a clear page, not a 503 that
// asks to retry forever, and is not counted as a withdrawal.
func TestUnsubscribeUnknownCustomer(t *testing.T) {
	h, app := unsubHarness(t)
	app.fail = fmt.Errorf("withdraw: %w", store.ErrNotFound) // what store.Store answers
	tok := token("gone", testNow.Add(time.Hour))
	for _, method := range []string{"GET", "POST"} {
		rec := h.do(method, "/u/"+tok, "List-Unsubscribe=One-Click", "Authorization", "", "Content-Type", "application/x-www-form-urlencoded")
		body := rec.Body.String()
		if rec.Code != http.StatusOK || rec.Header().Get("Retry-After") != "" {
			t.Errorf("%s: status %d, Retry-After %q; want 200 without", method, rec.Code, rec.Header().Get("Retry-After"))
		}
		if !strings.Contains(body, "not on file") || !strings.Contains(body, "marketing messages by email") {
			t.Errorf("%s: page %s", method, body)
		}
		if strings.Contains(body, `method="post"`) {
			t.Errorf("%s: page offers a form for a customer not on file", method)
		}
	}
	if len(app.got) != 0 {
		t.Errorf("withdrawals %+v", app.got)
	}
}

func TestHealth(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("dial tcp 10.0.0.5:7233: refused") }
	tests := []struct {
		name   string
		checks map[string]func(context.Context) error
		status int
		body   string
	}{
		{"all up", map[string]func(context.Context) error{"db": ok, "temporal": ok}, 200, `{"status":"ok","checks":{"db":"ok","temporal":"ok"}}`},
		{"temporal down", map[string]func(context.Context) error{"db": ok, "temporal": down}, 503, `{"status":"unavailable","checks":{"db":"ok","temporal":"unavailable"}}`},
	}
	for _, tt := range tests {
		h := newHarness(t, func(o *Options) { o.Checks = tt.checks })
		rec := h.do("GET", "/healthz", "", "Authorization", "")
		if rec.Code != tt.status || strings.TrimSpace(rec.Body.String()) != tt.body {
			t.Errorf("%s: %d %s, want %d %s", tt.name, rec.Code, rec.Body, tt.status, tt.body)
		}
	}
}

// fakeEnroller records manual starts.
type fakeEnroller struct {
	got []string
	err error
}

func (e *fakeEnroller) Enroll(_ context.Context, playbook string, c rules.Customer, ev rules.Event) (EnrollResult, error) {
	if e.err != nil {
		return EnrollResult{}, e.err
	}
	e.got = append(e.got, playbook+"/"+c.ID+"/"+ev.Name+"/"+ev.ID)
	return EnrollResult{Started: true, WorkflowID: playbook + "/" + c.ID, RunID: "r1"}, nil
}

func TestEnroll(t *testing.T) {
	tests := []struct {
		name, body string
		err        error
		status     int
		want       string
	}{
		{"started", `{"playbook":"vip_care","userId":"c1","messageId":"e1"}`, nil, 200, `"started":true`},
		{"unknown customer", `{"playbook":"vip_care","userId":"nobody"}`, nil, 404, "userId: no customer nobody"},
		{"unknown playbook", `{"playbook":"nope","userId":"c1"}`, ErrUnknownPlaybook, 404, "playbook: no deployed playbook nope"},
		{"not manual", `{"playbook":"winback","userId":"c1"}`, ErrNotManual, 400, "playbook: winback is not a manual playbook"},
		{"bad name", `{"playbook":"Win Back","userId":"c1"}`, nil, 400, "playbook: required"},
		{"bad user", `{"playbook":"vip","userId":"a b"}`, nil, 400, "userId: customer id may only contain"},
		{"unknown field", `{"playbook":"vip","userId":"c1","x":1}`, nil, 400, "x: unknown field"},
		{"temporal down", `{"playbook":"vip","userId":"c1"}`, ErrUnavailable, 503, "enroll temporarily unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enr := &fakeEnroller{err: tt.err}
			h := newHarness(t, func(o *Options) { o.Enroller = enr })
			h.store.customers["c1"] = rules.Customer{ID: "c1"}
			rec := h.do("POST", "/v1/enroll", tt.body)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) {
				t.Fatalf("status %d: %s; want %d with %q", rec.Code, rec.Body, tt.status, tt.want)
			}
			if tt.status == 200 && (len(enr.got) != 1 || enr.got[0] != "vip_care/c1/manual/e1") {
				t.Errorf("enrollments %v", enr.got)
			}
		})
	}
	h := newHarness(t)
	if rec := h.do("POST", "/v1/enroll", `{}`); rec.Code != http.StatusNotImplemented {
		t.Errorf("enroll without an Enroller: %d, want 501", rec.Code)
	}
}
