// Package activities defines what a journey asks of the outside world, as
// small interfaces with plain request and result types, and implementations:
// an in-memory one for tests and the simulator, and (in store/) PostgreSQL.
//
// Every request that changes something carries an idempotency Key derived
// from the enrollment and step (never from a random value), so a retried
// activity changes nothing the second time.
package activities

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// Enrollment identifies one run of one customer through one playbook
// version. ID is stable across retries, replays and continue-as-new (it is
// the workflow's first run ID).
type Enrollment struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
	Playbook   string `json:"playbook"`
	Version    string `json:"version"`
	CustomerID string `json:"customer_id"`
	Holdout    bool   `json:"holdout"`
}

// CustomerLoader reads the profile rules are evaluated against.
type CustomerLoader interface {
	LoadCustomer(ctx context.Context, customerID string) (rules.Customer, error)
}

// Status of an enrollment.
type Status string

const (
	StatusActive    Status = "active"
	StatusCompleted Status = "completed"
	StatusConverted Status = "converted"
	StatusExited    Status = "exited"
	StatusFailed    Status = "failed"
	// StatusRejected closes an enrollment that never began its steps: the
	// re-entry policy or the audience rule turned the customer away.
	StatusRejected Status = "rejected"
)

// StepRecord is one step taken, for the enrollment record and the reports.
type StepRecord struct {
	Enrollment Enrollment `json:"enrollment"`
	Key        string     `json:"key"` // enrollment/step/visit
	StepID     string     `json:"step_id"`
	Kind       string     `json:"kind"`
	Detail     string     `json:"detail,omitempty"`
	Branch     string     `json:"branch,omitempty"` // split variant or if-branch taken
	At         time.Time  `json:"at"`
}

// Outcome closes an enrollment.
type Outcome struct {
	Enrollment Enrollment `json:"enrollment"`
	Status     Status     `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	At         time.Time  `json:"at"`
	// Goal is the goal event of a StatusConverted outcome: the enrollment
	// converts at At, if it had not converted before.
	Goal string `json:"goal,omitempty"`
}

// Conversion records that an enrollment reached its playbook's goal: the
// goal event, its ID, and when it arrived. The enrollment goes on; only
// the first conversion of an enrollment counts.
type Conversion struct {
	Enrollment Enrollment `json:"enrollment"`
	Event      string     `json:"event"`
	EventID    string     `json:"event_id,omitempty"`
	At         time.Time  `json:"at"`
}

// EntryRequest asks to open an enrollment under the playbook's entry policy.
type EntryRequest struct {
	Enrollment Enrollment    `json:"enrollment"`
	Reentry    string        `json:"reentry"` // never, always, after
	Cooldown   time.Duration `json:"cooldown,omitempty"`
	At         time.Time     `json:"at"`
	// TriggerID is the event (or scan tick) that started the enrollment.
	// One trigger admits at most one enrollment of a playbook per
	// customer, whatever the re-entry policy: a dispatch retried after
	// the first enrollment already ended must not start a second one.
	TriggerID string `json:"trigger_id,omitempty"`
	// GlobalControl says the playbook takes part in the global control
	// group: a customer in it is admitted but receives nothing
	// (EntryResult.GlobalControl).
	GlobalControl bool `json:"global_control,omitempty"`
	// WithCustomer asks for the customer's profile with an admission
	// (EntryResult.Customer), read in the admission's transaction once the
	// customer is locked: the journey needs it next, and one call costs
	// one local activity and one round trip fewer than two.
	WithCustomer bool `json:"with_customer,omitempty"`
}

// ReasonDuplicateTrigger is the refusal of a second enrollment by the same
// trigger event.
const ReasonDuplicateTrigger = "duplicate_trigger"

// EntryResult says whether the customer may enter. A customer is refused
// when the re-entry policy forbids it (an earlier enrollment of the same
// playbook, or one inside the cooldown). Asking twice for the same
// enrollment ID answers the same (idempotent).
type EntryResult struct {
	Admitted bool   `json:"admitted"`
	Reason   string `json:"reason,omitempty"`
	// GlobalControl: the admitted customer is in the global control group
	// (the request's playbook takes part, and InGlobalControl holds).
	GlobalControl bool `json:"global_control,omitempty"`
	// Customer is the customer's profile, as LoadCustomer reads it, when
	// the request asked WithCustomer and the customer was admitted.
	Customer *rules.Customer `json:"customer,omitempty"`
}

// MaxGlobalControlPct bounds the global control group, as a playbook's
// holdout is bounded.
const MaxGlobalControlPct = 50

// InGlobalControl says whether customer is in a global control group of
// pct percent: the FNV-64a bucket (0–9999) of "global-control/<customer>"
// below pct × 100. Stable for a customer while pct stays the same, and
// the same in every process (the store, the simulator and reports).
func InGlobalControl(customerID string, pct float64) bool {
	if pct <= 0 {
		return false
	}
	h := fnv.New64a()
	h.Write([]byte("global-control/" + customerID))
	return float64(h.Sum64()%10000) < pct*100
}

// Recorder keeps the enrollment record: admitted, each step, the outcome.
// The enrollments table is the source of truth for re-entry, because
// Temporal forgets closed workflows after the namespace retention.
type Recorder interface {
	RecordStart(ctx context.Context, r EntryRequest) (EntryResult, error)
	RecordStep(ctx context.Context, s StepRecord) error
	RecordConversion(ctx context.Context, c Conversion) error
	RecordOutcome(ctx context.Context, o Outcome) error
}

// SendStatus is what became of a message.
type SendStatus string

const (
	SendSent       SendStatus = "sent"
	SendSuppressed SendStatus = "suppressed"
	SendDeferred   SendStatus = "deferred" // frequency cap with action defer: try again at RetryAt
	SendFailed     SendStatus = "failed"
)

// Suppression reasons.
const (
	ReasonConsent      = "consent"
	ReasonFrequencyCap = "frequency_cap"
	ReasonHoldout      = "holdout"
	ReasonQuietHours   = "quiet_hours"
	ReasonNoAddress    = "no_address"
	// ReasonInsufficientPoints ends a journey whose points deduction was
	// refused because the balance was too small.
	ReasonInsufficientPoints = "insufficient_points"
)

// SendRequest asks for one message to be delivered. The content is the
// template variant chosen for the customer's locale; it is rendered by the
// activity, which alone knows the signing secret for the unsubscribe link.
type SendRequest struct {
	Enrollment    Enrollment     `json:"enrollment"`
	Key           string         `json:"key"`
	StepID        string         `json:"step_id"`
	Channel       string         `json:"channel"`
	Template      string         `json:"template"`
	Locale        string         `json:"locale"`
	Topic         string         `json:"topic"`
	Transactional bool           `json:"transactional,omitempty"`
	Subject       string         `json:"subject,omitempty"`
	Text          string         `json:"text,omitempty"`
	HTML          string         `json:"html,omitempty"`
	Customer      rules.Customer `json:"customer"`
	Event         rules.Event    `json:"event"`
	Coupon        rules.Coupon   `json:"coupon"`
	Now           time.Time      `json:"now"` // workflow time, for rendering
	// Playbook frequency cap, checked with the global cap in the same transaction.
	CapMax   int           `json:"cap_max,omitempty"`
	CapPer   time.Duration `json:"cap_per,omitempty"`
	CapDefer bool          `json:"cap_defer,omitempty"`
	// Tracking is the playbook's email tracking (clicks, opens), applied
	// when the message is rendered.
	Tracking engine.Tracking `json:"tracking,omitzero"`
}

// SendResult tells the journey what happened.
type SendResult struct {
	Status     SendStatus `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	ProviderID string     `json:"provider_id,omitempty"`
	To         string     `json:"to,omitempty"`
	RetryAt    time.Time  `json:"retry_at,omitzero"` // SendDeferred
}

