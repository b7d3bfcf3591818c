-- Customer-level metrics (docs/metrics.md has every definition and its
-- edge cases). They are views over the purchase columns that
-- store.InsertEvent maintains on customers (or that an import set), so
-- they are never stale and cost nothing to keep up to date; the
-- time-dependent ones (days since last purchase, churn risk) are computed
-- at query time.
--
-- Tunable per database, role or session with PostgreSQL settings (read
-- with current_setting, so no table to keep in sync):
--   rapport.ltv_margin              lifetime value = revenue × margin        (default 1)
--   rapport.churn_factor            churn risk after factor × usual gap      (default 2)
--   rapport.churn_default_gap_days  usual gap without a purchase rhythm      (default 90)
-- e.g. ALTER DATABASE rapport SET rapport.churn_factor = '3';

-- +goose Up

-- rapport_setting reads a numeric setting, falling back when it is unset,
-- and fails with the setting's name when it is not a number or below min.
-- +goose StatementBegin
CREATE FUNCTION rapport_setting(setting text, fallback double precision, min double precision)
RETURNS double precision LANGUAGE plpgsql STABLE AS $$
DECLARE
    raw text := current_setting(setting, true);
    v   double precision;
BEGIN
    IF raw IS NULL OR btrim(raw) = '' THEN
        RETURN fallback;
    END IF;
    BEGIN
        v := raw::double precision;
    EXCEPTION WHEN invalid_text_representation THEN
        RAISE EXCEPTION 'setting %: % is not a number', setting, quote_literal(raw);
    END;
    IF v < min OR v = 'NaN' OR v = 'Infinity' THEN
        RAISE EXCEPTION 'setting %: % is out of range (want a number >= %)', setting, raw, min;
    END IF;
    RETURN v;
END
$$;
-- +goose StatementEnd

-- The metric settings in effect, one row.
CREATE VIEW rapport_metric_settings AS
SELECT rapport_setting('rapport.ltv_margin', 1, 0)                    AS ltv_margin,
       rapport_setting('rapport.churn_factor', 2, 0.000001)           AS churn_factor,
       rapport_setting('rapport.churn_default_gap_days', 90, 0.000001) AS churn_default_gap_days;

-- One row per customer.
--   order_count               purchases
--   repeat_purchases          purchases beyond the first (0 for none or one)
--   revenue                   sum of purchase amounts
--   avg_order_value           revenue / order_count, rounded to cents (0 without purchases)
--   days_since_last_purchase  whole days since the last purchase, -1 without one
--   purchase_gap_days         mean days between purchases, (last − first) / (orders − 1); 0 below two
--   usual_gap_days            the gap churn is judged against: purchase_gap_days when the
--                             customer has two or more purchases at least a day apart on
--                             average, else rapport.churn_default_gap_days
--   lifetime_value            revenue × rapport.ltv_margin
--   churn_risk                has purchased, and quiet for more than
--                             rapport.churn_factor × usual_gap_days whole days
CREATE VIEW customer_metrics AS
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

-- The profile rules see: the customers row with the metric columns
-- (lifetime_value, churn_risk) as customer_metrics computes them. Same
-- columns as customers, so a reader switches by changing the FROM.
CREATE VIEW customer_profiles AS
SELECT c.id, c.email, c.phone, c.name, c.locale, c.timezone, c.tier, c.stage, c.points,
       m.lifetime_value, c.order_count, c.avg_order_value, c.purchase_gap_days, m.churn_risk,
       c.first_purchase_at, c.last_purchase_at, c.birthday, c.signup_at, c.tags, c.attrs,
       c.created_at, c.updated_at
FROM customers c
JOIN customer_metrics m ON m.customer_id = c.id;

-- Playbook-level engagement per enrollment: whether it sent a message,
-- whether the customer did anything after the first one (a response), and
-- whether they complained during it (events complaint, complaint_filed).
CREATE VIEW enrollment_engagement AS
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

-- Per playbook: response rate = responded / messaged, complaint rate =
-- complained / enrolled (NULL when the denominator is 0).
CREATE VIEW playbook_engagement AS
SELECT playbook,
       count(*) AS enrolled,
       count(*) FILTER (WHERE messaged) AS messaged,
       count(*) FILTER (WHERE responded) AS responded,
       count(*) FILTER (WHERE complained) AS complained,
       (count(*) FILTER (WHERE responded))::float8 / nullif(count(*) FILTER (WHERE messaged), 0) AS response_rate,
       (count(*) FILTER (WHERE complained))::float8 / nullif(count(*), 0) AS complaint_rate
FROM enrollment_engagement
GROUP BY playbook;

-- +goose Down
DROP VIEW playbook_engagement;
DROP VIEW enrollment_engagement;
DROP VIEW customer_profiles;
DROP VIEW customer_metrics;
DROP VIEW rapport_metric_settings;
DROP FUNCTION rapport_setting(text, double precision, double precision);
