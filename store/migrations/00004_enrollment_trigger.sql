-- The event (or scan tick) that started an enrollment. One trigger starts
-- at most one enrollment of a playbook for a customer, whatever the
-- re-entry policy: an event whose dispatch is retried (the client's retry
-- after a 503, or the redispatch sweeper) after its first enrollment has
-- already ended must not start a second one under `reentry: always`.
-- Empty for enrollments started without a trigger id.

-- +goose Up
ALTER TABLE enrollments ADD COLUMN trigger_id text NOT NULL DEFAULT '';
CREATE UNIQUE INDEX enrollments_one_per_trigger ON enrollments (playbook, customer_id, trigger_id) WHERE trigger_id <> '';

-- +goose Down
DROP INDEX enrollments_one_per_trigger;
ALTER TABLE enrollments DROP COLUMN trigger_id;
