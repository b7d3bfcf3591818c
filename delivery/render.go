package delivery

import (
	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/tracking"
	"github.com/rapport-crm/rapport/unsubscribe"
)

// Render fills the template's placeholders for the customer, with a signed
// unsubscribe link for marketing messages, and applies the playbook's
// tracking. Rendering is deterministic in the request (the link expires
// relative to the request's Now), so a retry renders the same message.
func (s Sender) Render(r activities.SendRequest, customerID string) (Message, error) {
	var link string
	if !r.Transactional {
		if len(s.Config.UnsubscribeSecret) == 0 {
			return Message{}, permanent("RAPPORT_UNSUBSCRIBE_SECRET is not set: marketing messages need a signed unsubscribe link")
		}
		link = unsubscribe.URL(s.Config.PublicURL, s.Config.UnsubscribeSecret, unsubscribe.Claims{
			Customer: customerID, Channel: r.Channel, Topic: r.Topic, Expires: r.Now.Add(s.Config.unsubscribeTTL()),
		})
	}
	env := rules.NewEnv(r.Customer, r.Event, r.Now)
	env.Coupon = r.Coupon
	env.UnsubscribeURL = link
	out, err := engine.RenderMessage(engine.Message{Subject: r.Subject, Text: r.Text, HTML: r.HTML}, &env)
	if err != nil {
		return Message{}, &RenderError{Err: err}
	}
	return Message{Rendered: s.track(r, out, link), UnsubscribeURL: link}, nil
}

// track applies the playbook's email tracking to a rendered message:
// links through signed redirects, and the open pixel. The unsubscribe
// link is left alone (it must work without the tracker). Without a
// tracking secret nothing is tracked: a link that cannot be verified
// would be a broken link.
func (s Sender) track(r activities.SendRequest, out engine.Rendered, unsubURL string) engine.Rendered {
	if r.Channel != "email" || len(s.Config.TrackingSecret) == 0 || s.Config.PublicURL == "" {
		return out
	}
	t := tracking.Tracker{Secret: s.Config.TrackingSecret, PublicURL: s.Config.PublicURL, Skip: []string{unsubURL}}
	if r.Tracking.Clicks {
		out.HTML, out.Text = t.Links(r.Key, out.HTML, out.Text)
	}
	if r.Tracking.Opens && out.HTML != "" {
		out.HTML = t.Pixel(r.Key, out.HTML)
	}
	return out
}

// RenderError marks a template that cannot be rendered for this customer;
// the outbox records the message failed (activities.ReasonRenderError)
// instead of failing the activity, since a retry renders the same.
type RenderError struct{ Err error }

func (e *RenderError) Error() string { return "render: " + e.Err.Error() }
func (e *RenderError) Unwrap() error { return e.Err }

// Is makes a RenderError match activities.ErrRender, the sentinel the
// outbox records as a failed message.
func (e *RenderError) Is(target error) bool { return target == activities.ErrRender }
