-- Per-customer data keys for crypto-shredding (issue #16). Every Temporal
-- payload of a customer's journey is encrypted with that customer's own
-- random 256-bit key (package payloadcrypt). The key is kept here only
-- wrapped: AES-256-GCM under a master key from RAPPORT_PAYLOAD_KEYS, named
-- by master_key_id. Deleting the row erases the customer from every
-- Temporal history at once: their payloads can no longer be decrypted,
-- though the histories themselves cannot be edited.

-- +goose Up
CREATE TABLE customer_keys (
    customer_id   text PRIMARY KEY,
    key           bytea NOT NULL,        -- the data key, wrapped by the master key
    master_key_id text NOT NULL,         -- which RAPPORT_PAYLOAD_KEYS entry wrapped it
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Rotation re-wraps the keys of a retired master key, found by its id.
CREATE INDEX customer_keys_master ON customer_keys (master_key_id);

-- +goose Down
DROP TABLE customer_keys;
