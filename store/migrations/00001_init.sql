-- Rapport schema v1: customers and their events, consent, enrollments and
-- the steps they took, the outbox / contact log, points, coupons, tasks,
-- and deployed playbook versions.
--
-- Every row an activity writes carries a unique idempotency key derived
-- from enrollment and step, so a retried activity finds its first result
-- instead of writing again.

-- +goose Up

-- The profile rules see as `customer`. Typed columns for the fields rules
-- use; everything else in attrs. points is the balance of points_ledger,
-- maintained in the same transaction as each ledger entry.
CREATE TABLE customers (
    id                text PRIMARY KEY,
    email             text NOT NULL DEFAULT '',
    phone             text NOT NULL DEFAULT '',
    name              text NOT NULL DEFAULT '',
    locale            text NOT NULL DEFAULT '',
    timezone          text NOT NULL DEFAULT '',
    tier              text NOT NULL DEFAULT '',
    stage             text NOT NULL DEFAULT '',
    points            bigint NOT NULL DEFAULT 0,
    lifetime_value    numeric(14, 2) NOT NULL DEFAULT 0,
    order_count       bigint NOT NULL DEFAULT 0,
    avg_order_value   numeric(14, 2) NOT NULL DEFAULT 0,
    -- Mean days between purchases: (last - first purchase) / (orders - 1).
    purchase_gap_days double precision NOT NULL DEFAULT 0,
    churn_risk        boolean NOT NULL DEFAULT false,
    first_purchase_at timestamptz,
    last_purchase_at  timestamptz,
    birthday          date,
    signup_at         timestamptz,
    tags              text[] NOT NULL DEFAULT '{}',
    attrs             jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_points_not_negative CHECK (points >= 0)
);

-- Customer events; id is the client's messageId, so a re-sent event is
-- stored once.
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
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_customer_name_time ON events (customer_id, name, time);

-- Consent, opt-out model: a customer may be contacted on a channel about a
-- topic unless a row here says granted = false. Rows record every explicit
-- decision (withdrawal by unsubscribe link, preference centre, import) and
-- its source. Topic '*' is a decision for every topic of the channel; a
-- row for the exact topic takes precedence over it. Transactional messages
-- (receipts, service replies) do not consult consent at all.
CREATE TABLE consents (
    customer_id text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    channel     text NOT NULL,
    topic       text NOT NULL,
    granted     boolean NOT NULL,
    source      text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, channel, topic)
);

-- One run of one customer through one playbook version. The source of
-- truth for re-entry (Temporal forgets closed workflows).
CREATE TABLE enrollments (
    id           text PRIMARY KEY,
    workflow_id  text NOT NULL,
    playbook     text NOT NULL,
    version      text NOT NULL,
    customer_id  text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    status       text NOT NULL,
    current_step text NOT NULL DEFAULT '',
    holdout      boolean NOT NULL DEFAULT false,
    reason       text NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz,
    CONSTRAINT enrollments_status CHECK (status IN ('active', 'completed', 'converted', 'exited', 'failed', 'rejected'))
);
CREATE INDEX enrollments_reentry ON enrollments (customer_id, playbook, started_at DESC);
CREATE INDEX enrollments_playbook_status ON enrollments (playbook, status);

-- Each step an enrollment took, for reports (key = enrollment/step/visit).
CREATE TABLE enrollment_steps (
    key           text PRIMARY KEY,
    enrollment_id text NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,
    step_id       text NOT NULL,
    kind          text NOT NULL,
    detail        text NOT NULL DEFAULT '',
    branch        text NOT NULL DEFAULT '',
    at            timestamptz NOT NULL
);
CREATE INDEX enrollment_steps_enrollment ON enrollment_steps (enrollment_id, at);

-- Outbox and contact log. A row is inserted 'queued' before delivery and
-- moves to 'sent' or 'failed'; 'suppressed' rows record sends that consent,
-- holdout or a frequency cap stopped. created_at is the journey's
-- (workflow) time of the send, which frequency caps count in.
CREATE TABLE messages (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key           text NOT NULL UNIQUE,
    enrollment_id text NOT NULL DEFAULT '',
    customer_id   text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    playbook      text NOT NULL DEFAULT '',
    step_id       text NOT NULL DEFAULT '',
    channel       text NOT NULL,
    template      text NOT NULL DEFAULT '',
    locale        text NOT NULL DEFAULT '',
    topic         text NOT NULL DEFAULT '',
    transactional boolean NOT NULL DEFAULT false,
    recipient     text NOT NULL DEFAULT '',
    subject       text NOT NULL DEFAULT '',
    status        text NOT NULL,
    reason        text NOT NULL DEFAULT '',
    provider_id   text NOT NULL DEFAULT '',
    attempts      integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    sent_at       timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_status CHECK (status IN ('queued', 'sent', 'failed', 'suppressed'))
);
CREATE INDEX messages_customer_channel_created ON messages (customer_id, channel, created_at);
CREATE INDEX messages_enrollment ON messages (enrollment_id);

-- Append-only points ledger; customers.points is the running balance.
CREATE TABLE points_ledger (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key           text NOT NULL UNIQUE,
    customer_id   text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    enrollment_id text NOT NULL DEFAULT '',
    delta         bigint NOT NULL,
    reason        text NOT NULL DEFAULT '',
    balance_after bigint NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX points_ledger_customer ON points_ledger (customer_id, id);

CREATE TABLE coupons (
    code          text PRIMARY KEY,
    key           text NOT NULL UNIQUE,
    customer_id   text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    enrollment_id text NOT NULL DEFAULT '',
    kind          text NOT NULL CHECK (kind IN ('percent', 'amount')),
    value         numeric(14, 2) NOT NULL,
    expires_at    timestamptz NOT NULL,
    redeemed_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX coupons_customer ON coupons (customer_id);

-- Work handed to a person (call the customer, fix the complaint).
CREATE TABLE tasks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key           text NOT NULL UNIQUE,
    customer_id   text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    enrollment_id text NOT NULL DEFAULT '',
    assignee      text NOT NULL,
    title         text NOT NULL,
    priority      text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high')),
    due_at        timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_open ON tasks (assignee, due_at) WHERE status = 'open';

-- Compiled playbook versions as deployed; at most one active per name.
CREATE TABLE playbook_versions (
    name        text NOT NULL,
    version     text NOT NULL,
    source      text NOT NULL,
    compiled_at timestamptz NOT NULL DEFAULT now(),
    deployed_at timestamptz,
    active      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (name, version)
);
CREATE UNIQUE INDEX playbook_versions_one_active ON playbook_versions (name) WHERE active;

-- +goose Down
DROP TABLE playbook_versions;
DROP TABLE tasks;
DROP TABLE coupons;
DROP TABLE points_ledger;
DROP TABLE messages;
DROP TABLE enrollment_steps;
DROP TABLE enrollments;
DROP TABLE consents;
DROP TABLE events;
DROP TABLE customers;
