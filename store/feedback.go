package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/feedback"
	"github.com/rapport-crm/rapport/rules"
)

// DefaultSoftBounceLimit is how many soft bounces in a row, with no
// delivery or engagement between them, suppress an address
// (RAPPORT_SOFT_BOUNCE_LIMIT).
const DefaultSoftBounceLimit = 3

// FeedbackResult is what recording a feedback.Event did.
type FeedbackResult struct {
	// Found: the event was attributed to a message of the outbox.
	Found bool
	// Inserted: it was new (false for a replay); Event, the customer
	// event it became, then needs dispatching to the journeys.
	Inserted   bool
	CustomerID string
	Event      rules.Event
	// Customer is the customer's profile after the event, read in the
	// same round trip so that dispatch needs no read of its own.
	Customer rules.Customer
}

// recordFeedback is RecordFeedback's one statement, so that a
// notification costs one round trip and one commit like any insert: it
// finds the message ($1 key, else $2 provider id); adds the status-history
// row (message_events) and the customer event (events) under the same
// deterministic id, both doing nothing on a replay; and, for a new event
// only, updates the suppression list — a hard bounce or complaint
// suppresses, a soft bounce counts and suppresses once $12 of them come
// in a row (each message once, first_soft), a delivery or engagement
// resets the count — and a provider's
// unsubscribe withdraws consent for the message's channel and topic. A
// hard bounce or complaint Rapport cannot attribute still suppresses the
// reported address ($10 channel, $11 address): losing it would keep
// mailing a dead address.
const recordFeedback = `
WITH m AS (
	-- Two branches rather than one OR, so that each is an index scan
	-- (messages.key, messages_provider_id) under a generic plan too; the
	-- OR was a sequential scan of the outbox.
	(SELECT key, customer_id, enrollment_id, step_id, playbook, template, channel, topic, recipient
	FROM messages WHERE $1 <> '' AND key = $1)
	UNION ALL
	(SELECT key, customer_id, enrollment_id, step_id, playbook, template, channel, topic, recipient
	FROM messages WHERE $1 = '' AND provider_id = $2 AND provider_id <> ''
	ORDER BY id LIMIT 1)
), me AS (
	INSERT INTO message_events (id, message_key, kind, provider, bounce, url, detail, at)
	SELECT $3, m.key, $4, $5, $6, $7, $8, $9 FROM m
	ON CONFLICT (id) DO NOTHING
	RETURNING message_key
), evid AS (
	INSERT INTO event_ids (id, customer_id, time)
	SELECT $3, m.customer_id, $9 FROM m JOIN me ON me.message_key = m.key
	ON CONFLICT (id) DO NOTHING
	RETURNING customer_id
), ev AS (
	INSERT INTO events (id, customer_id, name, time, props)
	SELECT $3, m.customer_id, 'message_' || $4, $9, jsonb_strip_nulls(jsonb_build_object(
		'message_key', m.key, 'enrollment_id', m.enrollment_id, 'step_id', m.step_id, 'playbook', m.playbook,
		'template', m.template, 'channel', m.channel, 'provider', $5::text,
		'url', nullif($7, ''), 'bounce', nullif($6, '')))
	FROM m JOIN evid ON evid.customer_id = m.customer_id
	RETURNING customer_id, props
), target AS (
	SELECT m.channel, rapport_address(m.channel, m.recipient) AS address FROM m JOIN me ON me.message_key = m.key
	UNION ALL
	SELECT $10, rapport_address($10, $11) WHERE NOT EXISTS (SELECT 1 FROM m) AND $11 <> ''
		AND ($6 = 'hard' OR $4 = 'complained')
), first_soft AS (
	-- Providers retry a temporarily failing message and report every
	-- attempt (Mailgun's "temporary" failures): a message counts as one
	-- soft bounce however many come in. The statement's snapshot does not
	-- see me's row, so an earlier soft bounce of the message is one
	-- recorded before this statement.
	SELECT NOT EXISTS (SELECT 1 FROM message_events x JOIN m ON x.message_key = m.key
		WHERE x.kind = 'bounced' AND x.bounce = 'soft') AS yes
), verdict AS (
	SELECT channel, address,
		CASE WHEN $6 = 'hard' THEN 'hard_bounce' WHEN $4 = 'complained' THEN 'complaint'
			WHEN $6 = 'soft' AND $12 <= 1 THEN 'soft_bounces' ELSE '' END AS reason
	FROM target WHERE address <> '' AND ($4 IN ('bounced', 'complained'))
), sup AS (
	INSERT INTO suppressions AS s (channel, address, reason, soft_bounces, suppressed_at, source)
	SELECT channel, address, reason, CASE WHEN $6 = 'soft' AND (SELECT yes FROM first_soft) THEN 1 ELSE 0 END,
		CASE WHEN reason <> '' THEN $9::timestamptz END, $3
	FROM verdict
	ON CONFLICT (channel, address) DO UPDATE SET
		soft_bounces = s.soft_bounces + excluded.soft_bounces,
		reason = CASE
			WHEN excluded.reason = 'hard_bounce' THEN 'hard_bounce'
			WHEN s.suppressed_at IS NOT NULL THEN s.reason
			WHEN excluded.reason <> '' THEN excluded.reason
			WHEN s.soft_bounces + excluded.soft_bounces >= $12 THEN 'soft_bounces'
			ELSE '' END,
		suppressed_at = CASE
			WHEN s.suppressed_at IS NOT NULL THEN s.suppressed_at
			WHEN excluded.reason <> '' OR s.soft_bounces + excluded.soft_bounces >= $12 THEN $9::timestamptz END,
		source = CASE WHEN s.suppressed_at IS NULL THEN excluded.source ELSE s.source END,
		updated_at = now()
	RETURNING 1
), reset AS (
	UPDATE suppressions s SET soft_bounces = 0, updated_at = now()
	FROM target t
	WHERE $4 IN ('delivered', 'opened', 'clicked') AND s.channel = t.channel AND s.address = t.address
		AND s.suppressed_at IS NULL AND s.soft_bounces > 0
	RETURNING 1
), unsub AS (
	INSERT INTO consents AS c (customer_id, channel, topic, granted, source)
	SELECT m.customer_id, m.channel, m.topic, false, 'provider:' || $5
	FROM m JOIN me ON me.message_key = m.key WHERE $4 = 'unsubscribed' AND m.topic <> ''
	ON CONFLICT (customer_id, channel, topic) DO UPDATE
		SET granted = false, source = excluded.source, updated_at = now() WHERE c.granted
	RETURNING 1
)
SELECT (SELECT count(*) FROM m) > 0, coalesce((SELECT customer_id FROM ev), ''),
	coalesce((SELECT props FROM ev), '{}'::jsonb),
	(SELECT count(*) FROM sup) + (SELECT count(*) FROM reset) + (SELECT count(*) FROM unsub)`