// Messenger records a message in the outbox / contact log and delivers it.
type Messenger interface {
	SendMessage(ctx context.Context, r SendRequest) (SendResult, error)
}

// ProfileUpdate changes the customer record.
type ProfileUpdate struct {
	Enrollment Enrollment     `json:"enrollment"`
	Key        string         `json:"key"`
	CustomerID string         `json:"customer_id"`
	Set        map[string]any `json:"set,omitempty"` // core field name or "attrs.<name>" → value
	AddTags    []string       `json:"add_tags,omitempty"`
	RemoveTags []string       `json:"remove_tags,omitempty"`
	Tier       string         `json:"tier,omitempty"`
	Stage      string         `json:"stage,omitempty"`
}

// ProfileUpdater applies profile updates.
type ProfileUpdater interface {
	UpdateProfile(ctx context.Context, u ProfileUpdate) error
}

// PointsRequest awards (Delta > 0) or deducts (Delta < 0) points.
type PointsRequest struct {
	Enrollment Enrollment `json:"enrollment"`
	Key        string     `json:"key"`
	CustomerID string     `json:"customer_id"`
	Delta      int64      `json:"delta"`
	Reason     string     `json:"reason"`
}

// PointsResult is the balance after the change.
type PointsResult struct {
	Balance int64 `json:"balance"`
}

// PointsLedger keeps the append-only points ledger.
type PointsLedger interface {
	AdjustPoints(ctx context.Context, r PointsRequest) (PointsResult, error)
}

// CouponRequest issues one coupon.
type CouponRequest struct {
	Enrollment Enrollment `json:"enrollment"`
	Key        string     `json:"key"`
	CustomerID string     `json:"customer_id"`
	Kind       string     `json:"kind"`
	Value      float64    `json:"value"`
	ExpiresAt  time.Time  `json:"expires_at"`
	Prefix     string     `json:"prefix,omitempty"`
}

