package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/feedback"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/tracking"
)

// Paths of the provider webhooks (docs/operators.md, "Provider events").
const (
	SESPath      = "/v1/feedback/ses"
	SendGridPath = "/v1/feedback/sendgrid"
	MailgunPath  = "/v1/feedback/mailgun"
	TwilioPath   = "/v1/feedback/twilio"
)

// maxFeedbackBytes bounds a provider notification; SendGrid batches are
// the largest, well under a MiB.
const maxFeedbackBytes = 1 << 20

// FeedbackRecorder records a normalized notification's events once per
// ID, all or none, each with the customer to dispatch its customer event
// to; store.Store implements it.
type FeedbackRecorder interface {
	RecordFeedbackBatch(ctx context.Context, events []feedback.Event) ([]store.FeedbackResult, error)
	// MarkFeedbackDispatched is Store.MarkDispatched for these events; it
	// may skip the disk flush, since a lost marker only redispatches.
	MarkFeedbackDispatched(ctx context.Context, eventIDs ...string) error
}

// FeedbackOptions enable the provider webhooks and the tracking
// endpoints. Each endpoint answers 404 until its key is set.
type FeedbackOptions struct {
	Recorder FeedbackRecorder
	// SESTopicARNs are the SNS topics whose notifications are accepted
	// (RAPPORT_SES_TOPIC_ARNS); SNS has no shared secret, so the topic is
	// the endpoint's key. SNSCerts fetches signing certificates and
	// SNSClient confirms subscriptions (GET SubscribeURL).
	SESTopicARNs []string
	SNSCerts     feedback.CertFetcher
	SNSClient    *http.Client
	// SendGridKey verifies the Signed Event Webhook
	// (RAPPORT_SENDGRID_WEBHOOK_PUBLIC_KEY).
	SendGridKey *ecdsa.PublicKey
	// MailgunKey is the webhook signing key (RAPPORT_MAILGUN_SIGNING_KEY).
	MailgunKey []byte
	// TwilioToken signs status callbacks (RAPPORT_TWILIO_AUTH_TOKEN), as
	// it signs inbound messages; PublicURL is the URL Twilio calls.
	TwilioToken string
	PublicURL   string
	// TrackingSecret verifies click and open tokens (RAPPORT_TRACKING_SECRET).
	TrackingSecret []byte
	// MarkEvery, when set, writes the dispatch markers of provider events
	// in batches at most this often, off the request path (markerBatcher);
	// zero writes each call's markers before it answers, which tests that
	// read the marker right after a call rely on.
	MarkEvery time.Duration
}

func (s *Server) feedbackRoutes() {
	s.mux.HandleFunc("POST "+SESPath, s.handleSES)
	s.mux.HandleFunc("POST "+SendGridPath, s.handleSendGrid)
	s.mux.HandleFunc("POST "+MailgunPath, s.handleMailgun)
	s.mux.HandleFunc("POST "+TwilioPath, s.handleTwilioStatus)
	s.mux.HandleFunc("GET "+tracking.ClickPath+"{token}", s.handleClick)
	s.mux.HandleFunc("GET "+tracking.OpenPath+"{token}", s.handleOpen)
}

// feedbackOn returns the options when the endpoint's key is set.
func (s *Server) feedbackOn(w http.ResponseWriter, r *http.Request, configured func(*FeedbackOptions) bool) *FeedbackOptions {
	o := s.opts.Feedback
	if o == nil || o.Recorder == nil || !configured(o) {
		http.NotFound(w, r)
		return nil
	}
	return o
}

// readFeedback reads a size-limited notification body.
func readFeedback(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFeedbackBytes)
	return readBody(w, r, maxFeedbackBytes)
}

func (s *Server) handleSendGrid(w http.ResponseWriter, r *http.Request) {
	o := s.feedbackOn(w, r, func(o *FeedbackOptions) bool { return o.SendGridKey != nil })
	if o == nil {
		return
	}
	body, ok := readFeedback(w, r)
	if !ok {
		return
	}
	if !feedback.VerifySendGrid(o.SendGridKey, body, r.Header.Get("X-Twilio-Email-Event-Webhook-Signature"),
		r.Header.Get("X-Twilio-Email-Event-Webhook-Timestamp")) {
		writeError(w, http.StatusUnauthorized, "X-Twilio-Email-Event-Webhook-Signature: missing or does not verify")
		return
	}
	s.ingest(w, r, o)(feedback.ParseSendGrid(body))
}

