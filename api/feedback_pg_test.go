package api

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/feedback"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
	"github.com/rapport-crm/rapport/tracking"
)

const testTopic = "arn:aws:sns:us-east-1:123456789012:ses-feedback"

// feedbackHarness is a server over a fresh database with every provider
// endpoint configured with test keys.
type feedbackHarness struct {
	*harness
	st       *store.Store
	sgKey    *ecdsa.PrivateKey
	snsKey   *rsa.PrivateKey
	snsCert  *x509.Certificate
	visited  []string
	mgKey    []byte
	twilio   string
	trackKey []byte
}

func newFeedbackHarness(t *testing.T, edit func(*FeedbackOptions)) *feedbackHarness {
	t.Helper()
	t.Parallel()
	f := &feedbackHarness{st: storetest.New(t), mgKey: []byte("key-mailgun-test"), twilio: "twilio-token", trackKey: []byte("track")}
	f.sgKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.snsKey, f.snsCert = selfSigned(t)
	o := &FeedbackOptions{
		Recorder: f.st, SESTopicARNs: []string{testTopic}, SendGridKey: &f.sgKey.PublicKey, MailgunKey: f.mgKey,
		TwilioToken: f.twilio, PublicURL: "https://rapport.test", TrackingSecret: f.trackKey,
		SNSCerts: func(_ context.Context, u string) (*x509.Certificate, error) { return f.snsCert, nil },
		SNSClient: &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
			f.visited = append(f.visited, r.URL.String())
			return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("<ok/>"))}, nil
		})},
	}
	if edit != nil {
		edit(o)
	}
	f.harness = &harness{t: t, disp: &fakeDispatcher{}}
	srv, err := NewServer(Options{APIKey: testKey, Store: PGStore{f.st}, Dispatcher: f.disp, Feedback: o,
		Now: func() time.Time { return testNow }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	return f
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// selfSigned makes the RSA key and certificate that stand in for SNS's.
func selfSigned(t *testing.T) (*rsa.PrivateKey, *x509.Certificate) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert
}

// seedMessage records a sent email whose provider id is id.
func (f *feedbackHarness) seedMessage(key, customer, email, providerID string) {
	f.t.Helper()
	ctx := context.Background()
	_, err := f.st.Pool().Exec(ctx, `INSERT INTO customers (id, email) VALUES ($1, $2) ON CONFLICT DO NOTHING`, customer, email)
	if err == nil {
		_, err = f.st.Pool().Exec(ctx, `INSERT INTO messages (key, enrollment_id, customer_id, playbook, step_id, channel, template, topic,
			recipient, status, provider_id, created_at) VALUES ($1, 'e1', $2, 'winback', 'mail', 'email', 'miss_you', 'marketing', $3, 'sent', $4, now())`,
			key, customer, email, providerID)
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *feedbackHarness) count(sql string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.st.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *feedbackHarness) post(path, body, contentType string, headers ...string) *httptest.ResponseRecorder {
	return f.do("POST", path, body, append([]string{"Content-Type", contentType, "Authorization", ""}, headers...)...)
}

func readTestdata(t *testing.T, name string) string {
	b, err := os.ReadFile("testdata/feedback/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (f *feedbackHarness) sendGridSign(body, ts string) string {
	h := sha256.Sum256([]byte(ts + body))
	sig, err := ecdsa.SignASN1(rand.Reader, f.sgKey, h[:])
	if err != nil {
		f.t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// SendGrid's documented sample events, signed as the Signed Event Webhook
// signs: recorded once each, the bounce suppresses the address, a replay
// and a bad signature change nothing.
func TestFeedbackSendGrid(t *testing.T) {
	f := newFeedbackHarness(t, nil)
	f.seedMessage("e1/mail/1", "c1", "example@test.com", "14c5d75ce93.dfd.64b469@ismtpd-555")
	body := readTestdata(t, "sendgrid_events.json")
	bad := f.post(SendGridPath, body, "application/json", "X-Twilio-Email-Event-Webhook-Signature", f.sendGridSign(body, "1"),
		"X-Twilio-Email-Event-Webhook-Timestamp", "2")
	if bad.Code != http.StatusUnauthorized || f.count(`SELECT count(*) FROM message_events`) != 0 {
		t.Fatalf("bad signature: %d, %d rows", bad.Code, f.count(`SELECT count(*) FROM message_events`))
	}
	for i := 0; i < 2; i++ { // the second is a replay
		rec := f.post(SendGridPath, body, "application/json", "X-Twilio-Email-Event-Webhook-Signature", f.sendGridSign(body, "1513299569"),
			"X-Twilio-Email-Event-Webhook-Timestamp", "1513299569")
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	if n := f.count(`SELECT count(*) FROM message_events WHERE message_key = 'e1/mail/1'`); n != 4 {
		t.Errorf("%d status rows, want 4 (delivered, open, click, bounce; processed ignored)", n)
	}
	if n := f.count(`SELECT count(*) FROM events WHERE name IN ('message_delivered', 'message_opened', 'message_clicked', 'message_bounced')`); n != 4 {
		t.Errorf("%d customer events, want 4", n)
	}
	if n := f.count(`SELECT count(*) FROM suppressions WHERE address = 'example@test.com' AND reason = 'hard_bounce'`); n != 1 {
		t.Errorf("the hard bounce did not suppress the address")
	}
	if d := f.disp.dispatched(); len(d) != 4 || d[0].Event.Props["provider"] != "sendgrid" {
		t.Errorf("dispatched %+v, want the 4 events once", d)
	}
}

// A SendGrid array with an event that names neither a message nor an
// address is refused whole with 400 (a retry would be refused the same),
// and none of its events is recorded.
func TestFeedbackSendGridUnattributableIs400(t *testing.T) {
	f := newFeedbackHarness(t, nil)
	f.seedMessage("e1/mail/1", "c1", "ada@example.com", "m1@rapport.test")
	body := `[{"email":"ada@example.com","timestamp":1513299569,"smtp-id":"<m1@rapport.test>","event":"delivered","sg_event_id":"ok1"},
		{"timestamp":1513299569,"event":"bounce","type":"bounce","sg_event_id":"nobody"}]`
	rec := f.post(SendGridPath, body, "application/json", "X-Twilio-Email-Event-Webhook-Signature", f.sendGridSign(body, "1513299569"),
		"X-Twilio-Email-Event-Webhook-Timestamp", "1513299569")
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "msg-sendgrid-nobody") {
		t.Fatalf("status %d %s, want 400 naming the event", rec.Code, rec.Body)
	}
	if n := f.count(`SELECT count(*) FROM message_events`); n != 0 {
		t.Errorf("%d status rows, want none of the refused array", n)
	}
}

// Mailgun's documented permanent-failure payload, signed with the
// webhook signing key: a hard bounce; a wrong signature is 401.
func TestFeedbackMailgun(t *testing.T) {
	f := newFeedbackHarness(t, nil)
	f.seedMessage("e1/mail/1", "c1", "alice@example.com", "20130503192659.13651.20287@sample.mailgun.org")
	raw := readTestdata(t, "mailgun_failed_permanent.json")
	mac := hmac.New(sha256.New, f.mgKey)
	mac.Write([]byte("1529006854" + "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"))
	if rec := f.post(MailgunPath, raw, "application/json"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("unsigned: %d", rec.Code)
	}
	body := strings.Replace(raw, "SIGNED_IN_TEST", hex.EncodeToString(mac.Sum(nil)), 1)
	if rec := f.post(MailgunPath, body, "application/json"); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if n := f.count(`SELECT count(*) FROM message_events WHERE id = 'msg-mailgun-G9Bn5sl1TC6nu79C8C0bwg' AND bounce = 'hard'`); n != 1 {
		t.Errorf("hard bounce not recorded")
	}
}

// snsEnvelope wraps message in an SNS delivery signed with the test key.
func (f *feedbackHarness) snsEnvelope(typ, message, version string) string {
	m := feedback.SNSMessage{Type: typ, MessageID: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324", TopicArn: testTopic,
		Message: message, Timestamp: "2016-01-27T14:59:38.237Z", SignatureVersion: version,
		SigningCertURL: "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"}
	if typ == "SubscriptionConfirmation" {
		m.Token = "2336412f37"
		m.SubscribeURL = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + url.QueryEscape(testTopic) + "&Token=2336412f37"
	}
	hash, h := crypto.SHA256, sha256.Sum256([]byte(m.StringToSign()))
	digest := h[:]
	if version == "1" {
		hash = crypto.SHA1
		s := sha1Sum(m.StringToSign())
		digest = s
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, f.snsKey, hash, digest)
	if err != nil {
		f.t.Fatal(err)
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
	b, _ := json.Marshal(m)
	return string(b)
}

// Amazon SES's documented bounce notification through SNS, signed with
// SignatureVersion 1 and 2; the subscription is confirmed; a notification
// of another topic or with a bad signature is 401.
func TestFeedbackSES(t *testing.T) {
	f := newFeedbackHarness(t, nil)
	f.seedMessage("e1/mail/1", "c1", "jane@example.com", "custom-message-ID")
	if rec := f.post(SESPath, f.snsEnvelope("SubscriptionConfirmation", "You have chosen to subscribe", "2"), "text/plain"); rec.Code != 200 || len(f.visited) != 1 {
		t.Fatalf("confirmation: %d, visited %v", rec.Code, f.visited)
	}
	note := f.snsEnvelope("Notification", readTestdata(t, "ses_bounce_message.json"), "1")
	tampered := strings.Replace(note, `2016-01-27T14:59:38.237Z","SignatureVersion`, `2016-01-27T14:59:39.237Z","SignatureVersion`, 1)
	if rec := f.post(SESPath, tampered, "text/plain"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("tampered: %d", rec.Code)
	}
	if rec := f.post(SESPath, note, "text/plain"); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if n := f.count(`SELECT count(*) FROM suppressions WHERE address = 'jane@example.com' AND reason = 'hard_bounce'`); n != 1 {
		t.Errorf("SES hard bounce did not suppress")
	}
	if n := f.count(`SELECT count(*) FROM events WHERE id = 'msg-ses-22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324' AND props->>'bounce' = 'hard'`); n != 1 {
		t.Errorf("customer event missing")
	}
	if err := feedback.CheckSNSURL("https://sns.us-east-1.amazonaws.com.evil.example/x.pem"); err == nil {
		t.Error("a foreign certificate host is accepted")
	}
}

// A Twilio status callback as Twilio documents it, signed with
// X-Twilio-Signature: undelivered with 30005 is a hard bounce.
func TestFeedbackTwilio(t *testing.T) {
	f := newFeedbackHarness(t, nil)
	f.seedMessage("e1/sms/1", "c1", "+15558675310", "SMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX")
	form := url.Values{"MessageSid": {"SMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}, "SmsSid": {"SMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"},
		"AccountSid": {"ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}, "MessageStatus": {"undelivered"}, "SmsStatus": {"undelivered"},
		"ErrorCode": {"30005"}, "To": {"+15558675310"}, "From": {"+15017122661"}, "ApiVersion": {"2010-04-01"}}
	sig := twilioSignature(f.twilio, "https://rapport.test"+TwilioPath, form)
	if rec := f.post(TwilioPath, form.Encode(), "application/x-www-form-urlencoded", "X-Twilio-Signature", "bad"); rec.Code != 401 {
		t.Fatalf("bad signature: %d", rec.Code)
	}
	if rec := f.post(TwilioPath, form.Encode(), "application/x-www-form-urlencoded", "X-Twilio-Signature", sig); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if n := f.count(`SELECT count(*) FROM message_events WHERE kind = 'bounced' AND bounce = 'hard' AND provider = 'twilio'`); n != 1 {
		t.Errorf("twilio bounce not recorded")
	}
}

// A signed tracked link records the click once and redirects to its own
// target only; a forged one redirects nowhere.
func TestTrackedClick(t *testing.T) {
	f := newFeedbackHarness(t, nil)
	f.seedMessage("e1/mail/1", "c1", "ada@example.com", "x@y")
	link := tracking.Tracker{Secret: f.trackKey, PublicURL: "https://rapport.test"}.ClickURL("e1/mail/1", "https://shop.example/new?a=1")
	path := strings.TrimPrefix(link, "https://rapport.test")
	for i := 0; i < 2; i++ {
		rec := f.do("GET", path, "")
		if rec.Code != http.StatusFound || rec.Header().Get("Location") != "https://shop.example/new?a=1" {
			t.Fatalf("click: %d to %q", rec.Code, rec.Header().Get("Location"))
		}
	}
	if n := f.count(`SELECT count(*) FROM events WHERE name = 'message_clicked' AND props->>'provider' = 'rapport'`); n != 1 {
		t.Errorf("%d click events, want 1", n)
	}
	forged := tracking.Token([]byte("other"), tracking.Claims{Kind: tracking.Click, MessageKey: "e1/mail/1", URL: "https://evil.example"})
	if rec := f.do("GET", tracking.ClickPath+forged, ""); rec.Code != 404 || rec.Header().Get("Location") != "" {
		t.Fatalf("forged link: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	open := tracking.Tracker{Secret: f.trackKey, PublicURL: ""}.OpenURL("e1/mail/1")
	if rec := f.do("GET", open, ""); rec.Code != 200 || rec.Header().Get("Content-Type") != "image/gif" {
		t.Fatalf("pixel: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
}

// An endpoint without its key is not there.
func TestFeedbackUnconfiguredIs404(t *testing.T) {
	f := newFeedbackHarness(t, func(o *FeedbackOptions) { *o = FeedbackOptions{Recorder: o.Recorder} })
	for _, p := range []string{SESPath, SendGridPath, MailgunPath, TwilioPath} {
		if rec := f.post(p, "[]", "application/json"); rec.Code != 404 {
			t.Errorf("%s: %d, want 404", p, rec.Code)
		}
	}
}

func sha1Sum(s string) []byte {
	h := crypto.SHA1.New()
	h.Write([]byte(s))
	return h.Sum(nil)
}