// RecordFeedback records a provider's or the tracker's notification about
// a message, once per e.ID, in one statement (recordFeedback). A new
// event attributed to a message comes back as the customer event to
// dispatch, with the customer; a replay, or an event for a message
// Rapport does not know, comes back with Inserted false.
func (s *Store) RecordFeedback(ctx context.Context, e feedback.Event) (FeedbackResult, error) {
	res, err := s.RecordFeedbackBatch(ctx, []feedback.Event{e})
	if err != nil {
		return FeedbackResult{}, err
	}
	return res[0], nil
}

// RecordFeedbackBatch records the events of one notification (a SendGrid
// array) as RecordFeedback does, all in one transaction and one round
// trip: one commit for the lot, and a failure records none, so the
// provider's retry of the whole notification loses nothing. Each event's
// customer is read in the same round trip, for dispatch.
func (s *Store) RecordFeedbackBatch(ctx context.Context, events []feedback.Event) ([]FeedbackResult, error) {
	if len(events) == 0 {
		return nil, nil
	}
	for _, e := range events {
		if err := e.Check(); err != nil {
			return nil, permanent("record feedback: %v", err)
		}
	}
	// Each event's time is fixed once, for its partition and its row.
	events = slices.Clone(events)
	times := make([]time.Time, len(events))
	for i := range events {
		events[i].At = orNow(events[i].At)
		times[i] = events[i].At
	}
	var out []FeedbackResult
	err := s.withEventMonths(ctx, times, func() error {
		out = make([]FeedbackResult, len(events))
		b := &pgx.Batch{}
		for i, e := range events {
			s.queueFeedback(b, e, &out[i])
		}
		return s.pool.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, fmt.Errorf("record %d feedback events (first %s): %w", len(events), events[0].ID, err)
	}
	return out, nil
}

// queueFeedback queues e's recording statement and the read of the
// customer its event went to; res is filled in when the batch runs. The
// batch's one Sync makes its statements one implicit transaction.
func (s *Store) queueFeedback(b *pgx.Batch, e feedback.Event, res *FeedbackResult) {
	at := orNow(e.At).UTC()
	b.Queue(recordFeedback, e.MessageKey, e.ProviderID, e.ID, e.Kind, e.Provider, e.Bounce,
		e.URL, e.Detail, at, e.Channel, e.Address, s.softBounceLimit()).QueryRow(func(row pgx.Row) error {
		var props map[string]any
		var changed int
		if err := row.Scan(&res.Found, &res.CustomerID, &props, &changed); err != nil {
			return fmt.Errorf("record feedback %s: %w", e.ID, err)
		}
		if res.CustomerID != "" {
			res.Inserted = true
			res.Event = rules.Event{ID: e.ID, Name: feedback.EventName(e.Kind), Time: at, Props: props}
		}
		return nil
	})
	b.Queue(`SELECT `+customerColumns+` FROM customer_profiles
		WHERE id = (SELECT customer_id FROM event_ids WHERE id = $1)`, e.ID).QueryRow(func(row pgx.Row) error {
		c, err := scanCustomer(row)
		if errors.Is(err, pgx.ErrNoRows) || !res.Inserted {
			return nil // unattributed, or a replay: nothing to dispatch
		}
		if err != nil {
			return fmt.Errorf("load customer of feedback %s: %w", e.ID, err)
		}
		res.Customer = c
		return nil
	})
}

func (s *Store) softBounceLimit() int {
	if s.cfg.SoftBounceLimit > 0 {
		return s.cfg.SoftBounceLimit
	}
	return DefaultSoftBounceLimit
}

// Suppress puts an address on the suppression list with a reason
// (activities.ReasonHardBounce, ReasonComplaint, ReasonSoftBounces), as
// an operator's import does; an address already suppressed keeps its
// first reason and date, except that a hard bounce wins.
func (s *Store) Suppress(ctx context.Context, channel, address, reason, source string) error {
	switch reason {
	case activities.ReasonHardBounce, activities.ReasonComplaint, activities.ReasonSoftBounces:
	default:
		return permanent("suppress %s address: unknown reason %q", channel, reason)
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO suppressions AS s (channel, address, reason, suppressed_at, source)
		VALUES ($1, rapport_address($1, $2), $3, now(), $4)
		ON CONFLICT (channel, address) DO UPDATE SET
			reason = CASE WHEN s.suppressed_at IS NULL OR excluded.reason = 'hard_bounce' THEN excluded.reason ELSE s.reason END,
			suppressed_at = coalesce(s.suppressed_at, excluded.suppressed_at),
			source = CASE WHEN s.suppressed_at IS NULL THEN excluded.source ELSE s.source END, updated_at = now()`,
		channel, address, reason, source)
	if err != nil {
		return fmt.Errorf("suppress %s address: %w", channel, err)
	}
	return nil
}

// Suppression is one entry of the suppression list.
type Suppression struct {
	Channel      string    `json:"channel"`
	Address      string    `json:"address"`
	Reason       string    `json:"reason"`
	SoftBounces  int       `json:"soft_bounces"`
	SuppressedAt time.Time `json:"suppressed_at"`
	Source       string    `json:"source,omitempty"`
}

// queueSuppression queues, behind the customer lock, the read of the
// suppression entry of the address the message would go to, so consent,
// caps and suppression are decided on one snapshot.
func queueSuppression(b *pgx.Batch, st *sendState, customerID, channel string) {
	b.Queue(`
		SELECT s.reason FROM suppressions s, customers c
		WHERE c.id = $1 AND s.channel = $2 AND s.suppressed_at IS NOT NULL
			AND s.address = rapport_address($2, CASE $2 WHEN 'email' THEN c.email WHEN 'sms' THEN c.phone ELSE '' END)`,
		customerID, channel).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&st.suppressed)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
}

// MarkFeedbackDispatched records that feedback events' dispatch
// succeeded, in one statement and without waiting for the WAL flush:
// MarkEventsDispatched. A provider webhook saves a disk flush per
// notification.
func (s *Store) MarkFeedbackDispatched(ctx context.Context, eventIDs ...string) error {
	if err := s.MarkEventsDispatched(ctx, eventIDs...); err != nil {
		return fmt.Errorf("feedback: %w", err)
	}
	return nil
}
