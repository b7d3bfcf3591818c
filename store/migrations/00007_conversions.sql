-- Goals measure; exits exit (docs/playbooks.md, "Goal"). An enrollment
-- that reaches its playbook's goal records when and on which event, and by
-- default goes on along its path, so its final status is no longer the
-- only place a conversion shows: reports count converted_at. Enrollments
-- that ended as converted before this migration converted when they ended.

-- +goose Up
ALTER TABLE enrollments ADD COLUMN converted_at timestamptz, ADD COLUMN conversion_event text;
UPDATE enrollments SET converted_at = ended_at,
	conversion_event = CASE WHEN reason LIKE 'goal %' THEN substr(reason, 6) END
	WHERE status = 'converted';
CREATE INDEX enrollments_converted ON enrollments (playbook, converted_at) WHERE converted_at IS NOT NULL;

-- +goose Down
DROP INDEX enrollments_converted;
ALTER TABLE enrollments DROP COLUMN converted_at, DROP COLUMN conversion_event;
