package worker

import (
	"context"
	"errors"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
)

// Instrument wraps all so that every activity call updates m: message
// outcomes, enrollment starts and outcomes, and failed attempts. It
// changes no behaviour. Counts are per activity completion: a retried call
// that the store answers from its first result (the completion of the
// first attempt was lost) counts again, which is rare and errs on the side
// of showing activity.
func Instrument(all activities.All, m *Metrics) activities.All {
	return &instrumented{all: all, m: m}
}

type instrumented struct {
	all activities.All
	m   *Metrics
}

var _ activities.All = (*instrumented)(nil)

func (i *instrumented) fail(activity string, err error) error {
	if err != nil {
		kind := "transient"
		if errors.Is(err, activities.ErrPermanent) {
			kind = "permanent"
		}
		i.m.ActivityFailures.WithLabelValues(activity, kind).Inc()
	}
	return err
}

func (i *instrumented) LoadCustomer(ctx context.Context, id string) (rules.Customer, error) {
	c, err := i.all.LoadCustomer(ctx, id)
	return c, i.fail("LoadCustomer", err)
}

func (i *instrumented) RecordStart(ctx context.Context, r activities.EntryRequest) (activities.EntryResult, error) {
	res, err := i.all.RecordStart(ctx, r)
	if err == nil && res.Admitted {
		i.m.Enrollments.WithLabelValues(r.Enrollment.Playbook, "started").Inc()
	}
	return res, i.fail("RecordStart", err)
}

func (i *instrumented) RecordStep(ctx context.Context, s activities.StepRecord) error {
	return i.fail("RecordStep", i.all.RecordStep(ctx, s))
}

func (i *instrumented) RecordConversion(ctx context.Context, c activities.Conversion) error {
	err := i.all.RecordConversion(ctx, c)
	if err == nil {
		i.m.Enrollments.WithLabelValues(c.Enrollment.Playbook, "converted").Inc()
	}
	return i.fail("RecordConversion", err)
}

func (i *instrumented) RecordOutcome(ctx context.Context, o activities.Outcome) error {
	err := i.all.RecordOutcome(ctx, o)
	if err == nil {
		i.m.Enrollments.WithLabelValues(o.Enrollment.Playbook, string(o.Status)).Inc()
	}
	return i.fail("RecordOutcome", err)
}

func (i *instrumented) SendMessage(ctx context.Context, r activities.SendRequest) (activities.SendResult, error) {
	res, err := i.all.SendMessage(ctx, r)
	status := string(res.Status)
	if err != nil {
		status = "error"
	}
	i.m.Messages.WithLabelValues(r.Channel, status).Inc()
	return res, i.fail("SendMessage", err)
}

func (i *instrumented) UpdateProfile(ctx context.Context, u activities.ProfileUpdate) error {
	return i.fail("UpdateProfile", i.all.UpdateProfile(ctx, u))
}

func (i *instrumented) AdjustPoints(ctx context.Context, r activities.PointsRequest) (activities.PointsResult, error) {
	res, err := i.all.AdjustPoints(ctx, r)
	return res, i.fail("AdjustPoints", err)
}

func (i *instrumented) IssueCoupon(ctx context.Context, r activities.CouponRequest) (rules.Coupon, error) {
	c, err := i.all.IssueCoupon(ctx, r)
	return c, i.fail("IssueCoupon", err)
}

func (i *instrumented) CreateTask(ctx context.Context, r activities.TaskRequest) (activities.TaskResult, error) {
	res, err := i.all.CreateTask(ctx, r)
	return res, i.fail("CreateTask", err)
}
