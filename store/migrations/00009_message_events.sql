-- What became of the messages Rapport sent (issue #14): the providers'
-- delivery, engagement and failure notifications and Rapport's own click
-- and open tracking, normalized into one status history per message, and
-- the suppression list that keeps Rapport from mailing a dead address.

-- +goose Up

-- rapport_address normalizes an address for the suppression list: email
-- addresses lower-cased and trimmed (mailbox names are case-insensitive in
-- practice, and providers report them lower-cased), phone numbers reduced
-- to their digits and a leading +, so "+49 151 000" and "+49151000" match.
-- The Go twin is activities.NormalAddress.
-- +goose StatementBegin
CREATE FUNCTION rapport_address(channel text, address text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE channel
        WHEN 'sms' THEN regexp_replace(btrim(address), '[^0-9+]', '', 'g')
        ELSE lower(btrim(address))
    END
$$;
-- +goose StatementEnd

-- The provider's id for a message is how its notifications find it.
CREATE INDEX messages_provider_id ON messages (provider_id) WHERE provider_id <> '';

-- One row per normalized notification. id is deterministic
-- ("msg-<provider>-<provider event id>"), so a replayed notification is
-- stored once; the same id is the customer event's in events.
CREATE TABLE message_events (
    id          text PRIMARY KEY,
    message_key text NOT NULL REFERENCES messages (key) ON DELETE CASCADE,
    kind        text NOT NULL,
    provider    text NOT NULL,
    bounce      text NOT NULL DEFAULT '',
    url         text NOT NULL DEFAULT '',
    detail      text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT message_events_kind CHECK (kind IN ('delivered', 'opened', 'clicked', 'bounced', 'complained', 'unsubscribed')),
    CONSTRAINT message_events_bounce CHECK (bounce IN ('', 'hard', 'soft'))
);
CREATE INDEX message_events_message ON message_events (message_key, kind);

-- The suppression list, per channel and normalized address. A row counts
-- soft bounces (soft_bounces, reset by a delivery) until suppressed_at is
-- set: by a hard bounce, a complaint, or a run of soft bounces. reason is
-- the cause of the suppression ('' while only counting).
CREATE TABLE suppressions (
    channel       text NOT NULL,
    address       text NOT NULL,
    reason        text NOT NULL DEFAULT '',
    soft_bounces  integer NOT NULL DEFAULT 0,
    suppressed_at timestamptz,
    source        text NOT NULL DEFAULT '',
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, address),
    CONSTRAINT suppressions_reason CHECK (reason IN ('', 'hard_bounce', 'complaint', 'soft_bounces'))
);

-- Response rate (docs/metrics.md): provider events are stored as customer
-- events now, but a delivery, an open (machine opens: mail privacy
-- proxies fetch every pixel) or a bounce is not the customer answering;
-- a click, a complaint or an unsubscribe is.
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

-- +goose Down
CREATE OR REPLACE VIEW enrollment_engagement AS
SELECT e.id AS enrollment_id, e.playbook, e.version, e.customer_id, e.status, e.holdout, e.started_at, e.ended_at,
       f.first_sent IS NOT NULL AS messaged,
       f.first_sent IS NOT NULL AND EXISTS (
           SELECT 1 FROM events ev WHERE ev.customer_id = e.customer_id
           AND ev.time > f.first_sent AND ev.time <= coalesce(e.ended_at, 'infinity')) AS responded,
       EXISTS (
           SELECT 1 FROM events ev WHERE ev.customer_id = e.customer_id AND ev.name IN ('complaint', 'complaint_filed')
           AND ev.time >= e.started_at AND ev.time <= coalesce(e.ended_at, 'infinity')) AS complained
FROM enrollments e
CROSS JOIN LATERAL (
    SELECT min(m.created_at) AS first_sent FROM messages m WHERE m.enrollment_id = e.id AND m.status = 'sent'
) f
WHERE e.status <> 'rejected';
DROP TABLE suppressions;
DROP TABLE message_events;
DROP INDEX messages_provider_id;
DROP FUNCTION rapport_address(text, text);