func (s *Server) handleMailgun(w http.ResponseWriter, r *http.Request) {
	o := s.feedbackOn(w, r, func(o *FeedbackOptions) bool { return len(o.MailgunKey) > 0 })
	if o == nil {
		return
	}
	body, ok := readFeedback(w, r)
	if !ok {
		return
	}
	if !feedback.VerifyMailgun(o.MailgunKey, body) {
		writeError(w, http.StatusUnauthorized, "signature: missing or does not match")
		return
	}
	s.ingest(w, r, o)(feedback.ParseMailgun(body))
}

func (s *Server) handleTwilioStatus(w http.ResponseWriter, r *http.Request) {
	o := s.feedbackOn(w, r, func(o *FeedbackOptions) bool { return o.TwilioToken != "" })
	if o == nil {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSMSBytes)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "body: want an application/x-www-form-urlencoded status callback")
		return
	}
	signed := strings.TrimRight(o.PublicURL, "/") + r.URL.RequestURI()
	if !validTwilioSignature(o.TwilioToken, signed, r.PostForm, r.Header.Get("X-Twilio-Signature")) {
		writeError(w, http.StatusUnauthorized, "X-Twilio-Signature: missing or does not match")
		return
	}
	s.ingest(w, r, o)(feedback.ParseTwilioStatus(r.PostForm, s.opts.Now()))
}

func (s *Server) handleSES(w http.ResponseWriter, r *http.Request) {
	o := s.feedbackOn(w, r, func(o *FeedbackOptions) bool { return len(o.SESTopicARNs) > 0 && o.SNSCerts != nil })
	if o == nil {
		return
	}
	body, ok := readFeedback(w, r)
	if !ok {
		return
	}
	m, err := feedback.ParseSNS(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !allowedTopic(o.SESTopicARNs, m.TopicArn) {
		writeError(w, http.StatusUnauthorized, "TopicArn: not a topic this server accepts (RAPPORT_SES_TOPIC_ARNS)")
		return
	}
	if err := feedback.VerifySNS(r.Context(), m, o.SNSCerts); err != nil {
		if errors.Is(err, feedback.ErrBadSignature) {
			writeError(w, http.StatusUnauthorized, "Signature: "+err.Error())
			return
		}
		s.opts.Logger.Error("SNS certificate unavailable", "err", err)
		s.writeUnavailable(w, "SNS signing certificate temporarily unavailable")
		return
	}
	switch m.Type {
	case "SubscriptionConfirmation":
		s.confirmSNS(w, r, o, m)
	case "Notification":
		s.ingest(w, r, o)(feedback.ParseSES(m))
	default: // UnsubscribeConfirmation: nothing to do
		writeJSON(w, http.StatusOK, success{Success: true})
	}
}

func allowedTopic(arns []string, arn string) bool {
	for _, a := range arns {
		if a == arn {
			return true
		}
	}
	return false
}

// confirmSNS confirms a subscription of an accepted topic by visiting
// its SubscribeURL, which must be SNS's own.
func (s *Server) confirmSNS(w http.ResponseWriter, r *http.Request, o *FeedbackOptions, m feedback.SNSMessage) {
	if err := feedback.CheckSNSURL(m.SubscribeURL); err != nil {
		writeError(w, http.StatusBadRequest, "SubscribeURL: "+err.Error())
		return
	}
	client := o.SNSClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, m.SubscribeURL, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				err = errors.New(resp.Status)
			}
		}
	}
	if err != nil {
		s.opts.Logger.Error("SNS subscription confirmation failed", "topic", m.TopicArn, "err", err)
		s.writeUnavailable(w, "subscription confirmation failed; SNS will retry")
		return
	}
	s.opts.Logger.Info("SNS subscription confirmed", "topic", m.TopicArn)
	writeJSON(w, http.StatusOK, success{Success: true})
}

// ingest returns the step after parsing: a bad notification is 400
// naming the field; otherwise its events are recorded together and
// dispatched, and a storage failure is 503 so the provider retries (the
// retry stores nothing twice).
func (s *Server) ingest(w http.ResponseWriter, r *http.Request, o *FeedbackOptions) func([]feedback.Event, error) {
	return func(events []feedback.Event, err error) {
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), applyTimeout)
		defer cancel()
		err = s.recordFeedback(ctx, o, events)
		if errors.Is(err, activities.ErrPermanent) {
			// An event the store refuses (nothing to attribute it to) is
			// the same on every retry: 400, not a retry loop.
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err != nil {
			s.opts.Logger.Error("provider events not recorded; the provider will retry", "events", len(events), "err", err)
			s.writeUnavailable(w, "event store temporarily unavailable; retry the same notification")
			return
		}
		writeJSON(w, http.StatusOK, success{Success: true, Calls: len(events)})
	}
}

