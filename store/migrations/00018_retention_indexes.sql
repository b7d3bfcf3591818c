-- Retention (rapport maintain, store.Maintain) deletes messages and
-- anonymous visitors' events older than a cut-off in batches; each batch
-- finds its rows through these indexes instead of scanning the table.
-- Built concurrently, so large tables keep taking writes meanwhile; a
-- build that failed half-way leaves an invalid index behind, which the Up
-- drops first.

-- +goose NO TRANSACTION
-- +goose Up
DROP INDEX CONCURRENTLY IF EXISTS messages_created;
CREATE INDEX CONCURRENTLY messages_created ON messages (created_at);
DROP INDEX CONCURRENTLY IF EXISTS anonymous_events_time;
CREATE INDEX CONCURRENTLY anonymous_events_time ON anonymous_events (time);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS anonymous_events_time;
DROP INDEX CONCURRENTLY IF EXISTS messages_created;
