package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
)

// Reasons RecordStart gives for turning a customer away: those of the
// entry policy (activities.DecideEntry), which the simulator shares.
const (
	RefusedActive   = activities.ReasonActive
	RefusedEnrolled = activities.ReasonAlreadyEnrolled
	RefusedCooldown = activities.ReasonCooldown
)

// RecordStart admits or refuses an enrollment under the re-entry policy:
//
//   - never: refused when the customer has any earlier enrollment of the playbook;
//   - after: refused when one started within Cooldown before At;
//   - always: admitted;
//
// and under every policy refused while another enrollment of the playbook
// is still active (a customer runs one journey of a playbook at a time),
// and when the same trigger (TriggerID) already started one (a retried
// dispatch of one event never enrolls twice).
// Rejected enrollments (StatusRejected) never count. The store reads the
// facts; activities.CheckEntry and activities.DecideEntry decide, as they
// do for the in-memory activities the simulator runs.
//
// The customer row is locked, so two triggers racing for the same customer
// cannot both be admitted. An admitted enrollment is recorded as active;
// asking again for the same enrollment ID answers admitted again. Refusals
// are not recorded (a segment scan would otherwise add a row per customer
// per scan); asking again re-evaluates with the same At, which answers the
// same unless the blocking enrollment has since ended.
//
// Either way the start's note (NoteStarts) is deleted in the same
// transaction: from its commit the enrollment is active, or over.
func (s *Store) RecordStart(ctx context.Context, r activities.EntryRequest) (activities.EntryResult, error) {
	e := r.Enrollment
	if err := activities.CheckEntry(r); err != nil {
		return activities.EntryResult{}, err
	}
	at := orNow(r.At)
	// Two round trips: the lock, the reads and the note's deletion in
	// the first batch, the enrollment row and COMMIT in the second. The
	// reads run after the lock is held, so they see every enrollment
	// committed by a racing trigger.
	var (
		found, existingControl, any, active, sameTrigger bool
		existing                                         string
		controlPct                                       float64
		last                                             *time.Time
		customer                                         rules.Customer
	)
	read := func(b *pgx.Batch) {
		b.Queue(lockCustomerSQL, e.CustomerID).QueryRow(func(row pgx.Row) error {
			var one int
			err := row.Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			found = err == nil
			return err
		})
		b.Queue(`SELECT status, coalesce(global_control, false) FROM enrollments WHERE id = $1`, e.ID).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&existing, &existingControl)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		})
		if r.GlobalControl {
			b.Queue(`SELECT rapport_setting('rapport.global_control_pct', 0, 0)`).QueryRow(func(row pgx.Row) error {
				return row.Scan(&controlPct)
			})
		}
		b.Queue(`
			SELECT count(*) > 0, coalesce(bool_or(status = 'active'), false), max(started_at)
			FROM enrollments
			WHERE customer_id = $1 AND playbook = $2 AND status <> 'rejected' AND id <> $3`,
			e.CustomerID, e.Playbook, e.ID).QueryRow(func(row pgx.Row) error {
			return row.Scan(&any, &active, &last)
		})
		if r.TriggerID != "" {
			b.Queue(`
				SELECT EXISTS (SELECT 1 FROM enrollments
				WHERE customer_id = $1 AND playbook = $2 AND trigger_id = $3 AND id <> $4)`,
				e.CustomerID, e.Playbook, r.TriggerID, e.ID).QueryRow(func(row pgx.Row) error {
				return row.Scan(&sameTrigger)
			})
		}
		if r.WithCustomer {
			b.Queue(`SELECT `+customerColumns+` FROM customer_profiles WHERE id = $1`, e.CustomerID).QueryRow(func(row pgx.Row) error {
				var err error
				customer, err = scanCustomer(row)
				if errors.Is(err, pgx.ErrNoRows) {
					// The row is locked, but the view also joins the
					// customer's metrics: without them LoadCustomer
					// finds no customer either.
					return errUnknownCustomer(e.CustomerID)
				}
				return err
			})
		}
		// The starter's note (journey_starts) has done its job whatever
		// the decision: an admitted enrollment is active from this commit
		// on, and a refused one ends.
		b.Queue(deleteStartNoteSQL, e.CustomerID, e.Playbook, r.TriggerID)
	}
	var res activities.EntryResult
	write := func() (*pgx.Batch, error) {
		if !found {
			return nil, errUnknownCustomer(e.CustomerID)
		}
		f := activities.EntryFacts{Existing: activities.Status(existing), ExistingGlobalControl: existingControl,
			SameTrigger: sameTrigger, Earlier: any, Active: active}
		if last != nil {
			f.Last = *last
		}
		r.At = at
		res = activities.DecideEntry(r, f)
		if res.Admitted && r.WithCustomer {
			res.Customer = &customer
		}
		if !res.Admitted || f.Existing != "" {
			return nil, nil
		}
		if controlPct > activities.MaxGlobalControlPct {
			// An operator's setting, not the journey's fault: retried, so
			// journeys wait until the setting is corrected, as in an outage.
			return nil, fmt.Errorf("record start of %s: setting rapport.global_control_pct is %g; keep it between 0 and %d percent", e.ID, controlPct, activities.MaxGlobalControlPct)
		}
		var control *bool // NULL: the playbook does not take part
		inControl := r.GlobalControl && activities.InGlobalControl(e.CustomerID, controlPct)
		if r.GlobalControl {
			control = &inControl
		}
		b := &pgx.Batch{}
		b.Queue(`
			INSERT INTO enrollments (id, workflow_id, playbook, version, customer_id, status, holdout, started_at, trigger_id, global_control)
			VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8, $9)`,
			e.ID, e.WorkflowID, e.Playbook, e.Version, e.CustomerID, e.Holdout || inControl, at, r.TriggerID, control)
		res.GlobalControl = inControl
		return b, nil
	}
	err := s.inPipelinedTx(ctx, read, write)
	if err != nil {
		return activities.EntryResult{}, fmt.Errorf("record start of enrollment %s: %w", e.ID, err)
	}
	return res, nil
}

