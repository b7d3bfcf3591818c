package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// TestTwilioSignatureDocumentedExample is the worked example of Twilio's
// request-validation documentation (auth token 12345).
func TestTwilioSignatureDocumentedExample(t *testing.T) {
	form := url.Values{
		"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675309"}, "Digits": {"1234"},
		"From": {"+14158675309"}, "To": {"+18005551212"},
	}
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	if got := twilioSignature("12345", u, form); got != "RSOYDt4T1cUTdK1PDd93/VVr8B8=" {
		t.Errorf("signature = %s, want Twilio's RSOYDt4T1cUTdK1PDd93/VVr8B8=", got)
	}
	if !validTwilioSignature("12345", u, form, "RSOYDt4T1cUTdK1PDd93/VVr8B8=") {
		t.Error("the documented signature is refused")
	}
	form.Set("Digits", "1235")
	if validTwilioSignature("12345", u, form, "RSOYDt4T1cUTdK1PDd93/VVr8B8=") {
		t.Error("a changed parameter is accepted")
	}
}

// fakeReplies records consent changes; consent is per customer, granted
// unless withdrawn, and a change reports whether it changed anything.
type fakeReplies struct {
	mu       sync.Mutex
	phones   map[string][]string
	withdrew map[string]bool
	calls    []string
	fail     error
}

func (f *fakeReplies) CustomersByPhone(_ context.Context, phone string) ([]string, error) {
	return f.phones[phone], f.fail
}

func (f *fakeReplies) set(id string, withdrawn bool, name string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name+" "+id)
	changed := f.withdrew[id] != withdrawn
	f.withdrew[id] = withdrawn
	return changed, nil
}

func (f *fakeReplies) WithdrawSMS(_ context.Context, id string) (bool, error) {
	return f.set(id, true, "stop")
}

func (f *fakeReplies) RegrantSMS(_ context.Context, id string) (bool, error) {
	return f.set(id, false, "start")
}

const (
	smsToken = "twilio-auth-token"
	smsBase  = "https://rapport.example"
)

func smsHarness(t *testing.T) (*harness, *fakeReplies) {
	replies := &fakeReplies{phones: map[string][]string{"+14155550100": {"li"}}, withdrew: map[string]bool{}}
	h := newHarness(t, func(o *Options) {
		o.SMS = &SMSOptions{AuthToken: smsToken, PublicURL: smsBase + "/", Replies: replies}
	})
	return h, replies
}

