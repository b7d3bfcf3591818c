// Package store is Rapport's PostgreSQL persistence: customers and events,
// consent, enrollments, the message outbox and contact log, points,
// coupons and tasks. Store implements every activity interface a journey
// uses but activities.Messenger, and the outbox delivery sends through
// (delivery.Backend: delivery.Activities joins the two), plus the data
// API event ingestion needs.
//
// Every write is idempotent on the request's Key: the key is a unique
// column, and a retried activity finds the row its first attempt wrote and
// answers from it. Writes that two enrollments of one customer can race
// (points balance, frequency caps, re-entry) lock the customer row first,
// so they are serialised per customer and run in parallel across
// customers.
package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rapport-crm/rapport/activities"
)

// DefaultDatabaseURL is used when DATABASE_URL is not set.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/rapport?sslmode=disable"

// Config is the store's behaviour that is not in its tables: the global
// frequency cap the send transaction checks, the soft bounces that
// suppress an address, and the pool size. (Channels and link secrets are
// delivery's: delivery.Config.)
type Config struct {
	// Global frequency cap: at most CapMax non-transactional messages per
	// customer and channel within CapPer, across all playbooks. CapMax 0
	// disables it.
	CapMax int
	CapPer time.Duration

	// SoftBounceLimit is how many soft bounces in a row suppress an
	// address (RAPPORT_SOFT_BOUNCE_LIMIT, default DefaultSoftBounceLimit).
	SoftBounceLimit int

	// ErasureSecrets key the hashes an erased customer's addresses are
	// kept as (RAPPORT_ERASURE_SECRET, ErasureSecretsFromEnv): the first
	// hashes new erasures, all are checked by ingest and the send path.
	// None: Forget is refused and nothing is checked.
	ErasureSecrets [][]byte

	// EventRetentionMonths and MessageRetentionMonths are how many whole
	// months before the current one Maintain keeps of events (and event
	// ids, and anonymous visitors' events) and of the contact log
	// (messages and their status history); 0 keeps them forever
	// (RAPPORT_EVENT_RETENTION_MONTHS, RAPPORT_MESSAGE_RETENTION_MONTHS).
	EventRetentionMonths   int
	MessageRetentionMonths int

	// MaxConns sizes the connection pool (RAPPORT_DB_MAX_CONNS). Zero
	// keeps pool_max_conns from the database URL, or DefaultMaxConns when
	// the URL has none (pgx's own default, max(4, CPUs), is too small for
	// a worker).
	MaxConns int
}

// DefaultMaxConns is the pool size when neither RAPPORT_DB_MAX_CONNS nor
// the URL's pool_max_conns sets one.
const DefaultMaxConns = 20

// DefaultConfig is the configuration without environment: cap 3 per 7
// days.
func DefaultConfig() Config {
	return Config{CapMax: 3, CapPer: 7 * 24 * time.Hour}
}

