-- Dispatch marker of the event API. The API stores an event first and then
-- hands it to the journeys (starts the enrollments it triggers, signals the
-- running ones that wait for it); dispatched_at is set once that
-- succeeded. NULL means stored but not (fully) dispatched: the client's
-- retry, or a sweeper, dispatches it again; a retried event whose
-- dispatched_at is set is a no-op.

-- +goose Up
ALTER TABLE events ADD COLUMN dispatched_at timestamptz;
-- Events stored before this migration were handled by whatever stored
-- them; the redispatch sweeper must not replay them.
UPDATE events SET dispatched_at = received_at;
CREATE INDEX events_undispatched ON events (received_at) WHERE dispatched_at IS NULL;

-- +goose Down
DROP INDEX events_undispatched;
ALTER TABLE events DROP COLUMN dispatched_at;
