-- Profiles read from their columns, and the indexes a scan's pushed-down
-- trigger uses (issue #15; docs/metrics.md, docs/playbooks.md "How a scan
-- selects customers").
--
-- The purchase metrics have always been columns of customers, kept by the
-- store in the transaction that stores each purchase or refund (order_count,
-- lifetime_value = revenue, avg_order_value, first_purchase_at,
-- last_purchase_at, purchase_gap_days, refund_count, refunded_amount). What
-- customer_profiles computed on top of them was lifetime value (revenue ×
-- rapport.ltv_margin) and churn risk (relative to now, and to
-- rapport.churn_factor and rapport.churn_default_gap_days) — but through a
-- join of customers with a second reading of customers (customer_metrics),
-- which PostgreSQL cannot narrow to a keyset page: every page of a scan
-- re-read the table from its start. The views below read one row of
-- customers each, and the three settings once per statement.
--
-- Relative metrics are never stored: days since the last purchase and churn
-- risk are computed from last_purchase_at when read, with the database clock
-- in the views and with the scan's own time in a scan's query. The settings
-- stay database settings (ALTER DATABASE … SET rapport.churn_factor), so a
-- stored value would go stale each time one changed; the functions below
-- are the one definition of each computed metric, used by the views and by
-- the scan's query alike.
--
-- Indexes: last_purchase_at and signup_at (days since, recency), tags
-- (membership), and for date triggers the customer's time zone with the
-- month and day of the birthday, and of the signup (in UTC, as rules read
-- it). They are built CONCURRENTLY, so a large customers table keeps taking
-- writes meanwhile; every statement can run again after a failure half-way.

-- +goose NO TRANSACTION
-- +goose Up

-- rapport_days_since is whole days (truncated) from since to at, or -1 when
-- since is NULL (never), as rules.DaysSince computes it.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION rapport_days_since(at timestamptz, since timestamptz)
RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN since IS NULL THEN -1
                ELSE trunc(extract(epoch FROM at - since) / 86400)::bigint END
$$;
-- +goose StatementEnd

-- rapport_lifetime_value is revenue × margin, rounded to cents.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION rapport_lifetime_value(revenue numeric, margin double precision)
RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT round(revenue * margin::numeric, 2)::numeric(14, 2)
$$;
-- +goose StatementEnd

-- rapport_churn_risk is churn risk at time at: the customer has purchased,
-- and has been quiet for more than factor × the usual gap whole days (the
-- mean gap with two or more purchases at least a day apart on average,
-- else default_gap). Never NULL.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION rapport_churn_risk(order_count bigint, last_purchase_at timestamptz,
    purchase_gap_days double precision, at timestamptz, factor double precision, default_gap double precision)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT order_count > 0 AND rapport_days_since(at, last_purchase_at) > factor *
        CASE WHEN order_count >= 2 AND purchase_gap_days >= 1 THEN purchase_gap_days ELSE default_gap END
$$;
-- +goose StatementEnd

-- Same columns, same definitions as migration 00003; one reading of
-- customers, the settings read once (scalar subqueries are evaluated once
-- per statement).
CREATE OR REPLACE VIEW customer_metrics AS
SELECT c.id AS customer_id,
       c.order_count,
       greatest(c.order_count - 1, 0) AS repeat_purchases,
       c.lifetime_value AS revenue,
       c.avg_order_value,
       c.first_purchase_at,
       c.last_purchase_at,
       rapport_days_since(now(), c.last_purchase_at) AS days_since_last_purchase,
       c.purchase_gap_days,
       CASE WHEN c.order_count >= 2 AND c.purchase_gap_days >= 1 THEN c.purchase_gap_days
            ELSE (SELECT churn_default_gap_days FROM rapport_metric_settings) END AS usual_gap_days,
       rapport_lifetime_value(c.lifetime_value, (SELECT ltv_margin FROM rapport_metric_settings))::numeric(14, 2) AS lifetime_value,
       rapport_churn_risk(c.order_count, c.last_purchase_at, c.purchase_gap_days, now(),
           (SELECT churn_factor FROM rapport_metric_settings),
           (SELECT churn_default_gap_days FROM rapport_metric_settings)) AS churn_risk
FROM customers c;

CREATE OR REPLACE VIEW customer_profiles AS
SELECT c.id, c.email, c.phone, c.name, c.locale, c.timezone, c.tier, c.stage, c.points,
       rapport_lifetime_value(c.lifetime_value, (SELECT ltv_margin FROM rapport_metric_settings))::numeric(14, 2) AS lifetime_value,
       c.order_count, c.avg_order_value, c.purchase_gap_days,
       rapport_churn_risk(c.order_count, c.last_purchase_at, c.purchase_gap_days, now(),
           (SELECT churn_factor FROM rapport_metric_settings),
           (SELECT churn_default_gap_days FROM rapport_metric_settings)) AS churn_risk,
       c.first_purchase_at, c.last_purchase_at, c.birthday, c.signup_at, c.tags, c.attrs,
       c.created_at, c.updated_at
FROM customers c;

DROP INDEX CONCURRENTLY IF EXISTS customers_last_purchase_at;
CREATE INDEX CONCURRENTLY customers_last_purchase_at ON customers (last_purchase_at);
DROP INDEX CONCURRENTLY IF EXISTS customers_signup_at;
CREATE INDEX CONCURRENTLY customers_signup_at ON customers (signup_at);
DROP INDEX CONCURRENTLY IF EXISTS customers_tags;
CREATE INDEX CONCURRENTLY customers_tags ON customers USING gin (tags);
-- The month-day expressions are spelled exactly as package pushdown writes
-- them (birthdayMonthDay, signupMonthDay), or the planner would not match them.
DROP INDEX CONCURRENTLY IF EXISTS customers_birthday_due;
CREATE INDEX CONCURRENTLY customers_birthday_due ON customers
    (timezone, ((extract(month FROM birthday) * 100 + extract(day FROM birthday))::integer))
    WHERE birthday IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS customers_signup_due;
CREATE INDEX CONCURRENTLY customers_signup_due ON customers
    (timezone, ((extract(month FROM (signup_at AT TIME ZONE 'UTC')) * 100
                 + extract(day FROM (signup_at AT TIME ZONE 'UTC')))::integer))
    WHERE signup_at IS NOT NULL;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS customers_signup_due;
DROP INDEX CONCURRENTLY IF EXISTS customers_birthday_due;
DROP INDEX CONCURRENTLY IF EXISTS customers_tags;
DROP INDEX CONCURRENTLY IF EXISTS customers_signup_at;
DROP INDEX CONCURRENTLY IF EXISTS customers_last_purchase_at;
CREATE OR REPLACE VIEW customer_metrics AS
SELECT c.id AS customer_id,
       c.order_count,
       greatest(c.order_count - 1, 0) AS repeat_purchases,
       c.lifetime_value AS revenue,
       c.avg_order_value,
       c.first_purchase_at,
       c.last_purchase_at,
       d.days_since_last_purchase,
       c.purchase_gap_days,
       g.usual_gap_days,
       round(c.lifetime_value * s.ltv_margin::numeric, 2)::numeric(14, 2) AS lifetime_value,
       (c.order_count > 0 AND d.days_since_last_purchase > s.churn_factor * g.usual_gap_days) AS churn_risk
FROM customers c
CROSS JOIN rapport_metric_settings s
CROSS JOIN LATERAL (
    SELECT CASE WHEN c.last_purchase_at IS NULL THEN -1
                ELSE trunc(extract(epoch FROM now() - c.last_purchase_at) / 86400)::bigint END
           AS days_since_last_purchase
) d
CROSS JOIN LATERAL (
    SELECT CASE WHEN c.order_count >= 2 AND c.purchase_gap_days >= 1 THEN c.purchase_gap_days
                ELSE s.churn_default_gap_days END AS usual_gap_days
) g;
CREATE OR REPLACE VIEW customer_profiles AS
SELECT c.id, c.email, c.phone, c.name, c.locale, c.timezone, c.tier, c.stage, c.points,
       m.lifetime_value, c.order_count, c.avg_order_value, c.purchase_gap_days, m.churn_risk,
       c.first_purchase_at, c.last_purchase_at, c.birthday, c.signup_at, c.tags, c.attrs,
       c.created_at, c.updated_at
FROM customers c
JOIN customer_metrics m ON m.customer_id = c.id;
DROP FUNCTION rapport_churn_risk(bigint, timestamptz, double precision, timestamptz, double precision, double precision);
DROP FUNCTION rapport_lifetime_value(numeric, double precision);
DROP FUNCTION rapport_days_since(timestamptz, timestamptz);
