package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
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

// ErrNotOnFile is a valid token for a customer the store does not have
// (never imported, or erased since the message was sent). Nothing is left
// to withdraw and nothing will be sent, so the page says so: answering 503
// would have the customer, and RFC 8058 senders, retry forever.
var ErrNotOnFile = errors.New("customer is not on file")

// Check implements Unsubscriber.
func (u *TokenUnsubscriber) Check(ctx context.Context, token string, now time.Time) (Unsubscription, error) {
	c, err := u.verify(token, now)
	if err != nil {
		return Unsubscription{}, err
	}
	out, err := u.describe(ctx, c)
	if isUnknownCustomer(err) {
		return out, ErrNotOnFile
	}
	return out, nil
}

// Unsubscribe implements Unsubscriber.
func (u *TokenUnsubscriber) Unsubscribe(ctx context.Context, token string, now time.Time) (Unsubscription, error) {
	c, err := u.verify(token, now)
	if err != nil {
		return Unsubscription{}, err
	}
	if err := u.Applier.Unsubscribe(ctx, c); isUnknownCustomer(err) {
		return Unsubscription{Topic: c.Topic, Channel: c.Channel}, ErrNotOnFile
	} else if err != nil {
		return Unsubscription{}, fmt.Errorf("withdraw consent of %s for %s/%s: %w", c.Customer, c.Channel, c.Topic, err)
	}
	out, _ := u.describe(ctx, c) // a failed lookup only loses the language
	return out, nil
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

// describe names what c withdraws, in the customer's language when the
// customer can be read; the error is the lookup's.
func (u *TokenUnsubscriber) describe(ctx context.Context, c unsubscribe.Claims) (Unsubscription, error) {
	out := Unsubscription{Topic: c.Topic, Channel: c.Channel}
	if u.Customers == nil {
		return out, nil
	}
	cust, err := u.Customers.Customer(ctx, c.Customer)
	out.Locale = cust.Locale
	return out, err
}

// isUnknownCustomer is a lookup or withdrawal that failed because the
// customer does not exist: ErrNotFound from an api Store, store.ErrNotFound
// from the PostgreSQL store applying the withdrawal.
func isUnknownCustomer(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, store.ErrNotFound)
}
