-- Events partitioned by month (issue #15): a table that grows forever
-- becomes one partition per calendar month (UTC) of the event's time, and
-- retention (`rapport maintain`) drops whole months instead of deleting
-- rows.
--
-- A primary key of a partitioned table must contain the partition key,
-- but an event's id (the client's messageId) must be unique across all
-- months: a retried call without a timestamp gets a new time. So the ids
-- move to their own table, event_ids, which also keeps the dispatch
-- marker (migration 00002) and is what the event API checks before it
-- stores an event. events keeps no constraint on customers: adding a
-- partition would otherwise lock the customers table; the only code that
-- deletes customers (Forget) deletes their events first.
--
-- Partitions are created when the first event of their month is stored
-- (rapport_events_partition, called by the store before it writes) and
-- attached with a lock that does not block writers of other months.
--
-- Not additive: stop `rapport serve` and workers, migrate, start them
-- again (docs/operators.md). Copying takes about as long as the events
-- table takes to rewrite.

-- +goose Up
CREATE TABLE event_ids (
    id            text PRIMARY KEY,
    customer_id   text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    time          timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    dispatched_at timestamptz
);
CREATE INDEX event_ids_undispatched ON event_ids (received_at) WHERE dispatched_at IS NULL;
CREATE INDEX event_ids_customer ON event_ids (customer_id);
CREATE INDEX event_ids_time ON event_ids (time);

ALTER TABLE events RENAME TO events_before_00015;
ALTER INDEX events_customer_name_time RENAME TO events_before_00015_customer_name_time;

