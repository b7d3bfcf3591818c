package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/rules"
)

// Partition is one of Count slices of the customers, cut by a hash of
// their id into Count contiguous ranges of the 32-bit hash space, so that
// Count scans, each reading its own partition, together read every
// customer exactly once, whatever the ids look like and however many
// customers are added meanwhile. The zero value (Count 0, or 1) is every
// customer.
//
// The hash is PostgreSQL's hashtext(id), computed by the server and
// nowhere else: a scan's partitions query the same server within the
// same scan, so all that matters is that one server hashes one id the
// same way every time, which it does. (hashtext is internal and could
// change in a major release; nothing stores its values.)
type Partition struct {
	Index int `json:"index"` // 0 … Count-1
	Count int `json:"count"`
}

// MaxPartitions bounds Partition.Count: a scan starts one child workflow
// per partition.
const MaxPartitions = 256

// Check reports a partition that does not exist.
func (p Partition) Check() error {
	if p.Count < 0 || p.Count > MaxPartitions || p.Index < 0 || (p.Count > 0 && p.Index >= p.Count) || (p.Count == 0 && p.Index != 0) {
		return fmt.Errorf("partition %d of %d: want an index from 0 to count-1 and a count from 1 to %d", p.Index, p.Count, MaxPartitions)
	}
	return nil
}

// Bounds is the partition's range of hashtext values, both ends
// included: partition i of n holds [⌊i·2³²/n⌋ − 2³¹, ⌊(i+1)·2³²/n⌋ − 1 −
// 2³¹], so the ranges of one count are contiguous and cover every int4.
func (p Partition) Bounds() (lo, hi int32) {
	if p.Count <= 1 {
		return math.MinInt32, math.MaxInt32
	}
	n := int64(p.Count)
	return int32(int64(p.Index)<<32/n + math.MinInt32), int32((int64(p.Index)+1)<<32/n - 1 + math.MinInt32)
}

// CustomersAfter returns up to limit customers of partition part whose id
// sorts after afterID, in id order: keyset pagination for segment and date
// scans, so a scan of any size reads one bounded page at a time and never
// skips or repeats a customer when rows are inserted meanwhile.
//
// A partition of several walks the primary key in id order from the
// cursor (an index-only scan), keeps the ids whose hash is in its range
// until it has a page, and reads only those profiles. The walk is fenced
// off (OFFSET 0) so the planner cannot estimate the hash range as rare and
// choose to read and sort the whole table for every page (it did: a
// second per page at 100,000 customers). So a partition reads the index
// entries of every customer after its cursor, n times the index for n
// partitions, but the profiles of its own customers only.
func (s *Store) CustomersAfter(ctx context.Context, afterID string, limit int, part Partition) ([]rules.Customer, error) {
	if err := part.Check(); err != nil {
		return nil, fmt.Errorf("scan customers after %q: %w", afterID, err)
	}
	var rows pgx.Rows
	var err error
	if part.Count <= 1 {
		rows, err = s.pool.Query(ctx, `SELECT `+customerColumns+` FROM customer_profiles WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
	} else {
		lo, hi := part.Bounds()
		rows, err = s.pool.Query(ctx, `SELECT `+customerColumns+` FROM customer_profiles WHERE id IN (
				SELECT id FROM (SELECT id FROM customers WHERE id > $1 ORDER BY id OFFSET 0) ids
				WHERE hashtext(id) BETWEEN $3 AND $4 ORDER BY id LIMIT $2)
			ORDER BY id`, afterID, limit, lo, hi)
	}
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
