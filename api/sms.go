package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

// SMSPath is where the inbound-message webhook is mounted: point the
// phone number's "A message comes in" webhook (HTTP POST) at
// RAPPORT_PUBLIC_URL + SMSPath.
const SMSPath = "/v1/sms/inbound"

// maxSMSBytes bounds an inbound-message request; Twilio's are a few KiB.
const maxSMSBytes = 64 << 10

// SMSOptions enable the inbound-message webhook. Without them, or without
// an AuthToken, the endpoint answers 404.
type SMSOptions struct {
	// AuthToken is the provider's auth token (RAPPORT_TWILIO_AUTH_TOKEN),
	// the key of X-Twilio-Signature.
	AuthToken string
	// PublicURL is RAPPORT_PUBLIC_URL: the provider signs the URL it
	// called, which behind a proxy is not the one this server sees.
	PublicURL string
	Replies   SMSReplies
	// Help is the answer to HELP: who sends, how to reach a person, and
	// how to stop (carriers require all three).
	Help string
}

// SMSReplies records what a customer texts back; store.Store implements it.
type SMSReplies interface {
	CustomersByPhone(ctx context.Context, phone string) ([]string, error)
	// WithdrawSMS and RegrantSMS report whether a consent changed.
	WithdrawSMS(ctx context.Context, customerID string) (bool, error)
	RegrantSMS(ctx context.Context, customerID string) (bool, error)
}

// Keyword kinds of an inbound message.
const (
	smsOther = iota
	smsStop
	smsStart
	smsHelp
)

// smsKeywords are the carrier keywords (CTIA, as Twilio recognises them,
// and the Chinese 退订 "unsubscribe" and 取消 "cancel"), upper case. A
// message is a keyword when it is one, give or take spaces, case and a
// final full stop or exclamation mark.
var smsKeywords = map[string]int{
	"STOP": smsStop, "STOPALL": smsStop, "UNSUBSCRIBE": smsStop, "CANCEL": smsStop, "END": smsStop, "QUIT": smsStop,
	"退订": smsStop, "取消": smsStop, "TD": smsStop,
	"START": smsStart, "UNSTOP": smsStart, // not YES: journeys may ask for it
	"HELP": smsHelp, "INFO": smsHelp,
}

func keyword(body string) int {
	w := strings.ToUpper(strings.TrimRight(strings.TrimSpace(body), ".!。！ "))
	return smsKeywords[w]
}

// smsText is the wording of the replies in one language.
type smsText struct{ Stopped, Started, Help string }

var smsTexts = map[string]smsText{
	"en": {
		Stopped: "You are unsubscribed and will receive no more text messages from us. Reply START to subscribe again.",
		Started: "You are subscribed to our text messages again. Reply STOP to unsubscribe, HELP for help.",
		Help:    "Reply STOP to unsubscribe, START to subscribe again.",
	},
	"zh": {
		Stopped: "您已退订，我们不会再向您发送短信。回复START可重新订阅。",
		Started: "您已重新订阅我们的短信。回复退订可退订。",
		Help:    "回复退订可退订，回复START可重新订阅。",
	},
}

// handleSMS serves the inbound-message webhook: STOP and its synonyms
// withdraw SMS consent, START grants it again, HELP answers with help,
// and any other message is stored as an sms_received event of each
// customer with that number, for journeys to wait on. The answer is
// TwiML with at most one message, so the provider sends the reply; a
// consent that did not change (a repeated STOP, a retried webhook) gets
// no second confirmation.
func (s *Server) handleSMS(w http.ResponseWriter, r *http.Request) {
	o := s.opts.SMS
	if o == nil || o.AuthToken == "" || o.Replies == nil {
		http.NotFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSMSBytes)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "body: want an application/x-www-form-urlencoded message")
		return
	}
	signed := strings.TrimRight(o.PublicURL, "/") + r.URL.RequestURI()
	if !validTwilioSignature(o.AuthToken, signed, r.PostForm, r.Header.Get("X-Twilio-Signature")) {
		writeError(w, http.StatusUnauthorized, "X-Twilio-Signature: missing or does not match")
		return
	}
	from, body := r.PostForm.Get("From"), r.PostForm.Get("Body")
	if from == "" {
		writeError(w, http.StatusBadRequest, "From: required")
		return
	}
	reply, err := s.applySMS(r.Context(), from, body, r.PostForm)
	if err != nil {
		s.opts.Logger.Error("inbound sms failed", "err", err, "message_sid", r.PostForm.Get("MessageSid"))
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusServiceUnavailable, "inbound sms temporarily unavailable")
		return
	}
	writeTwiML(w, reply)
}