CREATE TABLE events (
    id          text NOT NULL,
    customer_id text NOT NULL,
    name        text NOT NULL,
    time        timestamptz NOT NULL,
    amount      numeric(14, 2) NOT NULL DEFAULT 0,
    currency    text NOT NULL DEFAULT '',
    order_id    text NOT NULL DEFAULT '',
    category    text NOT NULL DEFAULT '',
    score       double precision NOT NULL DEFAULT 0,
    props       jsonb NOT NULL DEFAULT '{}',
    received_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (time);
CREATE INDEX events_customer_name_time ON events (customer_id, name, time);

-- rapport_events_partition makes sure the partition holding time t
-- exists and returns its name, events_YYYY_MM (UTC month). It creates the
-- table on its own, with a CHECK constraint equal to its bounds, and then
-- attaches it: ATTACH PARTITION takes a SHARE UPDATE EXCLUSIVE lock on
-- events, which lets other sessions read and write meanwhile (CREATE
-- TABLE ... PARTITION OF would take ACCESS EXCLUSIVE), and the constraint
-- spares it the scan. Taking that lock first serialises concurrent
-- callers, and acquiring it makes the second caller see the table the
-- first one committed (an advisory lock would not refresh the catalog
-- cache, and the second CREATE would fail).
-- +goose StatementBegin
CREATE FUNCTION rapport_events_partition(t timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lo   timestamptz := date_trunc('month', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi   timestamptz := (date_trunc('month', t AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    part text := 'events_' || to_char(t AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN part;
    END IF;
    LOCK TABLE events IN SHARE UPDATE EXCLUSIVE MODE;
    IF to_regclass(part) IS NOT NULL THEN
        RETURN part;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS, CONSTRAINT %I CHECK (time >= %L AND time < %L))',
        part, part || '_bounds', lo, hi);
    EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_bounds');
    RETURN part;
END
$$;
-- +goose StatementEnd

SELECT rapport_events_partition(m)
FROM (SELECT DISTINCT date_trunc('month', time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS m FROM events_before_00015) months;
INSERT INTO events (id, customer_id, name, time, amount, currency, order_id, category, score, props, received_at)
SELECT id, customer_id, name, time, amount, currency, order_id, category, score, props, received_at
FROM events_before_00015;
INSERT INTO event_ids (id, customer_id, time, received_at, dispatched_at)
SELECT id, customer_id, time, received_at, dispatched_at FROM events_before_00015;

-- The one view over events (migration 00009), unchanged, now over the
-- partitioned table.
CREATE OR REPLACE VIEW enrollment_engagement AS
SELECT e.id AS enrollment_id, e.playbook, e.version, e.customer_id, e.status, e.holdout, e.started_at, e.ended_at,
       f.first_sent IS NOT NULL AS messaged,
       f.first_sent IS NOT NULL AND EXISTS (
           SELECT 1 FROM events ev WHERE ev.customer_id = e.customer_id
           AND ev.name NOT IN ('message_delivered', 'message_opened', 'message_bounced')
           AND ev.time > f.first_sent AND ev.time <= coalesce(e.ended_at, 'infinity')) AS responded,
       EXISTS (
           SELECT 1 FROM events ev WHERE ev.customer_id = e.customer_id
           AND ev.name IN ('complaint', 'complaint_filed', 'message_complained')
           AND ev.time >= e.started_at AND ev.time <= coalesce(e.ended_at, 'infinity')) AS complained
FROM enrollments e
CROSS JOIN LATERAL (
    SELECT min(m.created_at) AS first_sent FROM messages m WHERE m.enrollment_id = e.id AND m.status = 'sent'
) f
WHERE e.status <> 'rejected';

DROP TABLE events_before_00015;

-- +goose Down
ALTER TABLE events RENAME TO events_by_month;
ALTER INDEX events_customer_name_time RENAME TO events_by_month_customer_name_time;
CREATE TABLE events (
    id          text PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    name        text NOT NULL,
    time        timestamptz NOT NULL,
    amount      numeric(14, 2) NOT NULL DEFAULT 0,
    currency    text NOT NULL DEFAULT '',
    order_id    text NOT NULL DEFAULT '',
    category    text NOT NULL DEFAULT '',
    score       double precision NOT NULL DEFAULT 0,
    props       jsonb NOT NULL DEFAULT '{}',
    received_at timestamptz NOT NULL DEFAULT now(),
    dispatched_at timestamptz
);
CREATE INDEX events_customer_name_time ON events (customer_id, name, time);
CREATE INDEX events_undispatched ON events (received_at) WHERE dispatched_at IS NULL;
INSERT INTO events (id, customer_id, name, time, amount, currency, order_id, category, score, props, received_at, dispatched_at)
SELECT e.id, e.customer_id, e.name, e.time, e.amount, e.currency, e.order_id, e.category, e.score, e.props, e.received_at, i.dispatched_at
FROM events_by_month e JOIN event_ids i ON i.id = e.id;
CREATE OR REPLACE VIEW enrollment_engagement AS
SELECT e.id AS enrollment_id, e.playbook, e.version, e.customer_id, e.status, e.holdout, e.started_at, e.ended_at,
       f.first_sent IS NOT NULL AS messaged,
       f.first_sent IS NOT NULL AND EXISTS (
           SELECT 1 FROM events ev WHERE ev.customer_id = e.customer_id
           AND ev.name NOT IN ('message_delivered', 'message_opened', 'message_bounced')
           AND ev.time > f.first_sent AND ev.time <= coalesce(e.ended_at, 'infinity')) AS responded,
       EXISTS (
           SELECT 1 FROM events ev WHERE ev.customer_id = e.customer_id
           AND ev.name IN ('complaint', 'complaint_filed', 'message_complained')
           AND ev.time >= e.started_at AND ev.time <= coalesce(e.ended_at, 'infinity')) AS complained
FROM enrollments e
CROSS JOIN LATERAL (
    SELECT min(m.created_at) AS first_sent FROM messages m WHERE m.enrollment_id = e.id AND m.status = 'sent'
) f
WHERE e.status <> 'rejected';
DROP TABLE events_by_month;
DROP FUNCTION rapport_events_partition(timestamptz);
DROP TABLE event_ids;
