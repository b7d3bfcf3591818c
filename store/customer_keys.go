package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// CustomerKey is a customer's data key as it is stored: wrapped (encrypted)
// by a master key, never in clear. Package payloadcrypt wraps and unwraps
// it; the store only keeps the bytes.
type CustomerKey struct {
	CustomerID  string
	Wrapped     []byte // the data key, AES-256-GCM under the master key
	MasterKeyID string // which master key wrapped it
	CreatedAt   time.Time
}

// CustomerKey reads the data key of customerID. A customer without one
// (never had a payload encrypted, or erased by DeleteCustomerKey) is an
// error wrapping ErrNotFound.
func (s *Store) CustomerKey(ctx context.Context, customerID string) (CustomerKey, error) {
	k := CustomerKey{CustomerID: customerID}
	err := s.pool.QueryRow(ctx, `SELECT key, master_key_id, created_at FROM customer_keys WHERE customer_id = $1`, customerID).
		Scan(&k.Wrapped, &k.MasterKeyID, &k.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return CustomerKey{}, fmt.Errorf("data key of customer %q: %w", customerID, ErrNotFound)
	}
	if err != nil {
		return CustomerKey{}, fmt.Errorf("read data key of customer %q: %w", customerID, err)
	}
	return k, nil
}

// CreateCustomerKey returns the customer's data key, storing k as it when
// the customer has none: one round trip either way (the read and the
// insert are one statement), and a synchronous commit only when k is
// inserted. Two processes creating a key for the same customer at once
// agree on one: the insert that loses the race (ON CONFLICT DO NOTHING)
// returns nothing, and a read in a new statement then sees the winner's
// committed row.
func (s *Store) CreateCustomerKey(ctx context.Context, k CustomerKey) (CustomerKey, error) {
	if k.CustomerID == "" || len(k.Wrapped) == 0 || k.MasterKeyID == "" {
		return CustomerKey{}, errors.New("create customer key: customer id, wrapped key and master key id are required")
	}
	out := CustomerKey{CustomerID: k.CustomerID}
	err := s.pool.QueryRow(ctx, `WITH have AS (
			SELECT key, master_key_id, created_at FROM customer_keys WHERE customer_id = $1
		), ins AS (
			INSERT INTO customer_keys (customer_id, key, master_key_id)
			SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM have)
			ON CONFLICT (customer_id) DO NOTHING
			RETURNING key, master_key_id, created_at
		)
		SELECT key, master_key_id, created_at FROM have
		UNION ALL SELECT key, master_key_id, created_at FROM ins`, k.CustomerID, k.Wrapped, k.MasterKeyID).
		Scan(&out.Wrapped, &out.MasterKeyID, &out.CreatedAt)
	if err == nil {
		return out, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return CustomerKey{}, fmt.Errorf("store data key of customer %q: %w", k.CustomerID, err)
	}
	// Lost the race to a concurrent insert not yet visible to the
	// statement's snapshot: it is committed now.
	existing, err := s.CustomerKey(ctx, k.CustomerID)
	if errors.Is(err, ErrNotFound) {
		return CustomerKey{}, fmt.Errorf("store data key of customer %q: created and deleted concurrently; try again", k.CustomerID)
	}
	return existing, err
}

// DeleteCustomerKey erases the data key of customerID: every Temporal
// payload encrypted with it becomes unreadable for good (crypto-shredding).
// Deleting a key that does not exist is not an error, so an erasure can
// be retried. Processes that cached the key may still use it for a short
// while (payloadcrypt.DefaultKeyTTL).
func (s *Store) DeleteCustomerKey(ctx context.Context, customerID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM customer_keys WHERE customer_id = $1`, customerID); err != nil {
		return fmt.Errorf("delete data key of customer %q: %w", customerID, err)
	}
	return nil
}

// CustomerKeysWrappedBy lists up to limit customer keys wrapped by the
// master key masterKeyID, by customer id after the one given (keyset
// pages), for re-wrapping under a newer master key.
func (s *Store) CustomerKeysWrappedBy(ctx context.Context, masterKeyID, after string, limit int) ([]CustomerKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT customer_id, key, master_key_id, created_at FROM customer_keys
		WHERE master_key_id = $1 AND customer_id > $2 ORDER BY customer_id LIMIT $3`, masterKeyID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list customer keys wrapped by %q: %w", masterKeyID, err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CustomerKey, error) {
		var k CustomerKey
		err := r.Scan(&k.CustomerID, &k.Wrapped, &k.MasterKeyID, &k.CreatedAt)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("list customer keys wrapped by %q: %w", masterKeyID, err)
	}
	return keys, nil
}

// RewrapCustomerKey replaces the wrapping of a customer's key, only if it
// is still wrapped by fromMasterKeyID (so a concurrent deletion or
// re-wrap wins). It reports whether the row changed.
func (s *Store) RewrapCustomerKey(ctx context.Context, customerID, fromMasterKeyID string, wrapped []byte, toMasterKeyID string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE customer_keys SET key = $3, master_key_id = $4
		WHERE customer_id = $1 AND master_key_id = $2`, customerID, fromMasterKeyID, wrapped, toMasterKeyID)
	if err != nil {
		return false, fmt.Errorf("re-wrap data key of customer %q: %w", customerID, err)
	}
	return tag.RowsAffected() == 1, nil
}
