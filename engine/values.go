package engine

import (
	"fmt"
	"math"
	"strconv"
)

// Bounds of coupon values and points. The compiler applies them to fixed
// values in a playbook; the activities (activities.Memory and the store)
// apply them to every value at run time, so a calculation can issue
// nothing a fixed value could not. Every value must be more than 0.
const (
	// MaxPercentCoupon is the most a percent coupon can take off: 100 %.
	MaxPercentCoupon = 100
	// MaxCouponAmount is the largest amount coupon, in the shop's
	// currency: a guard against a calculation gone wrong (and within the
	// store's numeric(14, 2) column).
	MaxCouponAmount = 1_000_000_000
	// MaxPoints is the most points one step may award or deduct: a guard
	// against a calculation gone wrong (and far from int64 overflow).
	MaxPoints = 1_000_000_000
)

// Coupon kinds.
const (
	CouponPercent = "percent"
	CouponAmount  = "amount"
)

// CheckCouponValue says, in plain words, why v is no value for a coupon of
// kind ("percent" or "amount"), or returns nil.
func CheckCouponValue(kind string, v float64) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Errorf("coupon value %s is not a number", formatValue(v))
	case v <= 0:
		return fmt.Errorf("coupon value %s is not more than 0; a coupon must be worth something", formatValue(v))
	case kind == CouponPercent && v > MaxPercentCoupon:
		return fmt.Errorf("coupon value %s is over %d %% for a percent coupon", formatValue(v), MaxPercentCoupon)
	case kind == CouponAmount && v > MaxCouponAmount:
		return fmt.Errorf("coupon value %s is over %s for an amount coupon", formatValue(v), formatValue(MaxCouponAmount))
	case kind != CouponPercent && kind != CouponAmount:
		return fmt.Errorf("coupon kind %q is not %s or %s", kind, CouponPercent, CouponAmount)
	}
	return nil
}

// CheckPoints says, in plain words, why amount is no number of points to
// award or deduct in one step (the amount is what the playbook asks for,
// before the sign of a deduction), or returns nil. A journey rounds the
// amount to whole points; a fraction under one half rounds to nothing and
// is no error here.
func CheckPoints(amount float64) error {
	switch {
	case math.IsNaN(amount) || math.IsInf(amount, 0):
		return fmt.Errorf("points amount %s is not a number", formatValue(amount))
	case amount <= 0:
		return fmt.Errorf("points amount %s is not more than 0; award or deduct a positive number of points", formatValue(amount))
	case amount > MaxPoints:
		return pointsOver(formatValue(amount))
	}
	return nil
}

func pointsOver(amount string) error {
	return fmt.Errorf("points amount %s is over %s, the most one step may award or deduct", amount, formatValue(MaxPoints))
}

// CheckPointsDelta is CheckPoints for a signed change of whole points, as
// a points ledger receives it (negative for a deduction).
func CheckPointsDelta(delta int64) error {
	size := uint64(delta)
	if delta < 0 {
		size = -size // exact even for the most negative int64
	}
	if size > MaxPoints {
		return pointsOver(strconv.FormatUint(size, 10))
	}
	return CheckPoints(float64(size))
}

// formatValue prints a number as a marketer writes it: 250, 12.5,
// 1000000000 (no exponent, no trailing zeros).
func formatValue(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}
