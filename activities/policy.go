package activities

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// The send and entry policies are written once, here, as pure functions
// of a request and the facts an implementation gathers (the store under
// a row lock, Memory under its mutex). Both implementations call them, so
// `rapport simulate` decides as production does; the contract suite in
// activities/activitiestest checks that they gather the same facts.

// DefaultTopic is the topic of a message whose request names none.
const DefaultTopic = "marketing"

// AllTopics is the consent topic that stands for every topic (an
// unsubscribe from everything on a channel). A decision recorded for the
// message's own topic wins over it.
const AllTopics = "*"

// ReasonRenderError is a message whose template cannot be rendered for
// the customer: recorded failed, and the journey goes on.
const ReasonRenderError = "render_error"

// ErrRender is wrapped by the failure to render a template for the
// customer: a send that meets it records the message failed with
// ReasonRenderError, and the journey goes on.
var ErrRender = errors.New("template cannot be rendered")

// Reasons RecordStart gives for turning a customer away (besides
// ReasonDuplicateTrigger).
const (
	ReasonActive          = "active"           // an enrollment of the playbook is still running
	ReasonAlreadyEnrolled = "already_enrolled" // reentry never, and an earlier enrollment exists
	ReasonCooldown        = "cooldown"         // reentry after, and the last start is inside the cooldown
	ReasonRejected        = "rejected"         // this very enrollment was admitted, then rejected (audience)
)

// CapFacts are what a frequency cap counts: at most Max messages per Per;
// Counted holds the times of the counted messages inside the window
// ending at the request's Now, newest first (at least the newest Max).
// Counted are the non-transactional messages recorded queued or sent —
// suppressed and failed ones never count. Max 0 means no cap.
type CapFacts struct {
	Max     int
	Per     time.Duration
	Counted []time.Time
}

// SendFacts are what DecideSend needs besides the request.
type SendFacts struct {
	// Recipient is the address on the channel as stored now (Recipient).
	Recipient string
	// Consent is the customer's recorded decision for the channel and the
	// topic, else for AllTopics, else true (opt-out: nothing recorded
	// means granted) (ConsentOf).
	Consent bool
	// Global is the operator's cap per customer and channel across all
	// playbooks; Playbook is the request's cap per customer across all
	// channels.
	Global, Playbook CapFacts
	// Suppressed is the reason the recipient's address is on the
	// suppression list (ReasonHardBounce, ReasonComplaint,
	// ReasonSoftBounces), "" when it is not.
	Suppressed string
}

// Reasons an address is on the suppression list, recorded as the reason of
// the messages it stops.
const (
	ReasonHardBounce  = "hard_bounce"  // the address does not exist
	ReasonComplaint   = "complaint"    // the recipient reported mail as spam
	ReasonSoftBounces = "soft_bounces" // a run of temporary failures
	// ReasonErased: the address belonged to a customer who was erased
	// (the right to be forgotten), who must never be contacted again.
	ReasonErased = "erased"
)

// SuppressesTransactional says whether a suppression stops transactional
// messages too: a dead address is dead for receipts as well, and an
// erased customer's address is never written to again, while a
// complaint is about marketing, and a receipt the customer asked for
// still goes out.
func SuppressesTransactional(reason string) bool {
	return reason == ReasonHardBounce || reason == ReasonSoftBounces || reason == ReasonErased
}

// NormalAddress is the form of an address the suppression list keys on:
// email trimmed and lower-cased, a phone number reduced to its digits and
// a leading +. PostgreSQL's rapport_address (migration 00009) is its twin.
func NormalAddress(channel, address string) string {
	address = strings.TrimSpace(address)
	if channel != "sms" {
		return strings.ToLower(address)
	}
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r == '+' {
			return r
		}
		return -1
	}, address)
}