// applySMS acts on one inbound message and returns the reply ("" none).
func (s *Server) applySMS(ctx context.Context, from, body string, form url.Values) (string, error) {
	o := s.opts.SMS
	ids, err := o.Replies.CustomersByPhone(ctx, from)
	if err != nil {
		return "", err
	}
	t := smsTexts["en"]
	if strings.ContainsFunc(body, func(r rune) bool { return r >= 0x4e00 && r <= 0x9fff }) {
		t = smsTexts["zh"]
	}
	switch keyword(body) {
	case smsStop:
		return changeSMS(ctx, ids, o.Replies.WithdrawSMS, t.Stopped, true)
	case smsStart:
		return changeSMS(ctx, ids, o.Replies.RegrantSMS, t.Started, false)
	case smsHelp:
		if o.Help != "" {
			return o.Help, nil
		}
		return t.Help, nil
	}
	return "", s.storeInboundSMS(ctx, ids, body, form)
}

// changeSMS applies change to each customer and returns reply when any
// consent changed. A STOP from a number not on file is confirmed all the
// same (alwaysWhenUnknown): nothing will be sent to it, and the sender
// must hear that.
func changeSMS(ctx context.Context, ids []string, change func(context.Context, string) (bool, error), reply string, alwaysWhenUnknown bool) (string, error) {
	if len(ids) == 0 && alwaysWhenUnknown {
		return reply, nil
	}
	changedAny := false
	for _, id := range ids {
		changed, err := change(ctx, id)
		if err != nil {
			return "", err
		}
		changedAny = changedAny || changed
	}
	if !changedAny {
		return "", nil
	}
	return reply, nil
}

// storeInboundSMS stores the message as an sms_received event of each
// customer with the number and dispatches it; an event that fails to
// dispatch stays stored and is redispatched later, so the provider is not
// asked to retry. The event ID is the provider's MessageSid, so a retried
// webhook stores nothing twice.
func (s *Server) storeInboundSMS(ctx context.Context, ids []string, body string, form url.Values) error {
	sid := form.Get("MessageSid")
	for _, id := range ids {
		ev := rules.Event{
			ID: "sms-" + sid + "-" + id, Name: "sms_received", Time: s.opts.Now().UTC(),
			Props: map[string]any{"body": body, "from": form.Get("From"), "to": form.Get("To"), "message_sid": sid},
		}
		res, err := s.opts.Store.Ingest(ctx, store.Ingestion{CustomerID: id, Event: &ev})
		if err != nil {
			return err
		}
		if !res.Inserted {
			continue
		}
		if err := s.dispatch(ctx, id, ev); err != nil {
			s.opts.Logger.Warn("sms_received stored, dispatch failed; it will be redispatched", "customer", id, "err", err)
		}
	}
	return nil
}

// validTwilioSignature checks X-Twilio-Signature as Twilio documents it:
// base64(HMAC-SHA1(auth token, URL + each POST parameter's name and value,
// sorted by name, no separators)). Compared in constant time.
func validTwilioSignature(token, fullURL string, form url.Values, header string) bool {
	if header == "" {
		return false
	}
	want := twilioSignature(token, fullURL, form)
	return subtle.ConstantTimeCompare([]byte(header), []byte(want)) == 1
}

func twilioSignature(token, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(fullURL))
	for _, k := range keys {
		values := append([]string(nil), form[k]...)
		sort.Strings(values)
		for _, v := range values {
			mac.Write([]byte(k + v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// writeTwiML answers with a TwiML document holding reply, or none.
func writeTwiML(w http.ResponseWriter, reply string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	var b strings.Builder
	b.WriteString(xml.Header + "<Response>")
	if reply != "" {
		b.WriteString("<Message>")
		_ = xml.EscapeText(&b, []byte(reply))
		b.WriteString("</Message>")
	}
	b.WriteString("</Response>\n")
	_, _ = w.Write([]byte(b.String()))
}
