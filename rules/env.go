// Package rules is the rule language of Rapport playbooks: the typed
// environment that expr-lang rules are checked against, the marketer
// built-ins (daysSince, isBirthday, duration("90d") …), and compile and
// evaluate helpers. Rules never read the wall clock: `now` is always supplied
// by the caller, which in a journey is workflow time.
package rules

import (
	"time"
)

// Customer is the profile a rule sees as `customer`. The typed core fields
// are the ones the relationship-marketing sources ask every record to carry;
// anything else lives in Attrs (`customer.attrs.industry`).
//
// Derived fields (DaysSinceLastPurchase, DaysSinceSignup) are filled by
// NewEnv relative to the rule's `now`, so they are never stale.
type Customer struct {
	ID             string         `expr:"id" json:"id"`
	Email          string         `expr:"email" json:"email,omitempty"`
	Phone          string         `expr:"phone" json:"phone,omitempty"`
	Name           string         `expr:"name" json:"name,omitempty"`
	Locale         string         `expr:"locale" json:"locale,omitempty"`
	Timezone       string         `expr:"timezone" json:"timezone,omitempty"`
	Tier           string         `expr:"tier" json:"tier,omitempty"`
	Stage          string         `expr:"stage" json:"stage,omitempty"`
	Points         int64          `expr:"points" json:"points"`
	LifetimeValue  float64        `expr:"lifetime_value" json:"lifetime_value"`
	OrderCount     int64          `expr:"order_count" json:"order_count"`
	AvgOrderValue  float64        `expr:"avg_order_value" json:"avg_order_value"`
	PurchaseGap    float64        `expr:"purchase_gap_days" json:"purchase_gap_days"`
	ChurnRisk      bool           `expr:"churn_risk" json:"churn_risk"`
	LastPurchaseAt time.Time      `expr:"last_purchase_at" json:"last_purchase_at,omitzero"`
	Birthday       time.Time      `expr:"birthday" json:"birthday,omitzero"`
	SignupAt       time.Time      `expr:"signup_at" json:"signup_at,omitzero"`
	Tags           []string       `expr:"tags" json:"tags,omitempty"`
	Attrs          map[string]any `expr:"attrs" json:"attrs,omitempty"`

	// Derived, relative to the rule's now; not stored.
	DaysSinceLastPurchase int64 `expr:"days_since_last_purchase" json:"-"`
	DaysSinceSignup       int64 `expr:"days_since_signup" json:"-"`
}

// Event is a customer event as a rule sees it (`event`): the trigger event of
// an enrollment, or the event a wait or goal is matching. The typed fields
// cover the commerce and service events the sample playbooks use; every other
// property is in Props (`event.props.sku`).
type Event struct {
	ID       string         `expr:"id" json:"id,omitempty"`
	Name     string         `expr:"name" json:"name"`
	Time     time.Time      `expr:"time" json:"time,omitzero"`
	Amount   float64        `expr:"amount" json:"amount,omitempty"`
	Currency string         `expr:"currency" json:"currency,omitempty"`
	OrderID  string         `expr:"order_id" json:"order_id,omitempty"`
	Category string         `expr:"category" json:"category,omitempty"`
	Score    float64        `expr:"score" json:"score,omitempty"`
	Props    map[string]any `expr:"props" json:"props,omitempty"`
}

// Coupon is the last coupon issued in the enrollment (`coupon`), so a
// message template can show its code.
type Coupon struct {
	Code      string    `expr:"code" json:"code"`
	Value     float64   `expr:"value" json:"value"`
	Kind      string    `expr:"kind" json:"kind"`
	ExpiresAt time.Time `expr:"expires_at" json:"expires_at"`
}

// Env is the whole world of a rule. Its zero value is a valid (if empty)
// environment; build one with NewEnv so derived fields are set.
type Env struct {
	Customer Customer  `expr:"customer"`
	Event    Event     `expr:"event"`
	Coupon   Coupon    `expr:"coupon"`
	Now      time.Time `expr:"now"`
	// UnsubscribeURL is only set when rendering a message template.
	UnsubscribeURL string `expr:"unsubscribe_url"`
	// Messages is what became of the messages of the journey's watched
	// send steps, by step id; rules read it through message("id") only,
	// so that the compiler can check every id they name.
	Messages map[string]Message `expr:"-"`
}

// NewEnv returns the environment for one evaluation at time now, with the
// customer's derived fields computed relative to now.
func NewEnv(c Customer, ev Event, now time.Time) Env {
	c.DaysSinceLastPurchase = DaysSince(now, c.LastPurchaseAt)
	c.DaysSinceSignup = DaysSince(now, c.SignupAt)
	return Env{Customer: c, Event: ev, Now: now}
}