// ConfigFromEnv reads the store's configuration:
//
//	RAPPORT_FREQUENCY_CAP       global cap "<max>/<duration>", e.g. 3/7d (default); "off" disables
//	RAPPORT_SOFT_BOUNCE_LIMIT   soft bounces in a row that suppress an address (default 3)
//	RAPPORT_DB_MAX_CONNS        connection pool size (default: the URL's pool_max_conns, else DefaultMaxConns)
//	RAPPORT_ERASURE_SECRET      keys of the erased addresses' hashes (ErasureSecretsFromEnv)
//	RAPPORT_EVENT_RETENTION_MONTHS    whole months of events Maintain keeps before the current one (default 0: forever)
//	RAPPORT_MESSAGE_RETENTION_MONTHS  the same for messages, the contact log (default 0: forever)
//
// Channels and link secrets are delivery.ConfigFromEnv's.
func ConfigFromEnv() (Config, error) {
	cfg := DefaultConfig()
	if v := os.Getenv("RAPPORT_FREQUENCY_CAP"); v != "" {
		max, per, err := ParseCap(v)
		if err != nil {
			return Config{}, fmt.Errorf("RAPPORT_FREQUENCY_CAP: %w", err)
		}
		cfg.CapMax, cfg.CapPer = max, per
	}
	if v := os.Getenv("RAPPORT_SOFT_BOUNCE_LIMIT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Config{}, fmt.Errorf("RAPPORT_SOFT_BOUNCE_LIMIT: %q is not a positive number", v)
		}
		cfg.SoftBounceLimit = n
	}
	if v := os.Getenv("RAPPORT_DB_MAX_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Config{}, fmt.Errorf("RAPPORT_DB_MAX_CONNS: %q is not a positive number", v)
		}
		cfg.MaxConns = n
	}
	for _, r := range []struct {
		env string
		to  *int
	}{{"RAPPORT_EVENT_RETENTION_MONTHS", &cfg.EventRetentionMonths}, {"RAPPORT_MESSAGE_RETENTION_MONTHS", &cfg.MessageRetentionMonths}} {
		if v := os.Getenv(r.env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return Config{}, fmt.Errorf("%s: %q is not a number of months (0 keeps forever)", r.env, v)
			}
			*r.to = n
		}
	}
	if err := cfg.checkRetention(); err != nil {
		return Config{}, err
	}
	var err error
	if cfg.ErasureSecrets, err = ErasureSecretsFromEnv(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// ParseCap parses a frequency cap like "3/7d" (3 messages per 7 days);
// "off" returns 0, 0.
func ParseCap(s string) (int, time.Duration, error) {
	if s == "off" {
		return 0, 0, nil
	}
	n, d, ok := strings.Cut(s, "/")
	max, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil || max < 1 {
		return 0, 0, fmt.Errorf("%q: want <max>/<duration> like 3/7d", s)
	}
	per, err := parseDuration(strings.TrimSpace(d))
	if err != nil {
		return 0, 0, fmt.Errorf("%q: %w", s, err)
	}
	return max, per, nil
}

// parseDuration accepts Go durations plus a day unit ("7d", "1d12h").
func parseDuration(s string) (time.Duration, error) {
	var total time.Duration
	rest := s
	if i := strings.Index(rest, "d"); i > 0 {
		days, err := strconv.Atoi(rest[:i])
		if err != nil {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		total = time.Duration(days) * 24 * time.Hour
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		total += d
	}
	if total <= 0 {
		return 0, fmt.Errorf("bad duration %q: must be positive", s)
	}
	return total, nil
}

// Store is the PostgreSQL implementation of every journey activity but
// the sending itself (delivery.Sender sends, through the outbox here).
type Store struct {
	pool   *pgxpool.Pool
	cfg    Config
	months eventMonths // events partitions known to exist
}

// Open connects to databaseURL and returns a Store. It does not migrate;
// call Migrate first (rapport migrate up).
func Open(ctx context.Context, databaseURL string, cfg Config) (*Store, error) {
	pc, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("store: parse database URL: %w", err)
	}
	switch {
	case cfg.MaxConns > 0:
		pc.MaxConns = int32(cfg.MaxConns)
	case !strings.Contains(databaseURL, "pool_max_conns"):
		pc.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", pc.ConnConfig.Host, err)
	}
	return New(pool, cfg), nil
}

// New returns a Store over an existing pool.
func New(pool *pgxpool.Pool, cfg Config) *Store {
	return &Store{pool: pool, cfg: cfg}
}

// Pool is the underlying connection pool, for reports and tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// permanent wraps a message as activities.ErrPermanent.
func permanent(format string, args ...any) error {
	return fmt.Errorf("%w: %s", activities.ErrPermanent, fmt.Sprintf(format, args...))
}

// ErrNotFound is wrapped by errors about a customer that does not exist
// (together with activities.ErrPermanent).
var ErrNotFound = errors.New("not found")

// errUnknownCustomer is the permanent failure for a missing customer row.
func errUnknownCustomer(id string) error {
	return fmt.Errorf("unknown customer %q (%w, %w)", id, ErrNotFound, activities.ErrPermanent)
}

// inTx runs fn in a transaction, committing when it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// inPipelinedTx runs a read-then-write transaction in two round trips
// instead of inTx's four: BEGIN travels in one batch with the statements
// read queues, and COMMIT in one batch behind the statements write
// returns (nil: nothing to write, commit the reads alone). write runs in
// between and decides from what the reads found; an error from it, or
// from either batch, rolls the transaction back.
//
// The statements of a batch run one after another in the order queued,
// each with its own snapshot under READ COMMITTED, exactly as if sent one
// at a time: a row lock taken by an earlier statement holds for the later
// ones and until COMMIT. A failed statement aborts the transaction, so
// the statements behind it in its batch, COMMIT included, change nothing.
func (s *Store) inPipelinedTx(ctx context.Context, read func(*pgx.Batch), write func() (*pgx.Batch, error)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			rollback(ctx, conn.Conn())
		}
		conn.Release() // the pool drops a connection still inside a transaction
	}()
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	read(b)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	w, err := write()
	if err != nil {
		return err
	}
	if w == nil {
		w = &pgx.Batch{}
	}
	w.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, w).Close(); err != nil {
		return err
	}
	committed = true
	return nil
}

// rollback ends the open transaction on c, if any, and closes c when it
// cannot, so that a pooled connection never carries a transaction (or its
// locks) over to its next user.
func rollback(ctx context.Context, c *pgx.Conn) {
	if c.IsClosed() || c.PgConn().TxStatus() == 'I' {
		return
	}
	if _, err := c.Exec(ctx, `ROLLBACK`); err != nil {
		_ = c.Close(ctx)
	}
}

// lockCustomerSQL locks the customer $1's row; it answers no row when
// there is no such customer.
const lockCustomerSQL = `SELECT 1 FROM customers WHERE id = $1 FOR UPDATE`

// lockCustomer locks the customer row for the rest of tx, serialising
// every change that two enrollments of the customer could race. It fails
// permanently when the customer does not exist.
func lockCustomer(ctx context.Context, tx pgx.Tx, id string) error {
	var one int
	err := tx.QueryRow(ctx, lockCustomerSQL, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return errUnknownCustomer(id)
	}
	if err != nil {
		return fmt.Errorf("lock customer %q: %w", id, err)
	}
	return nil
}

// isUniqueViolation reports whether err is a unique-constraint violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// isForeignKeyViolation reports whether err is a foreign-key violation
// (a row naming a customer that does not exist).
func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// nullTime maps the zero time to NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// orNow is t, or the database's clock when t is zero.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}
