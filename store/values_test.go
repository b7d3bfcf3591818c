package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store/storetest"
)

// A computed coupon value is held to the compiler's bounds for a fixed
// one: refused, permanently, in plain words, and nothing is issued.
func TestCouponValueOutOfBoundsRefused(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	mustCustomer(t, s, rules.Customer{ID: "c1"})
	for i, tc := range []struct {
		kind  string
		value float64
		want  string
	}{
		{"percent", 250, "coupon value 250 is over 100 % for a percent coupon"},
		{"percent", 0, "coupon value 0 is not more than 0; a coupon must be worth something"},
		{"amount", -20, "coupon value -20 is not more than 0; a coupon must be worth something"},
		{"amount", 2e9, "coupon value 2000000000 is over 1000000000 for an amount coupon"},
		{"gift", 5, `coupon kind "gift" is not percent or amount`},
	} {
		_, err := s.IssueCoupon(ctx, activities.CouponRequest{Key: fmt.Sprint("bad/", i), CustomerID: "c1", Kind: tc.kind, Value: tc.value, ExpiresAt: t0})
		if err == nil || err.Error() != tc.want || !errors.Is(err, activities.ErrPermanent) {
			t.Errorf("%s coupon of %v: err = %v; want permanent %q", tc.kind, tc.value, err, tc.want)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM coupons`); n != 0 {
		t.Errorf("%d coupons issued out of bounds", n)
	}
	c, err := s.IssueCoupon(ctx, activities.CouponRequest{Key: "ok", CustomerID: "c1", Kind: "percent", Value: 100, ExpiresAt: t0})
	if err != nil || c.Value != 100 {
		t.Errorf("100 percent coupon: %+v, %v", c, err)
	}
}

// Computed points are held to the compiler's bounds for a fixed amount.
func TestPointsOutOfBoundsRefused(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	mustCustomer(t, s, rules.Customer{ID: "c1"})
	for delta, want := range map[int64]string{
		0:              "points amount 0 is not more than 0; award or deduct a positive number of points",
		2_000_000_000:  "points amount 2000000000 is over 1000000000, the most one step may award or deduct",
		-2_000_000_000: "points amount 2000000000 is over 1000000000, the most one step may award or deduct",
	} {
		_, err := s.AdjustPoints(ctx, activities.PointsRequest{Key: fmt.Sprint(delta), CustomerID: "c1", Delta: delta})
		if err == nil || err.Error() != want || !errors.Is(err, activities.ErrPermanent) {
			t.Errorf("delta %d: err = %v, want permanent %q", delta, err, want)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM points_ledger`); n != 0 {
		t.Errorf("%d ledger entries out of bounds", n)
	}
}
