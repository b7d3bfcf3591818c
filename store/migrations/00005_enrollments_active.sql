-- The reconciler (package reconcile) pages through the enrollments still
-- active, oldest first, to close those whose workflow has ended without
-- recording an outcome. A partial index keeps that a short index scan
-- however many enrollments have ended. Built concurrently, so a large
-- enrollments table keeps taking writes meanwhile; a build that failed
-- half-way leaves an invalid index behind, which the Up drops first.

-- +goose NO TRANSACTION
-- +goose Up
DROP INDEX CONCURRENTLY IF EXISTS enrollments_active;
CREATE INDEX CONCURRENTLY enrollments_active ON enrollments (started_at, id) WHERE status = 'active';

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS enrollments_active;
