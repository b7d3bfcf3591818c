package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/activities"
)

// Message statuses in the outbox.
const (
	msgQueued     = "queued"
	msgSent       = "sent"
	msgFailed     = "failed"
	msgSuppressed = "suppressed"
)

// ReasonRenderError is recorded in the outbox for a template that cannot
// be rendered for the customer.
const ReasonRenderError = activities.ReasonRenderError

// The send path's SQL: the outbox. delivery.Sender renders, signs links,
// calls the channel and drives these transitions (delivery.Outbox):
//
//  1. DecideSend, in one transaction with the customer row locked: a
//     message already recorded under Key answers with its recorded outcome
//     (a still queued one goes on to delivery). Otherwise the facts are
//     read — recipient address, consent for the channel and topic (or
//     "*"), the messages counted by the global frequency cap (per customer
//     and channel, all playbooks) and by the playbook's cap (per customer,
//     all channels) — and activities.DecideSend decides, as it does for the
//     simulator: a holdout receives nothing, a missing address is
//     suppressed (no_address), an address on the suppression list is
//     suppressed with its reason (suppressions, read in the same
//     transaction), transactional messages skip consent and caps. A
//     stopped message is recorded suppressed; a message over a cap with
//     CapDefer is not recorded at all and answers SendDeferred with the
//     time the cap frees up, so the journey's later retry with the same Key
//     is checked afresh. A message that passes is rendered and recorded
//     queued, which counts towards the caps from then on.
//  2. After commit, the channel delivers it; MarkSent records the
//     provider's id, MarkFailed a permanent failure, NoteAttempt a
//     transient one (the row stays queued and the activity is retried).
//
// Frequency caps count in the request's Now (workflow time), which is also
// the message's created_at.

// decision is what the send transaction decided, and the new outbox row
// to record, if any.
type decision struct {
	result  activities.SendResult
	deliver bool
	insert  *messageRow
}

// sendState is everything the checks read, fetched in one round trip
// after the customer row is locked.
type sendState struct {
	found              bool
	email, phone       string
	existing           *recorded
	consent            bool
	globalCap, pbCap   []time.Time // created_at of counted messages, newest first
	globalMax, pbMax   int
	globalPer, pbPer   time.Duration
	checkCaps, checkPB bool
	suppressed         string // the suppression list's reason for the address
}

// recorded is a message row already under the Key.
type recorded struct {
	status, reason, providerID, recipient string
}

// DecideSend implements delivery.Outbox: step 1 above in two
// round trips, BEGIN with the reads (customer lock first), then the new
// outbox row, if any, with COMMIT. render is called between them for a
// message that passes, or one still queued under the Key.
func (s *Store) DecideSend(ctx context.Context, customerID string, r activities.SendRequest, render func() (string, error)) (activities.SendResult, bool, error) {
	var st *sendState
	var d decision
	var erased bool
	err := s.inPipelinedTx(ctx,
		func(b *pgx.Batch) { st = s.queueSendState(b, customerID, r) },
		func() (*pgx.Batch, error) {
			var err error
			d, err = settle(st, customerID, r, render)
			if err != nil || d.insert == nil {
				return nil, err
			}
			b := &pgx.Batch{}
			if forms := s.erasedForms(r.Channel, d.insert.recipient); d.deliver && len(forms) > 0 {
				queueInsertUnlessErased(b, customerID, r, *d.insert, forms, &erased)
			} else {
				queueInsertMessage(b, customerID, r, *d.insert, d.deliver)
			}
			return b, nil
		})
	if err == nil && erased {
		d.result = activities.SendResult{Status: activities.SendSuppressed, Reason: activities.ReasonErased, To: d.insert.recipient}
		d.deliver = false
	}
	return d.result, d.deliver, err
}

// settle decides from the state read under the lock: the recorded
// outcome of the Key, a deferral, or the new row to record.
func settle(st *sendState, customerID string, r activities.SendRequest, render func() (string, error)) (decision, error) {
	var d decision
	if !st.found {
		return d, errUnknownCustomer(customerID)
	}
	recipient := activities.Recipient(r.Channel, customerID, st.email, st.phone)
	if st.existing != nil {
		d.result = fromRecorded(st.existing)
		if st.existing.status == msgQueued {
			d.deliver = true
			_, err := render()
			return d, err
		}
		return d, nil
	}
	status, reason, retryAt := activities.DecideSend(r, st.facts(recipient))
	if status == activities.SendDeferred {
		d.result = activities.SendResult{Status: activities.SendDeferred, Reason: reason, RetryAt: retryAt}
		return d, nil // nothing recorded: the key stays free for the retry
	}
	row := messageRow{status: msgQueued, recipient: recipient}
	if status != "" {
		row.status, row.reason = string(status), reason
	} else if subject, err := render(); errors.Is(err, activities.ErrRender) {
		row.status, row.reason = msgFailed, ReasonRenderError
		status, reason = activities.SendFailed, ReasonRenderError
	} else if err != nil {
		return d, err
	} else {
		row.subject = subject
		d.deliver = true
	}
	d.insert = &row
	d.result = activities.SendResult{Status: status, Reason: reason, To: recipient}
	return d, nil
}

