-- Journeys being started (issue #15 d). A starter (the event API's
-- dispatcher, a scan page, a manual enrollment) notes the start here,
-- committed, before it asks Temporal to start the workflow; the
-- journey's first activity, RecordStart, deletes its note in the
-- transaction that records the enrollment as active (or refuses it).
-- The event API signals a customer's journeys from the enrollments that
-- are active and the starts noted here, so a journey that started so
-- recently that its enrollment is not recorded yet is signalled the
-- customer's events, and a page view of a customer in no journey signals
-- nothing. Before this table the API signalled every deployed playbook
-- that listens to the event, for every customer, to cover that moment.
-- A signal that finds no workflow while the only note is younger than a
-- minute (the start call may still be in flight) fails as unavailable,
-- and the client sends the event again.
--
-- One row per customer, playbook and trigger: two starters of the same
-- journey with different triggers (a scan and an event at once) each
-- note theirs, and only the one Temporal started is deleted by its
-- journey. A note whose start did not happen because the journey was
-- already running is deleted by its starter once that journey is covered
-- (its enrollment active, or its own start noted); one whose start
-- failed for good is harmless (the
-- API signals a journey that does not exist and hears "not found") and
-- `rapport maintain` deletes it after 30 days.
--
-- Additive: a new table nothing reads before this version.

-- +goose Up
CREATE TABLE journey_starts (
    customer_id  text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    playbook     text NOT NULL,
    version      text NOT NULL,
    trigger_id   text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, playbook, trigger_id)
);
CREATE INDEX journey_starts_requested ON journey_starts (requested_at);

-- +goose Down
DROP TABLE journey_starts;
