package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/api"
	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/feedback"
	"github.com/rapport-crm/rapport/report"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
	"github.com/rapport-crm/rapport/tracking"
)

// trackedTarget is the link of e2e/testdata/tracked.yaml's welcome.
const trackedTarget = "https://shop.example.com/start?ref=welcome"

// TestTrackedClickBounceSuppressesNextSend is issue #14's delivery loop
// on the real components: the welcome goes through SMTP with its link
// rewritten to the tracker; following the link through the API redirects
// to the signed target and records message_clicked; a signed SendGrid
// bounce webhook records message_bounced and suppresses the address; the
// next welcome to it is suppressed with the bounce as reason; and the
// report's welcome step shows one sent, clicked and bounced. The branch
// a wait on message_opened takes is TestWaitOnMessageOpenedTakesTheRightBranch.
func TestTrackedClickBounceSuppressesNextSend(t *testing.T) {
	t.Parallel()
	key, pub := sendGridKey(t)
	secret := []byte("e2e-tracking-secret")
	e := newEnvWith(t, nsDeliver, envOptions{trackingSecret: secret, feedback: &api.FeedbackOptions{
		SendGridKey: pub, TrackingSecret: secret, PublicURL: storetest.PublicURL,
	}})
	e.deploy("tracked.yaml")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	e.post("/v1/identify", `{"userId":"bo","traits":{"email":"bo@example.com","name":"Bo","locale":"en"}}`)
	e.post("/v1/track", `{"userId":"bo","event":"signup","messageId":"signup-bo-1"}`)
	link := e.trackedLink(ctx, "bo@example.com")
	msgKey, providerID := e.sentMessage(ctx, "bo")

	e.followTrackedLink(link)
	e.wantMessageEvent(ctx, msgKey, feedback.Clicked, "bo")

	bounce := fmt.Sprintf(`[{"email":"bo@example.com","timestamp":%d,"smtp-id":"<%s>","event":"bounce","type":"bounce","sg_event_id":"e2e-bounce-1","status":"5.1.1","reason":"550 5.1.1 no such user"}]`,
		time.Now().Unix(), providerID)
	e.postSendGrid(key, bounce)
	e.postSendGrid(key, bounce) // the provider's retry records nothing twice
	e.wantMessageEvent(ctx, msgKey, feedback.Bounced, "bo")
	e.wantSuppressed(ctx, "bo@example.com", activities.ReasonHardBounce)

	// The first journey ends after its send; the next signup enrolls
	// again, and its welcome is suppressed by the bounce.
	e.eventually(time.Minute, func() string {
		if en := e.enrollments("e2e_tracked")["bo"]; en.Status != string(activities.StatusCompleted) {
			return errorf("first enrollment %s, want completed", en.Status)
		}
		return ""
	})
	e.post("/v1/track", `{"userId":"bo","event":"signup","messageId":"signup-bo-2"}`)
	e.eventually(time.Minute, func() string {
		var status, reason string
		err := e.st.Pool().QueryRow(ctx, `SELECT status, reason FROM messages WHERE customer_id = 'bo' AND key <> $1`, msgKey).Scan(&status, &reason)
		if err != nil {
			return "second message: " + err.Error()
		}
		if status != "suppressed" || reason != activities.ReasonHardBounce {
			return errorf("second message %s (%s), want suppressed (hard_bounce)", status, reason)
		}
		return ""
	})
	if n := len(e.mail.Mails()); n != 1 {
		t.Errorf("%d mails, want only the first welcome", n)
	}
	e.wantWelcomeStep(ctx)
}

// sendGridKey makes a Signed Event Webhook key pair and reads the public
// half as RAPPORT_SENDGRID_WEBHOOK_PUBLIC_KEY is read (base64 DER).
func sendGridKey(t *testing.T) (*ecdsa.PrivateKey, *ecdsa.PublicKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := feedback.SendGridPublicKey(base64.StdEncoding.EncodeToString(der))
	if err != nil {
		t.Fatal(err)
	}
	return key, pub
}

// trackedLink waits for the mail to to and returns its tracked link,
// checking the original target is no longer in the text.
func (e *env) trackedLink(ctx context.Context, to string) string {
	e.t.Helper()
	m, err := e.mail.WaitFor(ctx, func(m devenv.Mail) bool { return contains(m.To, to) })
	if err != nil {
		e.t.Fatal(err)
	}
	link := regexp.MustCompile(regexp.QuoteMeta(storetest.PublicURL+tracking.ClickPath) + `\S+`).FindString(m.Text)
	if link == "" || strings.Contains(m.Text, trackedTarget) {
		e.t.Fatalf("mail text %q: want the link rewritten to the tracker", m.Text)
	}
	return link
}