// queueSendState queues, behind BEGIN, the customer lock and the reads of
// the recorded message, consent and the messages counted by the caps; the
// returned state is filled in when the batch runs. Statements after the
// lock see everything committed by racing sends of the same customer
// (READ COMMITTED takes a snapshot per statement).
func (s *Store) queueSendState(b *pgx.Batch, customerID string, r activities.SendRequest) *sendState {
	st := &sendState{consent: true}
	b.Queue(`SELECT email, phone FROM customers WHERE id = $1 FOR UPDATE`, customerID).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&st.email, &st.phone)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		st.found = err == nil
		return err
	})
	b.Queue(`SELECT status, reason, provider_id, recipient FROM messages WHERE key = $1`, r.Key).QueryRow(func(row pgx.Row) error {
		var m recorded
		err := row.Scan(&m.status, &m.reason, &m.providerID, &m.recipient)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		st.existing = &m
		return err
	})
	queueSuppression(b, st, customerID, r.Channel)
	if !r.Transactional {
		b.Queue(`
			SELECT granted FROM consents
			WHERE customer_id = $1 AND channel = $2 AND topic IN ($3, '*')
			ORDER BY topic = '*' LIMIT 1`, customerID, r.Channel, r.Topic).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&st.consent)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil // opt-out model: no decision recorded means granted
			}
			return err
		})
		st.checkCaps = s.cfg.CapMax > 0 && s.cfg.CapPer > 0
		if st.checkCaps {
			st.globalMax, st.globalPer = s.cfg.CapMax, s.cfg.CapPer
			queueCapQuery(b, &st.globalCap, `customer_id = $1 AND channel = $2`, customerID, r.Channel, r.Now.Add(-st.globalPer), st.globalMax)
		}
		st.checkPB = r.CapMax > 0 && r.CapPer > 0 && r.Enrollment.Playbook != ""
		if st.checkPB {
			st.pbMax, st.pbPer = r.CapMax, r.CapPer
			queueCapQuery(b, &st.pbCap, `customer_id = $1 AND playbook = $2`, customerID, r.Enrollment.Playbook, r.Now.Add(-st.pbPer), st.pbMax)
		}
	}
	return st
}

// queueCapQuery reads the created_at of the newest max messages a cap
// counts: non-transactional, queued or sent, inside the window.
func queueCapQuery(b *pgx.Batch, dst *[]time.Time, where string, customerID, other string, since time.Time, max int) {
	b.Queue(`
		SELECT created_at FROM messages
		WHERE `+where+` AND NOT transactional AND status IN ('queued', 'sent') AND created_at > $3
		ORDER BY created_at DESC LIMIT $4`, customerID, other, since, max).Query(func(rows pgx.Rows) error {
		var err error
		*dst, err = pgx.CollectRows(rows, pgx.RowTo[time.Time])
		return err
	})
}

// facts are the state read under the lock, as the send policy
// (activities.DecideSend) takes them.
func (st *sendState) facts(recipient string) activities.SendFacts {
	f := activities.SendFacts{Recipient: recipient, Consent: st.consent, Suppressed: st.suppressed}
	if st.checkCaps {
		f.Global = activities.CapFacts{Max: st.globalMax, Per: st.globalPer, Counted: st.globalCap}
	}
	if st.checkPB {
		f.Playbook = activities.CapFacts{Max: st.pbMax, Per: st.pbPer, Counted: st.pbCap}
	}
	return f
}

func fromRecorded(m *recorded) activities.SendResult {
	res := activities.SendResult{Reason: m.reason, ProviderID: m.providerID, To: m.recipient}
	switch m.status {
	case msgSent:
		res.Status = activities.SendSent
	case msgSuppressed:
		res.Status = activities.SendSuppressed
	case msgFailed:
		res.Status = activities.SendFailed
	}
	return res
}

