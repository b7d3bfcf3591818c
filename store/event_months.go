package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Events are partitioned by the UTC month of their time (migration
// 00015). The first write of a month creates its partition
// (rapport_events_partition): in a short transaction of its own before
// the write's transaction where the month is known beforehand
// (withEventMonths: Ingest, InsertEvent, RecordFeedbackBatch), else inside the writing transaction
// (an anonymous visitor's events moving to a customer), where PostgreSQL
// sees every lock the creation waits for and detects any deadlock.
// Retention (Maintain) drops old months.

// eventMonths remembers the months this process has created or found a
// partition for, so that only the first event of a month pays the check.
// An entry can go stale (retention dropped the month, or the transaction
// that created it rolled back): the insert then fails with "no
// partition", and withEventMonths forgets the cache and runs again.
type eventMonths struct {
	mu    sync.Mutex
	known map[int]bool
}

// monthOf is the UTC month of t as a number (year*12 + month-1).
func monthOf(t time.Time) int {
	t = t.UTC()
	return t.Year()*12 + int(t.Month()) - 1
}

func (m *eventMonths) has(t time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.known[monthOf(t)]
}

func (m *eventMonths) add(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.known == nil {
		m.known = map[int]bool{}
	}
	m.known[monthOf(t)] = true
}

// forget drops every remembered month.
func (m *eventMonths) forget() {
	m.mu.Lock()
	m.known = nil
	m.mu.Unlock()
}

// ensureEventMonth makes sure the partition for t exists: through q,
// the pool (its own transaction) or the writing transaction.
func (s *Store) ensureEventMonth(ctx context.Context, q execer, t time.Time) error {
	if s.months.has(t) {
		return nil
	}
	if _, err := q.Exec(ctx, `SELECT rapport_events_partition($1)`, t); err != nil {
		return fmt.Errorf("create events partition for %s: %w", t.UTC().Format("2006-01"), err)
	}
	s.months.add(t)
	return nil
}

// EnsureEventMonths creates the partitions for every month from from to
// to (both included); bulk loads (bench, imports with COPY) call it
// before they copy into events.
func (s *Store) EnsureEventMonths(ctx context.Context, from, to time.Time) error {
	_, err := s.pool.Exec(ctx, `
		SELECT rapport_events_partition(m AT TIME ZONE 'UTC')
		FROM generate_series(date_trunc('month', $1::timestamptz AT TIME ZONE 'UTC'),
			date_trunc('month', $2::timestamptz AT TIME ZONE 'UTC'), interval '1 month') AS m`, from.UTC(), to.UTC())
	if err != nil {
		return fmt.Errorf("create events partitions %s to %s: %w", from.UTC().Format("2006-01"), to.UTC().Format("2006-01"), err)
	}
	return nil
}

// isNoPartition reports whether err is an insert into events that found
// no partition for its time.
func isNoPartition(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23514" && strings.Contains(pg.Message, "no partition of relation")
}

// withEventMonths runs fn, which writes events at times, after making
// sure their months' partitions exist, each in a short transaction of its
// own (ensureEventMonth through the pool). If an insert still finds no
// partition (a stale cache entry), it forgets the cache and does it all
// once more. A second failure is not the caller's fault: it is returned
// without the PostgreSQL error, which IsInputError would take for bad
// input (class 23), so the API answers 5xx and the client retries.
func (s *Store) withEventMonths(ctx context.Context, times []time.Time, fn func() error) error {
	run := func() error {
		for _, t := range times {
			if err := s.ensureEventMonth(ctx, s.pool, t); err != nil {
				return err
			}
		}
		return fn()
	}
	err := run()
	if !isNoPartition(err) {
		return err
	}
	s.months.forget()
	if err = run(); isNoPartition(err) {
		return fmt.Errorf("events partition missing after it was created (dropped by retention meanwhile?): %v", err)
	}
	return err
}
