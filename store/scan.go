package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/pushdown"
	"github.com/rapport-crm/rapport/rules"
)

// CustomersAfter returns up to limit customers whose id sorts after
// afterID, in id order, as customer_profiles shows them (churn risk as of
// the database clock). Scans read Candidates instead.
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
}

// candidateSQL is the page query around a predicate with n arguments:
// the profile as rules see it, relative to the scan time.
func candidateSQL(where string, n int) string {
	now, after, limit := fmt.Sprintf("$%d::timestamptz", n+1), fmt.Sprintf("$%d::text", n+2), fmt.Sprintf("$%d::bigint", n+3)
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
	return candidateSQL(where.SQL, len(where.Args))
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
	args := append(append(make([]any, 0, len(q.Where.Args)+4), pgx.QueryExecModeCacheDescribe), q.Where.Args...)
	args = append(args, q.Now, q.AfterID, q.Limit)
	// QueryExecModeCacheDescribe: an unnamed statement, so planned for
	// these arguments on every call (never a cached generic plan: whether
	// an index on the predicate or the id order serves best depends on how
	// many customers the values select), with the result types cached so
	// rows come back in binary.
	rows, err := s.pool.Query(ctx, candidateSQL(q.Where.SQL, len(q.Where.Args)), args...)
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
