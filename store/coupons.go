package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
)

// IssueCoupon issues one coupon with a random, unguessable code (PREFIX-
// followed by ten characters). A retry with the same Key returns the
// coupon the first attempt issued.
func (s *Store) IssueCoupon(ctx context.Context, r activities.CouponRequest) (rules.Coupon, error) {
	if err := checkCoupon(r); err != nil {
		return rules.Coupon{}, err
	}
	for attempt := 0; attempt < 5; attempt++ {
		c, err := s.insertCoupon(ctx, r, newCode(r.Prefix))
		if isUniqueViolation(err) {
			continue // the random code is taken; draw another
		}
		if isForeignKeyViolation(err) {
			return rules.Coupon{}, errUnknownCustomer(r.CustomerID)
		}
		if err != nil {
			return rules.Coupon{}, fmt.Errorf("issue coupon for customer %q (key %s): %w", r.CustomerID, r.Key, err)
		}
		return c, nil
	}
	return rules.Coupon{}, fmt.Errorf("issue coupon for customer %q (key %s): no free code after 5 draws", r.CustomerID, r.Key)
}

// checkCoupon refuses, permanently, a request without a key or expiry, and
// a kind or value out of the bounds the compiler applies to a fixed value
// (activities.CheckCoupon: "coupon value 250 is over 100 % for a percent
// coupon").
func checkCoupon(r activities.CouponRequest) error {
	return activities.CheckCoupon(r)
}

// insertCoupon inserts the coupon unless the key exists, and returns
// whichever coupon holds the key.
func (s *Store) insertCoupon(ctx context.Context, r activities.CouponRequest, code string) (rules.Coupon, error) {
	var c rules.Coupon
	scan := func(row pgx.Row) error {
		err := row.Scan(&c.Code, &c.Kind, &c.Value, &c.ExpiresAt)
		c.ExpiresAt = c.ExpiresAt.UTC()
		return err
	}
	err := scan(s.pool.QueryRow(ctx, `
		INSERT INTO coupons (code, key, customer_id, enrollment_id, kind, value, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (key) DO NOTHING
		RETURNING code, kind, value, expires_at`,
		code, r.Key, r.CustomerID, r.Enrollment.ID, r.Kind, r.Value, r.ExpiresAt))
	if errors.Is(err, pgx.ErrNoRows) {
		// The key was taken (by an earlier attempt, possibly one that
		// committed while this statement waited): answer with its coupon.
		err = scan(s.pool.QueryRow(ctx, `SELECT code, kind, value, expires_at FROM coupons WHERE key = $1`, r.Key))
	}
	return c, err
}

// newCode draws a random, unguessable code (activities.CouponCode).
func newCode(prefix string) string {
	buf := make([]byte, activities.CouponCodeLength)
	if _, err := rand.Read(buf); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return activities.CouponCode(prefix, buf)
}