// sentMessage waits for the customer's message to be sent and returns
// its key and the provider's id (the SMTP Message-ID).
func (e *env) sentMessage(ctx context.Context, customer string) (key, providerID string) {
	e.t.Helper()
	e.eventually(time.Minute, func() string {
		var status string
		err := e.st.Pool().QueryRow(ctx, `SELECT key, status, provider_id FROM messages WHERE customer_id = $1`, customer).
			Scan(&key, &status, &providerID)
		if err != nil {
			return "messages row: " + err.Error()
		}
		if status != "sent" || providerID == "" {
			return errorf("message %s %s (%q), want sent with a provider id", key, status, providerID)
		}
		return ""
	})
	return key, providerID
}

// followTrackedLink requests the tracked link from the API, as the
// customer's browser does, and wants a 302 to the signed target.
func (e *env) followTrackedLink(link string) {
	e.t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(e.api.URL + strings.TrimPrefix(link, storetest.PublicURL))
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != trackedTarget {
		e.t.Fatalf("GET %s: %d to %q, want 302 to %s", link, res.StatusCode, res.Header.Get("Location"), trackedTarget)
	}
}

// postSendGrid posts a Signed Event Webhook call and wants 200.
func (e *env) postSendGrid(key *ecdsa.PrivateKey, body string) {
	e.t.Helper()
	ts := fmt.Sprint(time.Now().Unix())
	h := sha256.Sum256([]byte(ts + body))
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		e.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.api.URL+api.SendGridPath, strings.NewReader(body))
	req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", base64.StdEncoding.EncodeToString(sig))
	req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("SendGrid webhook: %d, want 200", res.StatusCode)
	}
}

// wantMessageEvent wants exactly one status-history row of kind for the
// message and one customer event message_<kind> for it.
func (e *env) wantMessageEvent(ctx context.Context, msgKey, kind, customer string) {
	e.t.Helper()
	var history, events int
	err := e.st.Pool().QueryRow(ctx, `
		SELECT (SELECT count(*) FROM message_events WHERE message_key = $1 AND kind = $2),
			(SELECT count(*) FROM events WHERE customer_id = $3 AND name = 'message_' || $2 AND props->>'message_key' = $1)`,
		msgKey, kind, customer).Scan(&history, &events)
	if err != nil {
		e.t.Fatal(err)
	}
	if history != 1 || events != 1 {
		e.t.Errorf("%s: %d message_events rows and %d message_%s events, want 1 and 1", kind, history, events, kind)
	}
}

// wantSuppressed wants the email address on the suppression list.
func (e *env) wantSuppressed(ctx context.Context, address, reason string) {
	e.t.Helper()
	var got string
	var at *time.Time
	err := e.st.Pool().QueryRow(ctx, `SELECT reason, suppressed_at FROM suppressions WHERE channel = 'email' AND address = $1`, address).
		Scan(&got, &at)
	if err != nil {
		e.t.Fatalf("suppression of %s: %v", address, err)
	}
	if got != reason || at == nil {
		e.t.Errorf("suppression of %s: %q at %v, want %q and a date", address, got, at, reason)
	}
}

// wantWelcomeStep reads the report as `rapport report` does and wants the
// welcome step's figures: reached twice, one sent (clicked and bounced:
// rates 1), one suppressed by the bounce.
func (e *env) wantWelcomeStep(ctx context.Context) {
	e.t.Helper()
	in, err := e.st.ReportInput(ctx, store.ReportQuery{Playbook: "e2e_tracked"})
	if err != nil {
		e.t.Fatal(err)
	}
	r := report.Build(in)
	if len(r.Playbooks) != 1 {
		e.t.Fatalf("report has %d playbooks, want e2e_tracked", len(r.Playbooks))
	}
	for _, s := range r.Playbooks[0].Steps {
		if s.Step != "welcome" {
			continue
		}
		if s.Reached != 2 || s.Sent != 1 || s.Suppressed[activities.ReasonHardBounce] != 1 || s.Clicked != 1 || s.Bounced != 1 ||
			rate(s.ClickRate) != 1 || rate(s.BounceRate) != 1 || rate(s.OpenRate) != 0 {
			e.t.Errorf("welcome step %+v, want reached 2, sent 1, suppressed hard_bounce 1, clicked and bounced 1 (rates 1), opened 0", s)
		}
		return
	}
	e.t.Errorf("report steps %+v: no welcome step", r.Playbooks[0].Steps)
}

// rate is a report rate, -1 for null.
func rate(r *float64) float64 {
	if r == nil {
		return -1
	}
	return *r
}