// CouponIssuer issues unique coupon codes.
type CouponIssuer interface {
	IssueCoupon(ctx context.Context, r CouponRequest) (rules.Coupon, error)
}

// TaskRequest hands work to a person.
type TaskRequest struct {
	Enrollment Enrollment `json:"enrollment"`
	Key        string     `json:"key"`
	CustomerID string     `json:"customer_id"`
	Assignee   string     `json:"assignee"`
	Title      string     `json:"title"`
	Priority   string     `json:"priority"`
	DueAt      time.Time  `json:"due_at"`
}

// TaskResult identifies the created task.
type TaskResult struct {
	TaskID string `json:"task_id"`
}

// TaskCreator creates hand-off tasks.
type TaskCreator interface {
	CreateTask(ctx context.Context, r TaskRequest) (TaskResult, error)
}

// All is everything a journey needs; one value implementing it is
// registered with the worker.
type All interface {
	CustomerLoader
	Recorder
	Messenger
	ProfileUpdater
	PointsLedger
	CouponIssuer
	TaskCreator
}

// ErrPermanent marks failures that a retry cannot fix (invalid address,
// unknown template, unknown customer). Wrap it; the worker turns it into a
// non-retryable Temporal error.
var ErrPermanent = errors.New("permanent failure")

// ErrInsufficientPoints is wrapped, with ErrPermanent, by the refusal of a
// deduction larger than the customer's points balance (RefuseDeduction).
var ErrInsufficientPoints = errors.New("insufficient points")

// valueError is a permanent failure whose message says all there is to
// say, in words fit for the enrollment's outcome.
type valueError struct {
	msg  string
	kind error // ErrInsufficientPoints, or nil
}

func (e *valueError) Error() string { return e.msg }

func (e *valueError) Unwrap() []error {
	if e.kind == nil {
		return []error{ErrPermanent}
	}
	return []error{ErrPermanent, e.kind}
}

// CheckCoupon checks a coupon request: a key and an expiry are required,
// and a computed value must keep the bounds the compiler applies to a
// fixed one (engine.CheckCouponValue): a percent coupon more than 0 and at
// most 100, an amount coupon more than 0 and at most
// engine.MaxCouponAmount. Anything else is a permanent failure that says
// what is wrong ("coupon value 250 is over 100 % for a percent coupon").
// Both CouponIssuers call it before issuing anything.
func CheckCoupon(r CouponRequest) error {
	if r.Key == "" {
		return &valueError{msg: fmt.Sprintf("coupon for customer %q: key is required", r.CustomerID)}
	}
	if err := engine.CheckCouponValue(r.Kind, r.Value); err != nil {
		return &valueError{msg: err.Error()}
	}
	if r.ExpiresAt.IsZero() {
		return &valueError{msg: fmt.Sprintf("coupon for customer %q: expiry is required", r.CustomerID)}
	}
	return nil
}

// CouponCodeAlphabet leaves out 0, 1, I and O, which customers misread.
const CouponCodeAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

// CouponCodeLength characters give 32^10 ≈ 10^15 codes: unguessable when
// drawn at random, and collisions practically never happen.
const CouponCodeLength = 10

// CouponCode is the code a coupon is issued under: the prefix in upper
// case and a dash, when there is one, then one character of
// CouponCodeAlphabet per byte of digits (the store draws them at random,
// Memory derives them from the key, so simulations are reproducible).
func CouponCode(prefix string, digits []byte) string {
	var b strings.Builder
	if prefix != "" {
		b.WriteString(strings.ToUpper(prefix))
		b.WriteByte('-')
	}
	for _, x := range digits {
		b.WriteByte(CouponCodeAlphabet[int(x)%len(CouponCodeAlphabet)])
	}
	return b.String()
}

// CheckPoints checks a points change against the bounds the compiler
// applies to a fixed amount (engine.CheckPointsDelta): not 0, and at most
// engine.MaxPoints either way. Both PointsLedgers call it first.
func CheckPoints(r PointsRequest) error {
	if err := engine.CheckPointsDelta(r.Delta); err != nil {
		return &valueError{msg: err.Error()}
	}
	return nil
}

// RefuseDeduction says whether a change of delta points may apply to
// balance: a balance never goes below zero, so a deduction larger than the
// balance is refused, whole (never clamped to what there is), and changes
// nothing. The refusal is a permanent failure wrapping
// ErrInsufficientPoints that names the deduction and the balance.
func RefuseDeduction(balance, delta int64) error {
	if delta >= 0 || balance+delta >= 0 {
		return nil
	}
	return &valueError{
		msg:  fmt.Sprintf("deduction of %d points refused: the balance is %d, and a balance never goes below zero", -delta, balance),
		kind: ErrInsufficientPoints,
	}
}