// sms posts an inbound message signed with token, as Twilio would.
func (h *harness) sms(token, from, body, sid string) *httpResponse {
	form := url.Values{"From": {from}, "To": {"+18005550000"}, "Body": {body}, "MessageSid": {sid}, "AccountSid": {"AC1"}}
	sig := twilioSignature(token, smsBase+SMSPath, form)
	rec := h.do("POST", SMSPath, form.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Authorization", "", "X-Twilio-Signature", sig)
	return &httpResponse{code: rec.Code, body: rec.Body.String()}
}

type httpResponse struct {
	code int
	body string
}

// message is the text of the TwiML reply, "" when there is none.
func (r *httpResponse) message() string {
	_, rest, ok := strings.Cut(r.body, "<Message>")
	if !ok {
		return ""
	}
	msg, _, _ := strings.Cut(rest, "</Message>")
	return msg
}

func TestSMSKeywords(t *testing.T) {
	for _, body := range []string{"STOP", " stop ", "Stop.", "UNSUBSCRIBE", "cancel", "退订", "取消", "stopall", "Quit!"} {
		h, replies := smsHarness(t)
		r := h.sms(smsToken, "+14155550100", body, "SM1")
		if r.code != 200 || !strings.Contains(r.message(), "nsubscribed") && !strings.Contains(r.message(), "您已退订") {
			t.Errorf("%q: %d %s", body, r.code, r.body)
		}
		if !replies.withdrew["li"] {
			t.Errorf("%q: consent not withdrawn", body)
		}
		if strings.Count(r.body, "<Message>") != 1 {
			t.Errorf("%q: want exactly one confirmation: %s", body, r.body)
		}
		// The same STOP again, or retried by Twilio: no second confirmation.
		if r = h.sms(smsToken, "+14155550100", body, "SM2"); r.code != 200 || r.message() != "" {
			t.Errorf("%q again: %d %s, want an empty TwiML response", body, r.code, r.body)
		}
	}
	h, replies := smsHarness(t)
	h.sms(smsToken, "+14155550100", "STOP", "SM1")
	if r := h.sms(smsToken, "+14155550100", "start", "SM2"); r.code != 200 || !strings.Contains(r.message(), "subscribed to our text messages again") || replies.withdrew["li"] {
		t.Errorf("START: %d %s withdrawn=%v", r.code, r.body, replies.withdrew["li"])
	}
	if r := h.sms(smsToken, "+14155550100", "HELP", "SM3"); r.code != 200 || !strings.Contains(r.message(), "Reply STOP") {
		t.Errorf("HELP: %d %s", r.code, r.body)
	}
	if len(h.store.events) != 0 || len(h.disp.calls) != 0 {
		t.Errorf("keywords were stored as events: %v", h.store.events)
	}
	// A STOP from a number not on file is confirmed; nothing to change.
	if r := h.sms(smsToken, "+19995550000", "STOP", "SM4"); r.code != 200 || r.message() == "" {
		t.Errorf("STOP from an unknown number: %d %s", r.code, r.body)
	}
}

func TestSMSOtherMessagesBecomeEvents(t *testing.T) {
	h, replies := smsHarness(t)
	for range 2 { // Twilio retrying the webhook: one event
		if r := h.sms(smsToken, "+14155550100", "Is the shop open on Sunday? Stop by later", "SM9"); r.code != 200 || r.message() != "" {
			t.Fatalf("%d %s", r.code, r.body)
		}
	}
	if len(replies.calls) != 0 {
		t.Errorf("a message that is not a keyword changed consent: %v", replies.calls)
	}
	if len(h.disp.calls) != 1 {
		t.Fatalf("dispatches %+v, want one sms_received", h.disp.calls)
	}
	ev := h.disp.calls[0].Event
	if ev.Name != "sms_received" || h.disp.calls[0].Customer.ID != "li" || ev.Props["body"] != "Is the shop open on Sunday? Stop by later" || ev.Props["message_sid"] != "SM9" {
		t.Errorf("event %+v for %s", ev, h.disp.calls[0].Customer.ID)
	}
}

func TestSMSRefusesBadSignatures(t *testing.T) {
	h, replies := smsHarness(t)
	for name, r := range map[string]*httpResponse{
		"other token": h.sms("guessed-token", "+14155550100", "STOP", "SM1"),
		"no signature": func() *httpResponse {
			rec := h.do("POST", SMSPath, "From=%2B14155550100&Body=STOP", "Content-Type", "application/x-www-form-urlencoded", "Authorization", "")
			return &httpResponse{code: rec.Code, body: rec.Body.String()}
		}(),
		"body changed after signing": func() *httpResponse {
			form := url.Values{"From": {"+14155550100"}, "Body": {"hello"}}
			sig := twilioSignature(smsToken, smsBase+SMSPath, form)
			form.Set("Body", "STOP")
			rec := h.do("POST", SMSPath, form.Encode(), "Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", sig)
			return &httpResponse{code: rec.Code, body: rec.Body.String()}
		}(),
	} {
		if r.code != http.StatusUnauthorized || !strings.Contains(r.body, "X-Twilio-Signature") {
			t.Errorf("%s: %d %s, want 401 naming X-Twilio-Signature", name, r.code, r.body)
		}
	}
	if len(replies.calls) != 0 || len(h.store.events) != 0 {
		t.Errorf("a refused request changed something: %v %v", replies.calls, h.store.events)
	}
}

func TestSMSDisabledWithoutToken(t *testing.T) {
	for name, o := range map[string]*SMSOptions{"no options": nil, "no token": {PublicURL: smsBase, Replies: &fakeReplies{}}} {
		h := newHarness(t, func(opts *Options) { opts.SMS = o })
		if rec := h.do("POST", SMSPath, "Body=STOP", "Content-Type", "application/x-www-form-urlencoded"); rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", name, rec.Code)
		}
	}
	h, replies := smsHarness(t)
	replies.fail = errors.New("db down")
	if r := h.sms(smsToken, "+14155550100", "STOP", "SM1"); r.code != http.StatusServiceUnavailable || strings.Contains(r.body, "db down") {
		t.Errorf("store down: %d %s", r.code, r.body)
	}
}