// messageRow is the part of a new outbox row decided by the checks.
type messageRow struct {
	status, reason, recipient, subject string
}

// queueInsertMessage queues the new outbox row, ahead of the COMMIT that
// inPipelinedTx sends in the same batch. A row that is about to be
// delivered is committed without waiting for the WAL flush (asynchronous
// commit): it is visible to racing sends at once, as caps need, and its
// durability comes with the synchronous update to sent or failed that
// follows delivery, because flushing that commit flushes all WAL before
// it. Should the database crash before then, the row is lost together
// with the knowledge of the delivery — the same outcome as a crash between
// delivery and that update, after which the retry delivers again with the
// same key. This saves one disk flush per message. Final rows
// (suppressed, failed) commit synchronously: nothing follows them.
func queueInsertMessage(b *pgx.Batch, customerID string, r activities.SendRequest, m messageRow, async bool) {
	if async {
		b.Queue(`SET LOCAL synchronous_commit = off`)
	}
	b.Queue(`
		INSERT INTO messages (key, enrollment_id, customer_id, playbook, step_id, channel, template, locale,
			topic, transactional, recipient, subject, status, reason, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		r.Key, r.Enrollment.ID, customerID, r.Enrollment.Playbook, r.StepID, r.Channel, r.Template, r.Locale,
		r.Topic, r.Transactional, m.recipient, m.subject, m.status, m.reason, r.Now)
}

// queueInsertUnlessErased is queueInsertMessage for a message about to
// be delivered while erasure secrets are configured: in the same
// statement it checks the recipient's keyed hashes (forms, one per
// secret) against the suppression list, and records the message
// suppressed (erased), without subject, when an erased customer had the
// address; *erased says which. The hashes need the address, which the
// first round trip reads, so the check rides on the insert rather than
// costing a round trip of its own.
func queueInsertUnlessErased(b *pgx.Batch, customerID string, r activities.SendRequest, m messageRow, forms []string, erased *bool) {
	b.Queue(`SET LOCAL synchronous_commit = off`)
	b.Queue(`
		INSERT INTO messages (key, enrollment_id, customer_id, playbook, step_id, channel, template, locale,
			topic, transactional, recipient, subject, status, reason, created_at)
		SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::text, $10::boolean, $11::text,
			CASE WHEN x.hit THEN '' ELSE $12::text END,
			CASE WHEN x.hit THEN 'suppressed' ELSE $13::text END,
			CASE WHEN x.hit THEN 'erased' ELSE $14::text END, $15::timestamptz
		FROM (SELECT EXISTS (SELECT 1 FROM suppressions
			WHERE channel = $6::text AND address = ANY($16::text[]) AND suppressed_at IS NOT NULL) AS hit) x
		RETURNING status = 'suppressed'`,
		r.Key, r.Enrollment.ID, customerID, r.Enrollment.Playbook, r.StepID, r.Channel, r.Template, r.Locale,
		r.Topic, r.Transactional, m.recipient, m.subject, m.status, m.reason, r.Now, forms).QueryRow(func(row pgx.Row) error {
		return row.Scan(erased)
	})
}

// MarkSent implements delivery.Outbox: the queued row becomes sent with
// the provider's id.
func (s *Store) MarkSent(ctx context.Context, key, providerID string) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE messages SET status = 'sent', provider_id = $2, reason = '', attempts = attempts + 1,
			sent_at = now(), updated_at = now()
		WHERE key = $1 AND status = 'queued'`, key, providerID)
	if err != nil {
		return fmt.Errorf("mark message %s sent: %w", key, err)
	}
	return nil
}

// MarkFailed implements delivery.Outbox: the queued row becomes failed
// with the channel's reason.
func (s *Store) MarkFailed(ctx context.Context, key, reason string) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE messages SET status = 'failed', reason = $2, attempts = attempts + 1, updated_at = now()
		WHERE key = $1 AND status = 'queued'`, key, reason)
	if err != nil {
		return fmt.Errorf("mark message %s failed: %w", key, err)
	}
	return nil
}

// NoteAttempt implements delivery.Outbox: a transient failure is counted
// and its reason kept; the row stays queued for the retry.
func (s *Store) NoteAttempt(ctx context.Context, key, reason string) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE messages SET reason = $2, attempts = attempts + 1, updated_at = now()
		WHERE key = $1 AND status = 'queued'`, key, reason)
	if err != nil {
		return fmt.Errorf("note delivery attempt of message %s: %w", key, err)
	}
	return nil
}
