package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/rapport-crm/rapport/rules"
)

// ErrTypePermanent is the Temporal application error type of failures that
// wrap ErrPermanent. Journeys list it in their retry policies' non-retryable
// types, and the adapter marks such errors non-retryable as well.
const ErrTypePermanent = "Permanent"

// Registered names of the Temporal adapter's methods, by which journeys
// call them as local activities.
const (
	ActLoadCustomer  = "LoadCustomer"
	ActRecordStart   = "RecordStart"
	ActRecordStep    = "RecordStep"
	ActRecordOutcome = "RecordOutcome"
	// ActRecordConversion is called by journeys whose goal lets them go
	// on after converting (plans compiled since goals measure).
	ActRecordConversion = "RecordConversion"
	ActSendMessage      = "SendMessage"
	ActUpdateProfile    = "UpdateProfile"
	ActAdjustPoints     = "AdjustPoints"
	ActIssueCoupon      = "IssueCoupon"
	ActCreateTask       = "CreateTask"
)

// Temporal adapts an All for registration with a Temporal worker
// (worker.RegisterActivity(activities.NewTemporal(all))). Its methods are
// registered under their own names — LoadCustomer, RecordStart, … — which
// the journey workflow uses to call them as local activities. The only thing
// it adds is error translation: an error wrapping ErrPermanent becomes a
// non-retryable Temporal application error, so a retry that cannot help is
// never attempted; every other error is retried under the caller's policy.
type Temporal struct {
	all All
}

// NewTemporal wraps all for a Temporal worker.
func NewTemporal(all All) *Temporal { return &Temporal{all: all} }

// LoadCustomer reads the customer profile.
func (t *Temporal) LoadCustomer(ctx context.Context, customerID string) (rules.Customer, error) {
	c, err := t.all.LoadCustomer(ctx, customerID)
	return c, temporalError(err)
}

// RecordStart opens an enrollment under the entry policy.
func (t *Temporal) RecordStart(ctx context.Context, r EntryRequest) (EntryResult, error) {
	res, err := t.all.RecordStart(ctx, r)
	return res, temporalError(err)
}

// RecordStep records one step of an enrollment.
func (t *Temporal) RecordStep(ctx context.Context, s StepRecord) error {
	return temporalError(t.all.RecordStep(ctx, s))
}

// RecordConversion records that an enrollment reached its goal.
func (t *Temporal) RecordConversion(ctx context.Context, c Conversion) error {
	return temporalError(t.all.RecordConversion(ctx, c))
}

// RecordOutcome closes an enrollment.
func (t *Temporal) RecordOutcome(ctx context.Context, o Outcome) error {
	return temporalError(t.all.RecordOutcome(ctx, o))
}

// SendMessage records and delivers one message.
func (t *Temporal) SendMessage(ctx context.Context, r SendRequest) (SendResult, error) {
	res, err := t.all.SendMessage(ctx, r)
	return res, temporalError(err)
}

// UpdateProfile changes the customer record.
func (t *Temporal) UpdateProfile(ctx context.Context, u ProfileUpdate) error {
	return temporalError(t.all.UpdateProfile(ctx, u))
}

// AdjustPoints awards or deducts loyalty points.
func (t *Temporal) AdjustPoints(ctx context.Context, r PointsRequest) (PointsResult, error) {
	res, err := t.all.AdjustPoints(ctx, r)
	return res, temporalError(err)
}

// IssueCoupon issues one coupon.
func (t *Temporal) IssueCoupon(ctx context.Context, r CouponRequest) (rules.Coupon, error) {
	c, err := t.all.IssueCoupon(ctx, r)
	return c, temporalError(err)
}

// CreateTask hands work to a person.
func (t *Temporal) CreateTask(ctx context.Context, r TaskRequest) (TaskResult, error) {
	res, err := t.all.CreateTask(ctx, r)
	return res, temporalError(err)
}

// ErrTypeInsufficientPoints is the Temporal application error type of a
// deduction refused for want of points (ErrInsufficientPoints): permanent
// and non-retryable like ErrTypePermanent, and told apart from other
// failures so a journey can record the refusal instead of failing.
const ErrTypeInsufficientPoints = "InsufficientPoints"

// temporalError marks permanent failures as non-retryable and passes every
// other error through unchanged. The application error carries the
// message alone, not err as its cause as well, so the journey's reason
// says it once.
func temporalError(err error) error {
	if err == nil || !errors.Is(err, ErrPermanent) {
		return err
	}
	typ := ErrTypePermanent
	if errors.Is(err, ErrInsufficientPoints) {
		typ = ErrTypeInsufficientPoints
	}
	return temporal.NewNonRetryableApplicationError(err.Error(), typ, nil)
}
