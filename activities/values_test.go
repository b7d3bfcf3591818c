package activities

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/rapport-crm/rapport/rules"
)

// A computed coupon value is held to the compiler's bounds for a fixed
// one: the activity refuses it, permanently, in plain words, and issues
// nothing.
func TestMemoryCouponValueBounds(t *testing.T) {
	m, ctx := newMem(), context.Background()
	for _, tc := range []struct {
		kind  string
		value float64
		want  string
	}{
		{"percent", 250, "coupon value 250 is over 100 % for a percent coupon"},
		{"percent", 100.5, "coupon value 100.5 is over 100 % for a percent coupon"},
		{"percent", 0, "coupon value 0 is not more than 0; a coupon must be worth something"},
		{"amount", -20, "coupon value -20 is not more than 0; a coupon must be worth something"},
		{"amount", 2e9, "coupon value 2000000000 is over 1000000000 for an amount coupon"},
		{"gift", 5, `coupon kind "gift" is not percent or amount`},
	} {
		_, err := m.IssueCoupon(ctx, CouponRequest{Key: "e1/c/" + tc.want, CustomerID: "c1", Kind: tc.kind, Value: tc.value, ExpiresAt: t0})
		if err == nil || err.Error() != tc.want || !errors.Is(err, ErrPermanent) {
			t.Errorf("%s coupon of %v: err = %v; want permanent %q", tc.kind, tc.value, err, tc.want)
		}
	}
	if n := len(m.Coupons()); n != 0 {
		t.Errorf("%d coupons issued out of bounds", n)
	}
	for _, ok := range []CouponRequest{{Kind: "percent", Value: 100}, {Kind: "percent", Value: 0.5}, {Kind: "amount", Value: 250}} {
		ok.Key, ok.CustomerID, ok.ExpiresAt = "ok/"+ok.Kind+rules.Format(ok.Value), "c1", t0
		if _, err := m.IssueCoupon(ctx, ok); err != nil {
			t.Errorf("%s coupon of %v refused: %v", ok.Kind, ok.Value, err)
		}
	}
}

// A deduction larger than the balance is refused, whole, with the reason;
// the balance and the ledger do not move. A deduction the balance covers
// (to exactly zero) goes through.
func TestMemoryDeductionBeyondBalanceRefused(t *testing.T) {
	m, ctx := newMem(), context.Background()
	m.Put(rules.Customer{ID: "c2", Points: 17})
	_, err := m.AdjustPoints(ctx, PointsRequest{Enrollment: enr("e1"), Key: "e1/take/1", CustomerID: "c2", Delta: -4983, Reason: "refund"})
	const want = "deduction of 4983 points refused: the balance is 17, and a balance never goes below zero"
	if err == nil || err.Error() != want {
		t.Fatalf("deduct 4983 of 17: err = %v, want %q", err, want)
	}
	if !errors.Is(err, ErrPermanent) || !errors.Is(err, ErrInsufficientPoints) {
		t.Errorf("refusal %v is not permanent and insufficient points", err)
	}
	if c, _ := m.Customer("c2"); c.Points != 17 {
		t.Errorf("balance after the refusal = %d, want 17 unchanged", c.Points)
	}
	if l := m.Ledger("c2"); len(l) != 0 {
		t.Errorf("ledger after the refusal: %+v", l)
	}
	// The Temporal adapter gives the refusal its own non-retryable type.
	_, terr := NewTemporal(m).AdjustPoints(ctx, PointsRequest{Key: "e1/take/1", CustomerID: "c2", Delta: -4983})
	var app *temporal.ApplicationError
	if !errors.As(terr, &app) || !app.NonRetryable() || app.Type() != ErrTypeInsufficientPoints || app.Message() != want {
		t.Errorf("adapter error = %#v", terr)
	}
	if n := strings.Count(terr.Error(), want); n != 1 {
		t.Errorf("adapter error says the reason %d times: %v", n, terr)
	}
	res, err := m.AdjustPoints(ctx, PointsRequest{Key: "e1/take/2", CustomerID: "c2", Delta: -17, Reason: "redeem"})
	if err != nil || res.Balance != 0 {
		t.Fatalf("deduct 17 of 17: %+v, %v; want balance 0", res, err)
	}
	if _, err := m.AdjustPoints(ctx, PointsRequest{Key: "e1/take/3", CustomerID: "c2", Delta: -1}); !errors.Is(err, ErrInsufficientPoints) {
		t.Errorf("deduct 1 of 0: err = %v, want refused", err)
	}
	if res, err := m.AdjustPoints(ctx, PointsRequest{Key: "e1/give/1", CustomerID: "c2", Delta: 5}); err != nil || res.Balance != 5 {
		t.Errorf("award 5 to 0: %+v, %v", res, err)
	}
}

// Computed points are held to the compiler's bounds for a fixed amount.
func TestMemoryPointsBounds(t *testing.T) {
	m, ctx := newMem(), context.Background()
	for delta, want := range map[int64]string{
		0:              "points amount 0 is not more than 0; award or deduct a positive number of points",
		2_000_000_000:  "points amount 2000000000 is over 1000000000, the most one step may award or deduct",
		-2_000_000_000: "points amount 2000000000 is over 1000000000, the most one step may award or deduct",
	} {
		_, err := m.AdjustPoints(ctx, PointsRequest{Key: "k" + rules.Format(float64(delta)), CustomerID: "c1", Delta: delta})
		if err == nil || err.Error() != want || !errors.Is(err, ErrPermanent) {
			t.Errorf("delta %d: err = %v, want permanent %q", delta, err, want)
		}
	}
	if c, _ := m.Customer("c1"); c.Points != 100 {
		t.Errorf("balance %d, want 100 unchanged", c.Points)
	}
}
