-- The rest of Segment's tracking spec (issue #13): anonymous visitors,
-- group membership and refunds.
--
-- anonymous_ids: every anonymousId seen, with the traits an anonymous
-- identify sent; customer_id is set when an identify or alias (or any
-- call carrying both ids) ties it to a user, and later anonymous calls
-- with it count for that customer.
-- anonymous_events: what an anonymousId did before it was tied to a user
-- (track, page, screen). Tying moves them into events, as history: they
-- count in the metrics but are not dispatched to journeys.
-- customer_groups: the accounts (group calls) a customer belongs to.
-- refund_count / refunded_amount: refunds (Order Refunded), whose amount
-- is also taken off lifetime_value.

-- +goose Up
CREATE TABLE anonymous_ids (
    anonymous_id  text PRIMARY KEY,
    customer_id   text REFERENCES customers (id) ON DELETE CASCADE,
    traits        jsonb NOT NULL DEFAULT '{}',
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    merged_at     timestamptz
);
CREATE INDEX anonymous_ids_customer ON anonymous_ids (customer_id);

CREATE TABLE anonymous_events (
    id           text PRIMARY KEY,
    anonymous_id text NOT NULL REFERENCES anonymous_ids (anonymous_id) ON DELETE CASCADE,
    name         text NOT NULL,
    time         timestamptz NOT NULL,
    amount       numeric(14, 2) NOT NULL DEFAULT 0,
    currency     text NOT NULL DEFAULT '',
    order_id     text NOT NULL DEFAULT '',
    category     text NOT NULL DEFAULT '',
    score        double precision NOT NULL DEFAULT 0,
    props        jsonb NOT NULL DEFAULT '{}',
    effect       text NOT NULL DEFAULT '',
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX anonymous_events_anonymous_id ON anonymous_events (anonymous_id);

CREATE TABLE customer_groups (
    customer_id text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    group_id    text NOT NULL,
    traits      jsonb NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, group_id)
);

ALTER TABLE customers
    ADD COLUMN refund_count    bigint NOT NULL DEFAULT 0,
    ADD COLUMN refunded_amount numeric(14, 2) NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE customers DROP COLUMN refunded_amount, DROP COLUMN refund_count;
DROP TABLE customer_groups;
DROP TABLE anonymous_events;
DROP TABLE anonymous_ids;
