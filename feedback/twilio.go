package feedback

import (
	"net/url"
	"time"
)

// twilioHardErrors are the Twilio error codes of an undeliverable number,
// which no retry fixes: 21211 invalid 'To', 21614 not a mobile number,
// 30005 unknown destination handset, 30006 landline or unreachable
// carrier. Any other failure (30003 unreachable handset, 30008 unknown
// error, carrier filtering) is a soft bounce.
var twilioHardErrors = map[string]bool{"21211": true, "21614": true, "30005": true, "30006": true}

// ParseTwilioStatus normalizes a (verified) status callback: delivered,
// read (opened), and undelivered or failed (bounced). Queued, sending,
// sent and accepted are steps on the way and give nothing.
func ParseTwilioStatus(form url.Values, now time.Time) ([]Event, error) {
	sid, status := form.Get("MessageSid"), form.Get("MessageStatus")
	if sid == "" {
		return nil, invalid("MessageSid: required")
	}
	if status == "" {
		return nil, invalid("MessageStatus: required")
	}
	e := Event{ID: "msg-twilio-" + sid + "-" + status, Provider: ProviderTwilio, ProviderID: sid,
		Channel: "sms", Address: form.Get("To"), At: now.UTC()}
	switch status {
	case "delivered":
		e.Kind = Delivered
	case "read":
		e.Kind = Opened
	case "undelivered", "failed":
		code := form.Get("ErrorCode")
		e.Kind, e.Bounce, e.Detail = Bounced, BounceSoft, "error "+code
		if twilioHardErrors[code] {
			e.Bounce = BounceHard
		}
	default:
		return nil, nil
	}
	return []Event{e}, nil
}
