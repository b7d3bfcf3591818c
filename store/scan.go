package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/pushdown"
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

// CandidateQuery asks for one keyset page of a scan's candidates.
type CandidateQuery struct {
	// Where is the trigger's predicate (pushdown.Selection.Bind).
	Where pushdown.Predicate
	// Now is the scan time: churn risk is computed as of it, as the
	// rules see days since the last purchase.
	Now time.Time
	// AfterID is the keyset cursor: the last id already read.
	AfterID string
	// Limit is the page size.
	Limit int
	// Partition is the slice of the customers read (the zero value:
	// everyone); a scan split across workers reads one each.
	Partition Partition
}

// candidateSQL is the page query around a predicate with n arguments:
// the profile as rules see it, relative to the scan time.
func candidateSQL(where string, n int, partitioned bool) string {
	now, after, limit := fmt.Sprintf("$%d::timestamptz", n+1), fmt.Sprintf("$%d::text", n+2), fmt.Sprintf("$%d::bigint", n+3)
	if partitioned {
		where = fmt.Sprintf("hashtext(c.id) BETWEEN $%d::int4 AND $%d::int4 AND (%s)", n+4, n+5, where)
	}
	return `SELECT c.id, c.email, c.phone, c.name, c.locale, c.timezone, c.tier, c.stage, c.points,
	` + pushdown.LifetimeValueSQL + `,
	c.order_count, c.avg_order_value, c.purchase_gap_days,
	` + pushdown.ChurnRiskSQL(now) + `,
	c.last_purchase_at, c.birthday, c.signup_at, c.tags, c.attrs
FROM customers c
WHERE c.id > ` + after + ` AND (` + where + `)
ORDER BY c.id
LIMIT ` + limit
}

// CandidateSQL is the query Candidates runs for a predicate, for
// `rapport explain`.
func CandidateSQL(where pushdown.Predicate) string {
	return candidateSQL(where.SQL, len(where.Args), false)
}

// Candidates returns up to q.Limit customers after q.AfterID, in id order,
// that satisfy q.Where (see EachCandidate).
func (s *Store) Candidates(ctx context.Context, q CandidateQuery) ([]rules.Customer, error) {
	var out []rules.Customer
	err := s.EachCandidate(ctx, q, func(c rules.Customer) error {
		out = append(out, c)
		return nil
	})
	return out, err
}

// EachCandidate streams to fn, in id order, up to q.Limit customers after
// q.AfterID that satisfy q.Where: keyset pagination over the customers a
// trigger can select, so a scan reads candidates, not everyone, and never
// skips or repeats one when rows are inserted meanwhile. Churn risk is as
// of q.Now. One query, whose connection is held while fn runs: fn must
// not wait for another pooled connection. An error from fn stops the
// query and is returned.
func (s *Store) EachCandidate(ctx context.Context, q CandidateQuery, fn func(rules.Customer) error) error {
	if err := q.Partition.Check(); err != nil {
		return fmt.Errorf("scan candidates after %q: %w", q.AfterID, err)
	}
	partitioned := q.Partition.Count > 1
	args := append(append(make([]any, 0, len(q.Where.Args)+6), pgx.QueryExecModeCacheDescribe), q.Where.Args...)
	args = append(args, q.Now, q.AfterID, q.Limit)
	if partitioned {
		lo, hi := q.Partition.Bounds()
		args = append(args, lo, hi)
	}
	// QueryExecModeCacheDescribe: an unnamed statement, so planned for
	// these arguments on every call (never a cached generic plan: whether
	// an index on the predicate or the id order serves best depends on how
	// many customers the values select), with the result types cached so
	// rows come back in binary.
	rows, err := s.pool.Query(ctx, candidateSQL(q.Where.SQL, len(q.Where.Args), partitioned), args...)
	if err != nil {
		return fmt.Errorf("scan candidates after %q: %w", q.AfterID, err)
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return fmt.Errorf("scan candidates after %q: %w", q.AfterID, err)
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scan candidates after %q: %w", q.AfterID, err)
	}
	return nil
}

// TimeZones returns the distinct time zones (customers.timezone, as
// written) of the customers with a birthday (field "birthday") or a signup
// time ("signup_at"), in order. A loose index scan: one index probe per
// zone, not a read of every customer.
func (s *Store) TimeZones(ctx context.Context, field string) ([]string, error) {
	var cond string
	switch field {
	case "birthday":
		cond = "birthday IS NOT NULL"
	case "signup_at":
		cond = "signup_at IS NOT NULL"
	default:
		return nil, fmt.Errorf("time zones of %q: not a date field (birthday, signup_at)", field)
	}
	rows, err := s.pool.Query(ctx, `
		WITH RECURSIVE z AS (
			(SELECT timezone FROM customers WHERE `+cond+` ORDER BY timezone LIMIT 1)
			UNION ALL
			SELECT (SELECT c.timezone FROM customers c WHERE c.`+cond+` AND c.timezone > z.timezone ORDER BY c.timezone LIMIT 1)
			FROM z WHERE z.timezone IS NOT NULL)
		SELECT timezone FROM z WHERE timezone IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("time zones of customers with a %s: %w", field, err)
	}
	zones, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("time zones of customers with a %s: %w", field, err)
	}
	return zones, nil
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