// DecideSend decides a new message, in order: a holdout receives nothing,
// transactional messages included (its conversions are the baseline); a
// customer without an address on the channel is suppressed (no_address:
// nothing to deliver to, and nothing a retry could fix — a decision, not a
// failure); an address on the suppression list is suppressed with the
// list's reason (a complaint only for marketing: SuppressesTransactional);
// a transactional message then goes out; a marketing message
// without consent is suppressed; over either frequency cap it is deferred
// to the time both caps free up (CapDefer) or suppressed. An empty status
// means send.
func DecideSend(r SendRequest, f SendFacts) (status SendStatus, reason string, retryAt time.Time) {
	switch {
	case r.Enrollment.Holdout:
		return SendSuppressed, ReasonHoldout, time.Time{}
	case f.Recipient == "":
		return SendSuppressed, ReasonNoAddress, time.Time{}
	case f.Suppressed != "" && (!r.Transactional || SuppressesTransactional(f.Suppressed)):
		return SendSuppressed, f.Suppressed, time.Time{}
	case r.Transactional:
		return "", "", time.Time{}
	case !f.Consent:
		return SendSuppressed, ReasonConsent, time.Time{}
	}
	over := false
	for _, c := range []CapFacts{f.Global, f.Playbook} {
		if c.Max <= 0 || c.Per <= 0 || len(c.Counted) < c.Max {
			continue
		}
		over = true
		if t := c.Counted[c.Max-1].Add(c.Per); t.After(retryAt) {
			retryAt = t
		}
	}
	switch {
	case !over:
		return "", "", time.Time{}
	case r.CapDefer:
		return SendDeferred, ReasonFrequencyCap, retryAt.UTC()
	default:
		return SendSuppressed, ReasonFrequencyCap, time.Time{}
	}
}

// Recipient is the address a channel delivers to: the profile's email or
// phone, and the customer id for webhooks, whose receiver resolves the
// person itself.
func Recipient(channel, customerID, email, phone string) string {
	switch channel {
	case "email":
		return email
	case "sms":
		return phone
	default:
		return customerID
	}
}

// ConsentOf resolves the recorded decisions for one channel: the one for
// topic, else the one for AllTopics, else granted. A nil decision is none
// recorded.
func ConsentOf(forTopic, forAll *bool) bool {
	switch {
	case forTopic != nil:
		return *forTopic
	case forAll != nil:
		return *forAll
	}
	return true
}

// CapWindow returns, from times (in any order), those a cap of per counts
// for a message at now — inside (now-per, now] — newest first.
func CapWindow(times []time.Time, now time.Time, per time.Duration) []time.Time {
	var out []time.Time
	for _, t := range times {
		if t.After(now.Add(-per)) && !t.After(now) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return b.Compare(a) })
	return out
}

// EntryFacts are what DecideEntry needs besides the request: this
// enrollment's own record, and the customer's other enrollments of the
// playbook.
type EntryFacts struct {
	// Existing is the status recorded for the request's enrollment ID,
	// "" when none (a retried RecordStart finds its own record).
	Existing Status
	// ExistingGlobalControl is the recorded global-control draw of it.
	ExistingGlobalControl bool
	// SameTrigger: another enrollment of the playbook was started by the
	// request's TriggerID (whatever became of it).
	SameTrigger bool
	// Earlier: another enrollment that was not rejected exists; Active:
	// one of them is active; Last: the latest start among them.
	Earlier, Active bool
	Last            time.Time
}

// CheckEntry checks the request's re-entry policy: "" (never), never,
// always, or after with a positive cooldown. Anything else is a permanent
// failure.
func CheckEntry(r EntryRequest) error {
	e := r.Enrollment
	if e.ID == "" || e.Playbook == "" || e.CustomerID == "" {
		return fmt.Errorf("record start: enrollment id, playbook and customer are required (got %+v): %w", e, ErrPermanent)
	}
	switch r.Reentry {
	case "", "never", "always":
		return nil
	case "after":
		if r.Cooldown <= 0 {
			return fmt.Errorf("record start of %s: reentry after needs a positive cooldown: %w", e.ID, ErrPermanent)
		}
		return nil
	}
	return fmt.Errorf("record start of %s: unknown reentry policy %q: %w", e.ID, r.Reentry, ErrPermanent)
}

