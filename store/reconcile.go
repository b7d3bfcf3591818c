package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/activities"
)

// ActiveEnrollment is an enrollment still recorded as active, as the
// reconciler (package reconcile) reads it to ask Temporal whether its
// workflow is still running.
type ActiveEnrollment struct {
	activities.Enrollment
	StartedAt time.Time
}

// Cursor is the position of a page of active enrollments: the last
// enrollment of the previous page, in (started_at, id) order. The zero
// Cursor is the start.
type Cursor struct {
	StartedAt time.Time `json:"started_at,omitzero"`
	ID        string    `json:"id,omitempty"`
}

// ActiveQuery selects a page of active enrollments.
type ActiveQuery struct {
	// StartedBefore excludes enrollments that started at or after it, so
	// that a journey that is just starting is not judged.
	StartedBefore time.Time
	After         Cursor
	Limit         int
}

// ActiveEnrollments lists the enrollments still active that started
// before q.StartedBefore, oldest first (by started_at, then id), after the
// cursor, at most q.Limit (default 100). The next page starts after the
// last one returned; an empty page is the end.
func (s *Store) ActiveEnrollments(ctx context.Context, q ActiveQuery) ([]ActiveEnrollment, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.StartedBefore.IsZero() {
		return nil, errors.New("active enrollments: StartedBefore is required")
	}
	after := q.After.StartedAt
	if after.IsZero() {
		after = time.Time{}.UTC() // year 1: before every enrollment
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, workflow_id, playbook, version, customer_id, holdout, started_at
		FROM enrollments
		WHERE status = 'active' AND started_at < $1 AND (started_at, id) > ($2, $3)
		ORDER BY started_at, id
		LIMIT $4`, q.StartedBefore, after, q.After.ID, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("active enrollments: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ActiveEnrollment, error) {
		var a ActiveEnrollment
		err := r.Scan(&a.ID, &a.WorkflowID, &a.Playbook, &a.Version, &a.CustomerID, &a.Holdout, &a.StartedAt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("active enrollments: %w", err)
	}
	return out, nil
}

// CloseActive ends an enrollment whose workflow closed without recording
// its outcome: it sets o.Status and o.Reason (ended at o.At, or now) only
// while the enrollment is still active, so an outcome the journey
// recorded first is never overwritten, and a RecordOutcome that comes
// after finds it closed and changes nothing. Its messages still queued are
// closed as RecordOutcome closes them, in the same transaction. It
// reports whether it closed the enrollment; false means it was no longer
// active (or never recorded).
func (s *Store) CloseActive(ctx context.Context, o activities.Outcome) (bool, error) {
	id := o.Enrollment.ID
	if id == "" {
		return false, permanent("close enrollment: id is required")
	}
	if !finalStatus(o.Status) {
		return false, permanent("close enrollment %s: %q is not a final status", id, o.Status)
	}
	closed := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE enrollments SET status = $2, reason = $3, ended_at = $4, updated_at = now()
			WHERE id = $1 AND status = 'active'`, id, string(o.Status), o.Reason, orNow(o.At))
		if err != nil {
			return err
		}
		if closed = tag.RowsAffected() == 1; !closed {
			return nil
		}
		return closeUndelivered(ctx, tx, id)
	})
	if err != nil {
		return false, fmt.Errorf("close enrollment %s: %w", id, err)
	}
	return closed, nil
}
