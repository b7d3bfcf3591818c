package channels_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/channels"
)

// recorder is an HTTP provider that answers with the next status in line
// (200 when the line is empty) and records each request.
type recorder struct {
	mu       sync.Mutex
	statuses []int
	reqs     []*http.Request
	bodies   [][]byte
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, r)
	rc.bodies = append(rc.bodies, body)
	status := http.StatusOK
	if len(rc.statuses) > 0 {
		status, rc.statuses = rc.statuses[0], rc.statuses[1:]
	}
	rc.mu.Unlock()
	w.WriteHeader(status)
	if status == http.StatusOK {
		_, _ = io.WriteString(w, `{"sid":"SM123"}`)
	} else {
		_, _ = io.WriteString(w, `{"message":"nope"}`)
	}
}

func (rc *recorder) fail(statuses ...int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.statuses = statuses
}

func TestSMSPostsFormWithAuthAndIdempotencyKey(t *testing.T) {
	t.Parallel()
	rc := &recorder{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	sms, err := channels.NewSMS(channels.SMSConfig{URL: srv.URL + "/Messages.json", User: "AC1", Token: "s3cret-token", From: "+15005550006"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m := channels.Message{Key: "en1/sms/1", Channel: "sms", To: "+49 151 1234 5678", Text: "积分到账 100"}
	id, err := sms.Deliver(ctx, m)
	if err != nil || id != "SM123" {
		t.Fatalf("deliver: id %q err %v", id, err)
	}
	r, body := rc.reqs[0], rc.bodies[0]
	form, _ := url.ParseQuery(string(body))
	if form.Get("To") != m.To || form.Get("From") != "+15005550006" || form.Get("Body") != m.Text {
		t.Errorf("form = %v", form)
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != "AC1" || pass != "s3cret-token" {
		t.Errorf("basic auth = %q %q %v", user, pass, ok)
	}
	if r.Header.Get("Idempotency-Key") != m.Key {
		t.Errorf("Idempotency-Key = %q", r.Header.Get("Idempotency-Key"))
	}

	for _, tc := range []struct {
		status    int
		permanent bool
	}{{400, true}, {401, true}, {404, true}, {408, false}, {429, false}, {500, false}, {503, false}} {
		rc.fail(tc.status)
		_, err := sms.Deliver(ctx, m)
		if err == nil || channels.Permanent(err) != tc.permanent {
			t.Errorf("status %d: err = %v, permanent %v, want %v", tc.status, err, channels.Permanent(err), tc.permanent)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret-token") {
			t.Errorf("status %d: error leaks the token: %v", tc.status, err)
		}
	}
	if _, err := sms.Deliver(ctx, channels.Message{Key: "k", To: "call me maybe", Text: "x"}); !channels.Permanent(err) {
		t.Errorf("invalid number: err = %v, want permanent", err)
	}
}

func TestSMSTransportErrorIsTransientAndHidesCredentials(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close() // nothing listens any more
	withCreds := strings.Replace(u, "http://", "http://AC1:pa55word@", 1)
	sms, err := channels.NewSMS(channels.SMSConfig{URL: withCreds, From: "+15005550006", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sms.Deliver(context.Background(), channels.Message{Key: "k", To: "+4915112345678", Text: "x"})
	if err == nil || channels.Permanent(err) {
		t.Fatalf("connection refused: err = %v, want transient", err)
	}
	if strings.Contains(err.Error(), "pa55word") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestWebhookSignedAndVerifiable(t *testing.T) {
	t.Parallel()
	secret := []byte("whsec-test")
	rc := &recorder{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	wh, err := channels.NewWebhook(channels.WebhookConfig{URL: srv.URL, Secret: secret, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m := channels.Message{Key: "en1/wechat/1", Channel: "webhook", To: "c1", CustomerID: "c1", Template: "care", Text: "生日快乐"}
	if _, err := wh.Deliver(ctx, m); err != nil {
		t.Fatal(err)
	}
	r, body := rc.reqs[0], rc.bodies[0]
	sig := r.Header.Get(channels.SignatureHeader)
	if r.Header.Get("Idempotency-Key") != m.Key || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", r.Header)
	}
	var p channels.WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil || p.Key != m.Key || p.CustomerID != "c1" || p.Text != m.Text {
		t.Errorf("payload = %+v (%v)", p, err)
	}
	if err := channels.VerifyWebhook(secret, sig, body, now.Add(2*time.Minute), 5*time.Minute); err != nil {
		t.Errorf("valid signature rejected: %v", err)
	}
	checks := []struct {
		name   string
		secret []byte
		header string
		body   []byte
		at     time.Time
		want   error
	}{
		{"replayed later", secret, sig, body, now.Add(10 * time.Minute), channels.ErrSignatureStale},
		{"from the future", secret, sig, body, now.Add(-10 * time.Minute), channels.ErrSignatureStale},
		{"body changed", secret, sig, []byte(strings.Replace(string(body), "c1", "c2", 1)), now, channels.ErrSignatureMismatch},
		{"wrong secret", []byte("other"), sig, body, now, channels.ErrSignatureMismatch},
		{"timestamp changed", secret, strings.Replace(sig, "t=", "t=1", 1), body, now, channels.ErrSignatureMismatch},
		{"no header", secret, "", body, now, channels.ErrSignatureMissing},
	}
	for _, c := range checks {
		if err := channels.VerifyWebhook(c.secret, c.header, c.body, c.at, 5*time.Minute); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	// A rotated secret: the header may carry several v1 signatures.
	rotated := channels.SignWebhook([]byte("new"), now, body) + "," + strings.Split(sig, ",")[1]
	if err := channels.VerifyWebhook(secret, rotated, body, now, time.Minute); err != nil {
		t.Errorf("old secret among rotated signatures rejected: %v", err)
	}

	rc.fail(502)
	if _, err := wh.Deliver(ctx, m); err == nil || channels.Permanent(err) {
		t.Errorf("502: err = %v, want transient", err)
	}
	rc.fail(422)
	if _, err := wh.Deliver(ctx, m); !channels.Permanent(err) || channels.Reason(err) != "http_422" {
		t.Errorf("422: err = %v, want permanent http_422", err)
	}
}

func TestWebhookRequiresSecret(t *testing.T) {
	t.Parallel()
	if _, err := channels.NewWebhook(channels.WebhookConfig{URL: "https://x.example/hook"}); err == nil || !strings.Contains(err.Error(), "RAPPORT_WEBHOOK_SECRET") {
		t.Errorf("err = %v, want RAPPORT_WEBHOOK_SECRET required", err)
	}
}
