package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/rules"
)

// CustomersAfter returns up to limit customers whose id sorts after
// afterID, in id order: keyset pagination for segment and date scans, so a
// scan of any size reads one bounded page at a time and never skips or
// repeats a customer when rows are inserted meanwhile.
func (s *Store) CustomersAfter(ctx context.Context, afterID string, limit int) ([]rules.Customer, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+customerColumns+` FROM customer_profiles WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("scan customers after %q: %w", afterID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rules.Customer, error) { return scanCustomer(r) })
	if err != nil {
		return nil, fmt.Errorf("scan customers after %q: %w", afterID, err)
	}
	return out, nil
}

// EntryHistory summarises one customer's enrollments in one playbook, the
// facts the re-entry policy looks at.
type EntryHistory struct {
	Any    bool       // an enrollment that was not rejected exists
	Active bool       // one is still running
	Last   *time.Time // start of the latest one
}

// EntryHistories reads the EntryHistory of each customer in ids for
// playbook in one query, so a scan can skip customers the re-entry policy
// would refuse without starting a workflow per customer. Customers without
// enrollments are absent from the map. RecordStart stays the authority:
// this is only a pre-filter.
func (s *Store) EntryHistories(ctx context.Context, playbook string, ids []string) (map[string]EntryHistory, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT customer_id, coalesce(bool_or(status = 'active'), false), max(started_at)
		FROM enrollments
		WHERE playbook = $1 AND customer_id = ANY($2) AND status <> 'rejected'
		GROUP BY customer_id`, playbook, ids)
	if err != nil {
		return nil, fmt.Errorf("entry histories of %s: %w", playbook, err)
	}
	defer rows.Close()
	out := map[string]EntryHistory{}
	for rows.Next() {
		var id string
		var h EntryHistory
		if err := rows.Scan(&id, &h.Active, &h.Last); err != nil {
			return nil, fmt.Errorf("entry histories of %s: %w", playbook, err)
		}
		h.Any = true
		out[id] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("entry histories of %s: %w", playbook, err)
	}
	return out, nil
}
