package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// Retention (issue #15): events are kept by month and dropped whole
// (migration 00015); the contact log is deleted in batches. What the
// product keeps of its own needs is not in these tables: customer
// metrics are columns maintained on ingest (migration 00010),
// enrollments and their steps are not aged out, and the frequency cap
// reads only messages younger than its window, which checkRetention makes
// the message retention cover.

// deleteBatch is how many rows one retention DELETE removes, so that no
// transaction holds a month of rows locked.
const deleteBatch = 10000

// checkRetention refuses a message retention shorter than the frequency
// cap's window: the cap counts the messages of that window.
func (c Config) checkRetention() error {
	kept := time.Duration(c.MessageRetentionMonths) * 28 * 24 * time.Hour // the shortest months
	if c.MessageRetentionMonths > 0 && c.CapMax > 0 && kept < c.CapPer {
		return fmt.Errorf("RAPPORT_MESSAGE_RETENTION_MONTHS=%d keeps as little as %d days of messages, less than the frequency cap's window %s (RAPPORT_FREQUENCY_CAP)",
			c.MessageRetentionMonths, c.MessageRetentionMonths*28, c.CapPer)
	}
	return nil
}

// MaintainReport says what a Maintain pass did (or, dry, would do).
type MaintainReport struct {
	Created         []string  // events partitions created ahead
	Dropped         []string  // events partitions dropped
	EventsBefore    time.Time // events older than this are gone; zero: kept forever
	EventIDs        int64     // event_ids rows deleted
	AnonymousEvents int64     // anonymous visitors' events deleted
	MessagesBefore  time.Time // messages older than this are gone; zero: kept forever
	Messages        int64     // messages deleted (their status history with them)
	StartNotes      int64     // start notes older than StartNoteRetention deleted
}

// monthStart is the first instant of the UTC month months after t's.
func monthStart(t time.Time, months int) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month()+time.Month(months), 1, 0, 0, 0, 0, time.UTC)
}

// Maintain runs one pass of upkeep at now:
//
//   - creates the events partitions of now's month and the next, so that
//     writers seldom create one;
//   - with EventRetentionMonths N, drops every events partition of a
//     month before the N whole months preceding now's, and deletes the
//     event ids and anonymous visitors' events of that time;
//   - with MessageRetentionMonths M, deletes messages (queued ones and
//     those of active enrollments excepted) created before the M whole
//     months preceding now's, with their status history;
//   - deletes the start notes (NoteStarts) older than StartNoteRetention,
//     starts that failed for good.
//
// A partition is detached CONCURRENTLY (writers and readers of other
// months carry on) and then dropped; a pass interrupted between the two
// finishes the detach next time. Dry, Maintain counts and lists what it
// would delete and changes nothing.
func (s *Store) Maintain(ctx context.Context, now time.Time, dry bool) (MaintainReport, error) {
	var r MaintainReport
	if err := s.cfg.checkRetention(); err != nil {
		return r, err
	}
	if err := s.maintainEvents(ctx, now, dry, &r); err != nil {
		return r, fmt.Errorf("maintain events: %w", err)
	}
	if err := s.maintainMessages(ctx, now, dry, &r); err != nil {
		return r, fmt.Errorf("maintain messages: %w", err)
	}
	if err := s.maintainStartNotes(ctx, now, dry, &r); err != nil {
		return r, fmt.Errorf("maintain start notes: %w", err)
	}
	return r, nil
}

// maintainStartNotes deletes the start notes no journey deleted.
func (s *Store) maintainStartNotes(ctx context.Context, now time.Time, dry bool, r *MaintainReport) error {
	before := now.Add(-StartNoteRetention)
	if dry {
		return s.pool.QueryRow(ctx, `SELECT count(*) FROM journey_starts WHERE requested_at < $1`, before).Scan(&r.StartNotes)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM journey_starts WHERE requested_at < $1`, before)
	r.StartNotes = tag.RowsAffected()
	return err
}

// eventPartition is one month of events.
type eventPartition struct {
	name          string
	from          time.Time
	detachPending bool
}

// eventPartitions lists the partitions of events, oldest first.
func (s *Store) eventPartitions(ctx context.Context) ([]eventPartition, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT c.relname, i.inhdetachpending
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'events'::regclass`)
	if err != nil {
		return nil, err
	}
	parts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (eventPartition, error) {
		var p eventPartition
		if err := r.Scan(&p.name, &p.detachPending); err != nil {
			return p, err
		}
		from, err := time.Parse("events_2006_01", p.name)
		if err != nil {
			return p, fmt.Errorf("partition %s of events: not named events_YYYY_MM by rapport_events_partition", p.name)
		}
		p.from = from
		return p, nil
	})
	sort.Slice(parts, func(i, j int) bool { return parts[i].from.Before(parts[j].from) })
	return parts, err
}

