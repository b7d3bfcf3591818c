-- Indexes for `rapport report` at scale (issue #15 c). Measured with
-- `go run ./bench -parts report` (1,000,000 customers, 10,000,000 events,
-- 100,000 enrollments; docs/benchmarks.md, "Reports at scale"):
--
-- - events_complaints: the complaint check of enrollment_engagement
--   (events named complaint, complaint_filed or message_complained during
--   the enrollment) read, for every enrollment, the customer's entries
--   in the (customer_id, name, time) index of each monthly partition the
--   enrollment spans: a few hundred thousand index pages for a report
--   of 40,000 enrollments. Complaints are rare, so this partial index is
--   tiny and stays in memory; the planner picks it for the view's EXISTS
--   as it stands (the view is unchanged). It costs an insert nothing
--   unless the event is a complaint.
-- - points_ledger_enrollment, coupons_enrollment, tasks_enrollment: the
--   report counts the points, coupons and tasks its journeys gave (rows
--   whose enrollment_id is set) and read the whole tables to find them;
--   points earned by orders outnumber a journey's. Partial, so rows of no
--   journey cost nothing.
-- - enrollments_started: `--since` selects enrollments by start time.
--
-- The indexes on enrollments, points_ledger, coupons and tasks are built
-- CONCURRENTLY (writes go on; a half-built one left by an interrupted run
-- is dropped first). events is partitioned, and PostgreSQL cannot build
-- an index on a partitioned table concurrently: CREATE INDEX takes a SHARE
-- lock on every partition for the build, which holds up event writes
-- (reads go on); on 10,000,000 events it took a few seconds. To avoid the
-- lock, build it by hand before migrating (docs/operators.md, "Migrations
-- that take long"); IF NOT EXISTS then skips it.

-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX IF NOT EXISTS events_complaints ON events (customer_id, time)
    WHERE name IN ('complaint', 'complaint_filed', 'message_complained');
DROP INDEX CONCURRENTLY IF EXISTS points_ledger_enrollment;
CREATE INDEX CONCURRENTLY points_ledger_enrollment ON points_ledger (enrollment_id) WHERE enrollment_id <> '';
DROP INDEX CONCURRENTLY IF EXISTS coupons_enrollment;
CREATE INDEX CONCURRENTLY coupons_enrollment ON coupons (enrollment_id) WHERE enrollment_id <> '';
DROP INDEX CONCURRENTLY IF EXISTS tasks_enrollment;
CREATE INDEX CONCURRENTLY tasks_enrollment ON tasks (enrollment_id) WHERE enrollment_id <> '';
DROP INDEX CONCURRENTLY IF EXISTS enrollments_started;
CREATE INDEX CONCURRENTLY enrollments_started ON enrollments (started_at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS enrollments_started;
DROP INDEX CONCURRENTLY IF EXISTS tasks_enrollment;
DROP INDEX CONCURRENTLY IF EXISTS coupons_enrollment;
DROP INDEX CONCURRENTLY IF EXISTS points_ledger_enrollment;
DROP INDEX IF EXISTS events_complaints;
