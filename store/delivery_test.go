package store_test

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/channels"
	"github.com/rapport-crm/rapport/channels/smtptest"
	"github.com/rapport-crm/rapport/delivery"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store/storetest"
	"github.com/rapport-crm/rapport/unsubscribe"
)

// A marketing email goes through the outbox to a real SMTP server:
// rendered per customer, the hostile name escaped in HTML and kept plain
// in text, the unsubscribe link signed for this customer, and a retry of
// the same key neither records nor sends a second message.
func TestSendEmailEndToEnd(t *testing.T) {
	t.Parallel()
	smtpSrv := smtptest.Start(t)
	email, err := channels.NewEmail(channels.SMTPConfig{Addr: smtpSrv.Addr, From: "Shop <hello@shop.example>", TLS: channels.TLSNone})
	if err != nil {
		t.Fatal(err)
	}
	d := storetest.Delivery()
	d.Channels["email"] = email
	s := storetest.New(t)
	snd := delivery.Sender{Outbox: s, Config: d}
	ctx := context.Background()
	hostile := `李雷 <script>alert("x")</script>`
	c := mustCustomer(t, s, rules.Customer{ID: "c1", Email: "li@example.com", Name: hostile, Locale: "zh"})
	r := sendReq(enrollment("en1", "winback", "c1"), c, "en1/mail/1", t0)
	r.Locale = "zh"
	r.Subject = "{{ customer.name }}，好久不见"
	r.Text = "您好 {{ customer.name }}，我们想念您。退订：{{ unsubscribe_url }}"
	r.HTML = `<p>您好 {{ customer.name }}</p><a href="{{ unsubscribe_url }}">退订</a>`

	for range 2 {
		res, err := snd.SendMessage(ctx, r)
		if err != nil || res.Status != activities.SendSent || res.To != "li@example.com" {
			t.Fatalf("send: %+v %v", res, err)
		}
	}
	msgs := smtpSrv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("SMTP server got %d messages, want 1", len(msgs))
	}
	p, err := msgs[0].Decode()
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(p.Header.Get("Subject"))
	if subject != hostile+"，好久不见" {
		t.Errorf("subject = %q", subject)
	}
	if !strings.Contains(p.Text, "您好 "+hostile+"，我们想念您") {
		t.Errorf("text part = %q, want the name as plain text", p.Text)
	}
	if strings.Contains(p.HTML, "<script>") || !strings.Contains(p.HTML, "&lt;script&gt;") {
		t.Errorf("html part = %q, want the name escaped", p.HTML)
	}
	if p.Header.Get("Content-Language") != "zh" || p.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Errorf("headers = %v", p.Header)
	}
	link := strings.Trim(p.Header.Get("List-Unsubscribe"), "<>")
	u, err := url.Parse(link)
	if err != nil || !strings.HasPrefix(link, storetest.PublicURL+unsubscribe.Path) {
		t.Fatalf("List-Unsubscribe %q", link)
	}
	claims, err := unsubscribe.Verify(storetest.Secret, u.Query().Get("token"), t0)
	if err != nil || claims.Customer != "c1" || claims.Channel != "email" || claims.Topic != "marketing" {
		t.Errorf("unsubscribe claims %+v %v", claims, err)
	}
	if !strings.Contains(p.Text, link) {
		t.Errorf("text part does not carry the unsubscribe link %s", link)
	}
	if n := count(t, s, `SELECT count(*) FROM messages WHERE status = 'sent' AND attempts = 1 AND provider_id = $1 AND subject = $2`,
		email.MessageID(r.Key), subject); n != 1 {
		t.Errorf("outbox row not recorded sent once with the Message-ID and subject")
	}
}

// provider answers with the next status in line (200 when empty).
type provider struct {
	mu       sync.Mutex
	statuses []int
	keys     []string
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = append(p.keys, r.Header.Get("Idempotency-Key"))
	status := http.StatusOK
	if len(p.statuses) > 0 {
		status, p.statuses = p.statuses[0], p.statuses[1:]
	}
	w.WriteHeader(status)
	if status == http.StatusOK {
		_, _ = w.Write([]byte(`{"sid":"SM1"}`))
	}
}

