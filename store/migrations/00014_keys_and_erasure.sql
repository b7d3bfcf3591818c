-- Least-privilege API keys and the right to be forgotten (issue #16;
-- docs/security.md has the whole story).
--
-- api_keys: the event API's keys, several at once so they can rotate.
-- Only the SHA-256 digest of a key is stored: keys are 256 random bits,
-- so a digest cannot be reversed by guessing, and a copy of this table
-- (a backup, a replica) authenticates nobody. scopes are what the key
-- may do (api.Scope*); rate and burst its own rate limit (requests per
-- second, token bucket), 0 for the server's default. A revoked key stays
-- listed, with when.
--
-- erasures: one audit row per erasure request (`rapport forget`, POST
-- /v1/customers/{id}/forget), holding nothing personal: a keyed hash of
-- the customer id (RAPPORT_ERASURE_SECRET), who asked (an API key id or
-- the CLI's user), whether the customer was found, how many rows each
-- table lost and how many addresses were kept as keyed hashes.
--
-- suppressions gain the reason 'erased': an erased customer's addresses
-- stay on the list only as keyed hashes ('erased:<key id>:<hex>'), and a
-- customer later created again with one of those addresses has it
-- suppressed in the clear with this reason (store.Ingest).

-- +goose Up
CREATE TABLE api_keys (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    key_hash   bytea NOT NULL UNIQUE,
    scopes     text[] NOT NULL,
    rate       double precision NOT NULL DEFAULT 0,
    burst      integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CONSTRAINT api_keys_hash_is_sha256 CHECK (octet_length(key_hash) = 32),
    CONSTRAINT api_keys_limits CHECK (rate >= 0 AND burst >= 0)
);

CREATE TABLE erasures (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_hash text NOT NULL,
    requested_by  text NOT NULL,
    found         boolean NOT NULL,
    deleted       jsonb NOT NULL DEFAULT '{}',
    addresses     integer NOT NULL DEFAULT 0,
    erased_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX erasures_customer_hash ON erasures (customer_hash);

ALTER TABLE suppressions DROP CONSTRAINT suppressions_reason;
ALTER TABLE suppressions ADD CONSTRAINT suppressions_reason
    CHECK (reason IN ('', 'hard_bounce', 'complaint', 'soft_bounces', 'erased'));

-- +goose Down
DELETE FROM suppressions WHERE reason = 'erased';
ALTER TABLE suppressions DROP CONSTRAINT suppressions_reason;
ALTER TABLE suppressions ADD CONSTRAINT suppressions_reason
    CHECK (reason IN ('', 'hard_bounce', 'complaint', 'soft_bounces'));
DROP TABLE erasures;
DROP TABLE api_keys;
