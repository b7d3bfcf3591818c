package store

import (
	"context"
	"fmt"
	"time"
)

// Start notes (journey_starts, migration 00019) tell the event API about
// journeys that are being started: Temporal may run a journey's workflow
// before its first activity records the enrollment as active, and an
// event the customer sends meanwhile is signalled to it. A starter
// notes its starts (NoteStarts), committed, before it asks Temporal; the
// journey's RecordStart deletes its note when it records the enrollment;
// RunningVersions reads both.

// JourneyStart is a start a starter is about to ask Temporal for: the
// enrollment of a customer in a playbook version, by a trigger (the
// event or scan tick whose ID the journey's RecordStart carries).
type JourneyStart struct {
	CustomerID string
	Playbook   string
	Version    string
	TriggerID  string
}

// StartNoteRetention is how long a start note is kept when no journey
// deletes it: a start that failed for good, or whose journey has not
// run its first activity after this long. Maintain deletes older notes.
const StartNoteRetention = 30 * 24 * time.Hour

// NoteStarts records starts about to be requested, in one statement.
// Noting a start again moves its time forward. A customer who no longer
// exists (erased since a scan read them) is skipped: their journey's
// RecordStart fails for good, as it did before notes, and the other
// starts go on.
func (s *Store) NoteStarts(ctx context.Context, starts ...JourneyStart) error {
	if len(starts) == 0 {
		return nil
	}
	c := startColumns(starts)
	_, err := s.pool.Exec(ctx, `
		INSERT INTO journey_starts (customer_id, playbook, trigger_id, version)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS n (customer_id, playbook, trigger_id, version)
		WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = n.customer_id)
		ON CONFLICT (customer_id, playbook, trigger_id) DO UPDATE
			SET version = excluded.version, requested_at = now()`,
		c.customers, c.playbooks, c.triggers, c.versions)
	if err != nil {
		return fmt.Errorf("note %d journey starts (first %s in %s): %w", len(starts), starts[0].CustomerID, starts[0].Playbook, err)
	}
	return nil
}

// deleteStartNoteSQL deletes the note of one start ($1 customer, $2
// playbook, $3 trigger).
const deleteStartNoteSQL = `DELETE FROM journey_starts WHERE customer_id = $1 AND playbook = $2 AND trigger_id = $3`

// DropStartNotes deletes the notes of starts that did not happen because
// the customer's journey of the playbook was already running, once that
// journey is covered otherwise: by its active enrollment, or by the note
// of its own start (another trigger's), which its RecordStart deletes.
// A note is kept while neither exists: the running journey may be the
// one its own trigger started, on an earlier try, and not be recorded
// yet; its RecordStart (or Maintain) deletes it then.
func (s *Store) DropStartNotes(ctx context.Context, starts ...JourneyStart) error {
	if len(starts) == 0 {
		return nil
	}
	c := startColumns(starts)
	_, err := s.pool.Exec(ctx, `
		DELETE FROM journey_starts n
		USING unnest($1::text[], $2::text[], $3::text[]) AS d (customer_id, playbook, trigger_id)
		WHERE n.customer_id = d.customer_id AND n.playbook = d.playbook AND n.trigger_id = d.trigger_id
			AND (EXISTS (SELECT 1 FROM enrollments e
					WHERE e.customer_id = d.customer_id AND e.playbook = d.playbook AND e.status = 'active')
				OR EXISTS (SELECT 1 FROM journey_starts o
					WHERE o.customer_id = d.customer_id AND o.playbook = d.playbook AND o.trigger_id <> d.trigger_id))`,
		c.customers, c.playbooks, c.triggers)
	if err != nil {
		return fmt.Errorf("drop %d start notes (first %s in %s): %w", len(starts), starts[0].CustomerID, starts[0].Playbook, err)
	}
	return nil
}

// startCols are starts as columns, the arrays a statement unnests.
type startCols struct{ customers, playbooks, triggers, versions []string }

func startColumns(starts []JourneyStart) startCols {
	var c startCols
	for _, st := range starts {
		c.customers = append(c.customers, st.CustomerID)
		c.playbooks = append(c.playbooks, st.Playbook)
		c.triggers = append(c.triggers, st.TriggerID)
		c.versions = append(c.versions, st.Version)
	}
	return c
}
