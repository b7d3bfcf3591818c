package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/unsubscribe"
)

// TokenUnsubscriber is the real Unsubscriber: it verifies signed tokens
// (package unsubscribe) and withdraws consent through Applier. Customers,
// when set, supplies the customer's locale so the page speaks their
// language; a failed lookup only loses the language, never the withdrawal.
type TokenUnsubscriber struct {
	Secret    []byte
	Applier   unsubscribe.Applier
	Customers interface {
		Customer(ctx context.Context, id string) (rules.Customer, error)
	}
}

// Check implements Unsubscriber.
func (u *TokenUnsubscriber) Check(ctx context.Context, token string, now time.Time) (Unsubscription, error) {
	c, err := u.verify(token, now)
	if err != nil {
		return Unsubscription{}, err
	}
	return u.describe(ctx, c), nil
}

// Unsubscribe implements Unsubscriber.
func (u *TokenUnsubscriber) Unsubscribe(ctx context.Context, token string, now time.Time) (Unsubscription, error) {
	c, err := u.verify(token, now)
	if err != nil {
		return Unsubscription{}, err
	}
	if err := u.Applier.Unsubscribe(ctx, c); err != nil {
		return Unsubscription{}, fmt.Errorf("withdraw consent of %s for %s/%s: %w", c.Customer, c.Channel, c.Topic, err)
	}
	return u.describe(ctx, c), nil
}

// verify maps every reason a token is refused to ErrInvalidToken, except a
// missing secret, which is the operator's fault and answered with 503.
func (u *TokenUnsubscriber) verify(token string, now time.Time) (unsubscribe.Claims, error) {
	c, err := unsubscribe.Verify(u.Secret, token, now)
	switch {
	case errors.Is(err, unsubscribe.ErrNoSecret):
		return c, err
	case err != nil:
		return c, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	return c, nil
}

func (u *TokenUnsubscriber) describe(ctx context.Context, c unsubscribe.Claims) Unsubscription {
	out := Unsubscription{Topic: c.Topic, Channel: c.Channel}
	if u.Customers != nil {
		if cust, err := u.Customers.Customer(ctx, c.Customer); err == nil {
			out.Locale = cust.Locale
		}
	}
	return out
}