// RecordStep records one step taken, once per key, and moves the
// enrollment's current step.
func (s *Store) RecordStep(ctx context.Context, st activities.StepRecord) error {
	if st.Key == "" {
		return permanent("record step %s of enrollment %s: key is required", st.StepID, st.Enrollment.ID)
	}
	_, err := s.pool.Exec(ctx, `
		WITH step AS (
			INSERT INTO enrollment_steps (key, enrollment_id, step_id, kind, detail, branch, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (key) DO NOTHING
			RETURNING enrollment_id, step_id
		)
		UPDATE enrollments e SET current_step = step.step_id, updated_at = now()
		FROM step WHERE e.id = step.enrollment_id`,
		st.Key, st.Enrollment.ID, st.StepID, st.Kind, st.Detail, st.Branch, orNow(st.At))
	if isForeignKeyViolation(err) {
		return permanent("record step %s: enrollment %s was never started", st.StepID, st.Enrollment.ID)
	}
	if err != nil {
		return fmt.Errorf("record step %s of enrollment %s: %w", st.StepID, st.Enrollment.ID, err)
	}
	return nil
}

// RecordConversion records the first time an enrollment reached its goal.
// Only the first conversion counts, so a retry changes nothing; an
// enrollment that has already ended keeps what it had.
func (s *Store) RecordConversion(ctx context.Context, c activities.Conversion) error {
	e := c.Enrollment
	tag, err := s.pool.Exec(ctx, `
		UPDATE enrollments SET converted_at = $2, conversion_event = $3, updated_at = now()
		WHERE id = $1 AND converted_at IS NULL AND status = 'active'`,
		e.ID, orNow(c.At), c.Event)
	if err != nil {
		return fmt.Errorf("record conversion of enrollment %s: %w", e.ID, err)
	}
	if tag.RowsAffected() == 0 {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM enrollments WHERE id = $1)`, e.ID).Scan(&exists); err != nil {
			return fmt.Errorf("record conversion of enrollment %s: %w", e.ID, err)
		}
		if !exists {
			return permanent("record conversion of enrollment %s: the enrollment was never started", e.ID)
		}
	}
	return nil
}

// RecordOutcome closes an enrollment with its final status. Only an
// active enrollment changes, so a retry (or a late duplicate) keeps the
// first outcome. An enrollment that was never recorded as started (one
// rejected before RecordStart, e.g. by the audience rule) is inserted
// closed.
func (s *Store) RecordOutcome(ctx context.Context, o activities.Outcome) error {
	e := o.Enrollment
	if !finalStatus(o.Status) {
		return permanent("record outcome of enrollment %s: %q is not a final status", e.ID, o.Status)
	}
	at := orNow(o.At)
	// A converted outcome converts the enrollment too, unless it had
	// converted earlier (and gone on).
	_, err := s.pool.Exec(ctx, `
		INSERT INTO enrollments AS e (id, workflow_id, playbook, version, customer_id, status, holdout, reason, started_at, ended_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
		ON CONFLICT (id) DO UPDATE
			SET status = excluded.status, reason = excluded.reason, ended_at = excluded.ended_at, updated_at = now(),
				converted_at = CASE WHEN excluded.status = 'converted' THEN coalesce(e.converted_at, excluded.ended_at) ELSE e.converted_at END,
				conversion_event = CASE WHEN excluded.status = 'converted' THEN coalesce(e.conversion_event, nullif($10, '')) ELSE e.conversion_event END
			WHERE e.status = 'active'`,
		e.ID, e.WorkflowID, e.Playbook, e.Version, e.CustomerID, string(o.Status), e.Holdout, o.Reason, at, o.Goal)
	if isForeignKeyViolation(err) {
		return errUnknownCustomer(e.CustomerID)
	}
	if err != nil {
		return fmt.Errorf("record outcome of enrollment %s: %w", e.ID, err)
	}
	if err := closeUndelivered(ctx, s.pool, e.ID); err != nil {
		return fmt.Errorf("record outcome of enrollment %s: %w", e.ID, err)
	}
	return nil
}

// finalStatus reports whether an enrollment may end with status.
func finalStatus(status activities.Status) bool {
	switch status {
	case activities.StatusCompleted, activities.StatusConverted, activities.StatusExited,
		activities.StatusFailed, activities.StatusRejected:
		return true
	}
	return false
}

// execer is a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// closeUndelivered closes the messages of an ended enrollment. A message
// still queued when its enrollment ends will never be delivered (its
// send's retries ran out, failing the journey, or the workflow was
// terminated): close it as failed with its last failure, so the outbox
// holds no message queued forever and the caps stop counting it.
func closeUndelivered(ctx context.Context, db execer, enrollmentID string) error {
	_, err := db.Exec(ctx, `
		UPDATE messages SET status = 'failed', reason = CASE WHEN reason = '' THEN 'undelivered' ELSE reason END, updated_at = now()
		WHERE enrollment_id = $1 AND status = 'queued'`, enrollmentID)
	if err != nil {
		return fmt.Errorf("close undelivered messages: %w", err)
	}
	return nil
}