// recordFeedback records a notification's events in one transaction and
// dispatches the customer events they became, with the customer read in
// the same round trip. A failed dispatch is logged, not retried here: the
// event is stored undispatched and Redispatch hands it on. The dispatched
// events are marked in one statement, or queued for the marker batcher.
func (s *Server) recordFeedback(ctx context.Context, o *FeedbackOptions, events []feedback.Event) error {
	if len(events) == 0 {
		return nil
	}
	results, err := o.Recorder.RecordFeedbackBatch(ctx, events)
	if err != nil {
		return err
	}
	var dispatched []string
	for i, res := range results {
		if !res.Found {
			s.opts.Logger.Warn("provider event for an unknown message", "event", events[i].ID, "kind", events[i].Kind)
		}
		if !res.Inserted {
			continue
		}
		if err := s.opts.Dispatcher.Dispatch(ctx, res.Customer, res.Event); err != nil {
			s.opts.Logger.Warn("message event stored, dispatch failed; it will be redispatched", "event", res.Event.ID, "err", err)
			continue
		}
		dispatched = append(dispatched, res.Event.ID)
	}
	s.markFeedback(ctx, o, dispatched)
	return nil
}

// markFeedback records the dispatch of provider events: queued when the
// marker batcher runs, else written now. A marker not written only
// redispatches its event, so a failure is logged, not answered.
func (s *Server) markFeedback(ctx context.Context, o *FeedbackOptions, ids []string) {
	if s.markers != nil {
		s.markers.Add(ctx, ids...)
		return
	}
	if err := o.Recorder.MarkFeedbackDispatched(ctx, ids...); err != nil {
		s.opts.Logger.Warn("message events dispatched, marker not stored; they will be redispatched", "events", len(ids), "err", err)
	}
}

// handleClick records a click on a tracked link and redirects to the
// link's target. Only a verified token redirects, and only to the URL it
// signs; the click is recorded once per message and link.
func (s *Server) handleClick(w http.ResponseWriter, r *http.Request) {
	o := s.feedbackOn(w, r, func(o *FeedbackOptions) bool { return len(o.TrackingSecret) > 0 })
	if o == nil {
		return
	}
	c, err := tracking.Verify(o.TrackingSecret, r.PathValue("token"))
	if err != nil || c.Kind != tracking.Click {
		writeError(w, http.StatusNotFound, "link: not a valid tracked link")
		return
	}
	s.track(r, o, feedback.Event{ID: "msg-rapport-c-" + digest(c.MessageKey, c.URL), Kind: feedback.Clicked, URL: c.URL}, c)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, c.URL, http.StatusFound)
}

// pixel is a transparent 1×1 GIF.
var pixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// handleOpen records an open (once per message) and answers the pixel.
func (s *Server) handleOpen(w http.ResponseWriter, r *http.Request) {
	o := s.feedbackOn(w, r, func(o *FeedbackOptions) bool { return len(o.TrackingSecret) > 0 })
	if o == nil {
		return
	}
	token, ok := strings.CutSuffix(r.PathValue("token"), ".gif")
	c, err := tracking.Verify(o.TrackingSecret, token)
	if !ok || err != nil || c.Kind != tracking.Open {
		http.NotFound(w, r)
		return
	}
	s.track(r, o, feedback.Event{ID: "msg-rapport-o-" + digest(c.MessageKey), Kind: feedback.Opened}, c)
	w.Header().Set("Content-Type", "image/gif")
	w.Header().Set("Cache-Control", "no-store, max-age=0")
	_, _ = w.Write(pixel)
}

// track records a first-party click or open. The person clicking is not
// kept waiting on a failure: it is logged and the redirect goes ahead.
func (s *Server) track(r *http.Request, o *FeedbackOptions, e feedback.Event, c tracking.Claims) {
	e.Provider, e.MessageKey, e.Channel, e.At = feedback.ProviderRapport, c.MessageKey, "email", s.opts.Now().UTC()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), applyTimeout)
	defer cancel()
	if err := s.recordFeedback(ctx, o, []feedback.Event{e}); err != nil {
		s.opts.Logger.Error("tracking event not recorded", "event", e.ID, "err", err)
	}
}

// digest is a short stable id of its parts, for event IDs.
func digest(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:12])
}
