package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/activities"
)

// AdjustPoints appends one entry to the points ledger and moves the
// customer's balance in the same transaction, with the customer row
// locked, so concurrent awards to one customer never lose an update and
// the balance always equals the ledger's sum. A change out of the bounds
// of activities.CheckPoints fails permanently. A balance never goes below
// zero: a deduction larger than the balance is refused whole, never
// clamped, with a permanent error wrapping activities.ErrInsufficientPoints
// (activities.RefuseDeduction), and the ledger and balance stay as they
// were. A retry with the same Key returns the balance its first attempt
// produced; a refused one is decided again.
func (s *Store) AdjustPoints(ctx context.Context, r activities.PointsRequest) (activities.PointsResult, error) {
	if r.Key == "" {
		return activities.PointsResult{}, permanent("points for customer %q: key is required", r.CustomerID)
	}
	if err := activities.CheckPoints(r); err != nil {
		return activities.PointsResult{}, err
	}
	var current, balance int64
	var recorded *int64
	found := true
	// Two round trips: BEGIN with the lock and the ledger read, then the
	// ledger entry and balance update with COMMIT. The ledger is read
	// after the lock is held, so a racing attempt with the same key has
	// either committed (and is seen) or not begun.
	err := s.inPipelinedTx(ctx, func(b *pgx.Batch) {
		b.Queue(`SELECT points FROM customers WHERE id = $1 FOR UPDATE`, r.CustomerID).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&current)
			if errors.Is(err, pgx.ErrNoRows) {
				found = false
				return nil
			}
			return err
		})
		b.Queue(`SELECT balance_after FROM points_ledger WHERE key = $1`, r.Key).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&recorded)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		})
	}, func() (*pgx.Batch, error) {
		if !found {
			return nil, errUnknownCustomer(r.CustomerID)
		}
		if recorded != nil {
			balance = *recorded
			return nil, nil
		}
		if err := activities.RefuseDeduction(current, r.Delta); err != nil {
			return nil, err
		}
		balance = current + r.Delta
		b := &pgx.Batch{}
		b.Queue(`
			INSERT INTO points_ledger (key, customer_id, enrollment_id, delta, reason, balance_after)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			r.Key, r.CustomerID, r.Enrollment.ID, r.Delta, r.Reason, balance)
		b.Queue(`UPDATE customers SET points = $2, updated_at = now() WHERE id = $1`, r.CustomerID, balance)
		return b, nil
	})
	if errors.Is(err, activities.ErrInsufficientPoints) {
		return activities.PointsResult{}, err // the refusal says it all, in the marketer's words
	}
	if err != nil {
		return activities.PointsResult{}, fmt.Errorf("adjust points of customer %q by %d (key %s): %w", r.CustomerID, r.Delta, r.Key, err)
	}
	return activities.PointsResult{Balance: balance}, nil
}