// A 5xx leaves the message queued and the activity failing (so it is
// retried with the same key); the retry delivers it once. A 4xx fails the
// message for good and the journey goes on.
func TestSendSMSRetryAndPermanentFailure(t *testing.T) {
	t.Parallel()
	prov := &provider{statuses: []int{503}}
	srv := httptest.NewServer(prov)
	defer srv.Close()
	sms, err := channels.NewSMS(channels.SMSConfig{URL: srv.URL, From: "+15005550006"})
	if err != nil {
		t.Fatal(err)
	}
	d := storetest.Delivery()
	d.Channels["sms"] = sms
	s := storetest.New(t)
	snd := delivery.Sender{Outbox: s, Config: d}
	ctx := context.Background()
	c := mustCustomer(t, s, rules.Customer{ID: "c1", Phone: "+4915112345678"})
	r := sendReq(enrollment("en1", "loyalty", "c1"), c, "en1/sms/1", t0)
	r.Channel, r.Subject, r.HTML = "sms", "", ""

	_, err = snd.SendMessage(ctx, r)
	if err == nil || errors.Is(err, activities.ErrPermanent) {
		t.Fatalf("503: err = %v, want a retryable error", err)
	}
	if n := count(t, s, `SELECT count(*) FROM messages WHERE status = 'queued' AND attempts = 1 AND reason = 'http_503'`); n != 1 {
		t.Errorf("after 503 the message is not queued with one attempt")
	}
	res, err := snd.SendMessage(ctx, r)
	if err != nil || res.Status != activities.SendSent || res.ProviderID != "SM1" {
		t.Fatalf("retry: %+v %v, want sent", res, err)
	}
	if res, _ := snd.SendMessage(ctx, r); res.Status != activities.SendSent || len(prov.keys) != 2 {
		t.Errorf("third call: %+v after %d provider calls, want the recorded sent and no new call", res, len(prov.keys))
	}
	if prov.keys[0] != r.Key || prov.keys[1] != r.Key {
		t.Errorf("Idempotency-Keys %v, want the send key each time", prov.keys)
	}

	prov.mu.Lock()
	prov.statuses = []int{400}
	prov.mu.Unlock()
	r.Key = "en1/sms/2"
	res, err = snd.SendMessage(ctx, r)
	if err != nil || res.Status != activities.SendFailed || res.Reason != "http_400" {
		t.Fatalf("400: %+v %v, want failed/http_400 and no error", res, err)
	}
	if res, _ := snd.SendMessage(ctx, r); res.Status != activities.SendFailed || len(prov.keys) != 3 {
		t.Errorf("retry after 400: %+v after %d provider calls, want the recorded failure and no new call", res, len(prov.keys))
	}
}

// The webhook receiver can verify what the store sent through it.
func TestSendWebhookSigned(t *testing.T) {
	t.Parallel()
	secret := []byte("whsec")
	var verr error
	var got int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got++
		verr = channels.VerifyWebhook(secret, r.Header.Get(channels.SignatureHeader), body, t0Now(), 5*time.Minute)
	}))
	defer srv.Close()
	wh, err := channels.NewWebhook(channels.WebhookConfig{URL: srv.URL, Secret: secret, Now: t0Now})
	if err != nil {
		t.Fatal(err)
	}
	d := storetest.Delivery()
	d.Channels["webhook"] = wh
	s := storetest.New(t)
	snd := delivery.Sender{Outbox: s, Config: d}
	c := mustCustomer(t, s, rules.Customer{ID: "c1"})
	r := sendReq(enrollment("en1", "care", "c1"), c, "en1/hook/1", t0)
	r.Channel = "webhook"
	res, err := snd.SendMessage(context.Background(), r)
	if err != nil || res.Status != activities.SendSent || res.To != "c1" || got != 1 || verr != nil {
		t.Errorf("webhook: %+v %v, %d deliveries, verify %v", res, err, got, verr)
	}
}
