-- Two things the planner needs at scale (issue #15).
--
-- Retention (rapport maintain, store.Maintain) deletes messages and
-- anonymous visitors' events older than a cut-off in batches; each batch
-- finds its rows through these indexes instead of scanning the table.
-- Built concurrently, so large tables keep taking writes meanwhile; a
-- build that failed half-way leaves an invalid index behind, which the Up
-- drops first.

--
-- A partitioned scan pages through customers with
-- "hashtext(id) BETWEEN lo AND hi" (store.Partition). Without statistics
-- on that expression the planner takes the range to hold 0.5 % of the
-- customers instead of 1/partitions, and for a predicate that matches many
-- customers plans a bitmap scan of the predicate's index plus a sort of
-- every match instead of walking the primary key in order: 479 ms instead
-- of 23 ms per page at 500,000 customers (docs/benchmarks.md). Extended
-- statistics on the expression give it the real share, at no cost to
-- writes (an expression index would add one to every insert). ANALYZE
-- reads a sample of 30,000 rows, whatever the table's size.

-- +goose NO TRANSACTION
-- +goose Up
DROP INDEX CONCURRENTLY IF EXISTS messages_created;
CREATE INDEX CONCURRENTLY messages_created ON messages (created_at);
DROP INDEX CONCURRENTLY IF EXISTS anonymous_events_time;
CREATE INDEX CONCURRENTLY anonymous_events_time ON anonymous_events (time);
CREATE STATISTICS IF NOT EXISTS customers_id_hash ON (hashtext(id)) FROM customers;
ANALYZE customers;

-- +goose Down
DROP STATISTICS IF EXISTS customers_id_hash;
DROP INDEX CONCURRENTLY IF EXISTS anonymous_events_time;
DROP INDEX CONCURRENTLY IF EXISTS messages_created;