// DecideEntry applies the re-entry policy (checked by CheckEntry):
// asking again for a recorded enrollment answers as recorded (admitted,
// or refused "rejected" when the audience turned it away); then the same
// trigger never enrolls twice; any policy refuses while another
// enrollment is active; never refuses after any earlier enrollment; after
// refuses inside the cooldown since the last start. Rejected enrollments
// do not count as earlier ones: a customer outside the audience today may
// enter later. Admitted says nothing of the global control group, which
// the caller draws.
func DecideEntry(r EntryRequest, f EntryFacts) EntryResult {
	switch {
	case f.Existing == StatusRejected:
		return EntryResult{Reason: ReasonRejected}
	case f.Existing != "":
		return EntryResult{Admitted: true, GlobalControl: f.ExistingGlobalControl}
	case f.SameTrigger:
		return EntryResult{Reason: ReasonDuplicateTrigger}
	case f.Active:
		return EntryResult{Reason: ReasonActive}
	case (r.Reentry == "" || r.Reentry == "never") && f.Earlier:
		return EntryResult{Reason: ReasonAlreadyEnrolled}
	case r.Reentry == "after" && f.Earlier && r.At.Sub(f.Last) < r.Cooldown:
		return EntryResult{Reason: ReasonCooldown}
	}
	return EntryResult{Admitted: true}
}

// ApplyPurchase applies a purchase of amount at time at to the profile's
// purchase metrics; the store (store.InsertEvent, with the customer row
// locked) and Memory.RecordEvent both call it: one more order, the amount
// added to the lifetime value, the
// average order value rounded to cents, the last purchase the latest one,
// and the purchase gap the days from the first purchase (*first, kept by
// the caller; the zero time when unknown) to the last, per gap between
// orders.
func ApplyPurchase(c *rules.Customer, first *time.Time, amount float64, at time.Time) {
	last := c.LastPurchaseAt
	if first.IsZero() {
		*first = last
	}
	if first.IsZero() || at.Before(*first) {
		*first = at
	}
	if last.IsZero() || at.After(last) {
		last = at
	}
	prev := c.OrderCount
	c.OrderCount++
	c.AvgOrderValue = roundCents((c.LifetimeValue + amount) / float64(c.OrderCount))
	c.LifetimeValue = roundCents(c.LifetimeValue + amount) // numeric(14, 2)
	c.LastPurchaseAt = last
	if prev == 0 {
		c.PurchaseGap = 0
	} else {
		c.PurchaseGap = last.Sub(*first).Seconds() / 86400 / float64(prev)
	}
}

// ApplyRefund applies a refund of amount to the profile's purchase
// metrics as the store's refund does in SQL (store applyRefund, with
// numeric arithmetic): the amount comes off the lifetime value, never
// below zero, and the average order value follows; the order count and
// the last purchase stay, since the order happened. Memory.RecordEvent
// calls it; the contract suite (activities/activitiestest) holds the two
// to the same numbers, so the arithmetic is decimal here, as PostgreSQL's
// is, and not float (110.01 − 94.055 is 15.955 to PostgreSQL and rounds
// up; in float64 it is 15.95499… and would round down).
func ApplyRefund(c *rules.Customer, amount float64) {
	left := new(big.Rat).Sub(decimal(c.LifetimeValue), decimal(amount))
	if left.Sign() < 0 {
		left.SetInt64(0)
	}
	c.LifetimeValue = roundRat(left) // numeric(14, 2)
	c.AvgOrderValue = 0
	if c.OrderCount > 0 {
		c.AvgOrderValue = roundRat(left.Quo(left, big.NewRat(int64(c.OrderCount), 1)))
	}
}

// decimal is v as PostgreSQL receives it for a numeric (pgx sends the
// shortest decimal that reads back as v); NaN and infinities, which no
// amount is, count as 0.
func decimal(v float64) *big.Rat {
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(v, 'f', -1, 64))
	if !ok {
		return new(big.Rat)
	}
	return r
}

// roundRat rounds r to cents, halves away from zero (PostgreSQL's numeric
// round).
func roundRat(r *big.Rat) float64 {
	c := new(big.Rat).Mul(r, big.NewRat(100, 1))
	q, m := new(big.Int).QuoRem(c.Num(), c.Denom(), new(big.Int))
	if twice := new(big.Int).Mul(m.Abs(m), big.NewInt(2)); twice.Cmp(c.Denom()) >= 0 {
		q.Add(q, big.NewInt(int64(c.Sign())))
	}
	f, _ := new(big.Rat).SetFrac(q, big.NewInt(100)).Float64()
	return f
}

// roundCents rounds to cents as PostgreSQL rounds a numeric: the value
// taken as the shortest decimal that reads back as v (as pgx sends a
// float64 to a numeric), halves away from zero.
func roundCents(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return math.Round(v*100) / 100 // nothing to round
	}
	return roundRat(decimal(v))
}