func (s *Store) maintainEvents(ctx context.Context, now time.Time, dry bool, r *MaintainReport) error {
	parts, err := s.eventPartitions(ctx)
	if err != nil {
		return err
	}
	have := map[time.Time]bool{}
	for _, p := range parts {
		have[p.from] = true
	}
	for _, m := range []time.Time{monthStart(now, 0), monthStart(now, 1)} {
		if have[m] {
			continue
		}
		r.Created = append(r.Created, m.Format("events_2006_01"))
		if !dry {
			if err := s.ensureEventMonth(ctx, s.pool, m); err != nil {
				return err
			}
		}
	}
	if s.cfg.EventRetentionMonths == 0 {
		return nil
	}
	r.EventsBefore = monthStart(now, -s.cfg.EventRetentionMonths)
	for _, p := range parts {
		if !p.from.Before(r.EventsBefore) {
			break
		}
		r.Dropped = append(r.Dropped, p.name)
		if !dry {
			if err := s.dropEventPartition(ctx, p); err != nil {
				return err
			}
		}
	}
	if r.EventIDs, err = s.deleteBefore(ctx, dry, "event_ids", `time < $1`, r.EventsBefore); err != nil {
		return err
	}
	r.AnonymousEvents, err = s.deleteBefore(ctx, dry, "anonymous_events", `time < $1`, r.EventsBefore)
	return err
}

// dropEventPartition detaches a month of events and drops it. DETACH ...
// CONCURRENTLY takes no lock that blocks other months' readers and
// writers; a detach interrupted before it finished is finalized.
func (s *Store) dropEventPartition(ctx context.Context, p eventPartition) error {
	detach := `ALTER TABLE events DETACH PARTITION ` + pgx.Identifier{p.name}.Sanitize() + ` CONCURRENTLY`
	if p.detachPending {
		detach = `ALTER TABLE events DETACH PARTITION ` + pgx.Identifier{p.name}.Sanitize() + ` FINALIZE`
	}
	if _, err := s.pool.Exec(ctx, detach); err != nil {
		return fmt.Errorf("detach %s: %w", p.name, err)
	}
	if _, err := s.pool.Exec(ctx, `DROP TABLE `+pgx.Identifier{p.name}.Sanitize()); err != nil {
		return fmt.Errorf("drop %s: %w", p.name, err)
	}
	s.months.forget()
	return nil
}

// deleteBefore deletes the rows of table that where (a condition on $1,
// before) selects, in batches of deleteBatch, and returns how many it
// deleted (dry: how many it would delete).
func (s *Store) deleteBefore(ctx context.Context, dry bool, table, where string, before time.Time) (int64, error) {
	if dry {
		var n int64
		err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE `+where, before).Scan(&n)
		return n, err
	}
	batch := fmt.Sprintf(`DELETE FROM %[1]s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %[1]s WHERE %[2]s LIMIT %[3]d))`, table, where, deleteBatch)
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, batch, before)
		if err != nil {
			return total, fmt.Errorf("delete from %s: %w", table, err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < deleteBatch {
			return total, nil
		}
	}
}

func (s *Store) maintainMessages(ctx context.Context, now time.Time, dry bool, r *MaintainReport) error {
	if s.cfg.MessageRetentionMonths == 0 {
		return nil
	}
	r.MessagesBefore = monthStart(now, -s.cfg.MessageRetentionMonths)
	var err error
	r.Messages, err = s.deleteBefore(ctx, dry, "messages", `created_at < $1 AND status <> 'queued'
		AND NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.id = messages.enrollment_id AND e.status = 'active')`, r.MessagesBefore)
	return err
}
