package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// APIKey is a key of the event API as stored (api_keys, migration
// 00014): never the key itself, only its SHA-256 digest, which the API
// looks a presented key up by.
type APIKey struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Hash   []byte   `json:"-"`
	Scopes []string `json:"scopes"`
	// Rate (requests per second) and Burst are the key's own rate limit;
	// 0 takes the server's default.
	Rate      float64    `json:"rate,omitempty"`
	Burst     int        `json:"burst,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// ErrDuplicateKey is a key id or digest already stored.
var ErrDuplicateKey = errors.New("an API key with this id or digest exists")

// CreateAPIKey stores a new key. The caller generates it (api.NewKey)
// and shows it once; only k.Hash is kept.
func (s *Store) CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error) {
	if k.ID == "" || len(k.Hash) != 32 || len(k.Scopes) == 0 {
		return APIKey{}, errors.New("create API key: id, a 32-byte digest and at least one scope are required")
	}
	err := s.pool.QueryRow(ctx, `
		INSERT INTO api_keys (id, name, key_hash, scopes, rate, burst) VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING created_at`, k.ID, k.Name, k.Hash, k.Scopes, k.Rate, k.Burst).Scan(&k.CreatedAt)
	if IsInputError(err) {
		return APIKey{}, fmt.Errorf("create API key %s: %w: %v", k.ID, ErrDuplicateKey, err)
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("create API key %s: %w", k.ID, err)
	}
	k.CreatedAt = k.CreatedAt.UTC()
	return k, nil
}

// APIKeys lists the keys, oldest first: the active ones, and the revoked
// ones too when withRevoked.
func (s *Store) APIKeys(ctx context.Context, withRevoked bool) ([]APIKey, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT id, name, key_hash, scopes, rate, burst, created_at, revoked_at FROM api_keys
		WHERE $1 OR revoked_at IS NULL ORDER BY created_at, id`, withRevoked)
	keys, err := pgx.CollectRows(rows, pgx.RowToStructByPos[APIKey])
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	for i := range keys {
		keys[i].CreatedAt = keys[i].CreatedAt.UTC()
	}
	return keys, nil
}

// ActiveAPIKeys lists the keys that authenticate: the API's key ring
// reloads them.
func (s *Store) ActiveAPIKeys(ctx context.Context) ([]APIKey, error) {
	return s.APIKeys(ctx, false)
}

// RevokeAPIKey revokes a key at once for every server that reloads its
// key ring (api.Options.KeyRefresh). revoked is false for an unknown or
// already revoked key.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) (revoked bool, err error) {
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, id)
	if err != nil {
		return false, fmt.Errorf("revoke API key %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}
