package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// CustomerExport is everything Rapport holds about one customer, for an
// access request (`rapport customer ID --json`, GET /v1/customers/{id}):
// the CustomerView with nothing cut (every ledger entry and contact-log
// line), and the rows the view summarizes — every event with its
// properties, every message with its status history, every step of every
// enrollment, every task, the anonymous ids tied to the customer with
// their traits and the events still filed under them, and the
// suppression entries of every address the customer had.
//
// What is not here: the customer's workflow histories in Temporal (read
// them there, or with the codec endpoint), the providers' own copies,
// and backups.
type CustomerExport struct {
	CustomerView
	Record          RecordTimes         `json:"record"`
	Events          []ExportEvent       `json:"events"`
	Messages        []ExportMessage     `json:"messages"`
	EnrollmentSteps []ExportStep        `json:"enrollment_steps"`
	Tasks           []ExportTask        `json:"tasks"`
	AnonymousIDs    []ExportAnonymousID `json:"anonymous_ids"`
	AddressEntries  []ExportSuppression `json:"suppression_entries"`
}

// RecordTimes are when the customer row was created and last changed.
type RecordTimes struct {
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ExportEvent is one stored event.
type ExportEvent struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	Time         time.Time      `json:"time"`
	Amount       float64        `json:"amount"`
	Currency     string         `json:"currency,omitempty"`
	OrderID      string         `json:"order_id,omitempty"`
	Category     string         `json:"category,omitempty"`
	Score        float64        `json:"score,omitempty"`
	Props        map[string]any `json:"props"`
	ReceivedAt   time.Time      `json:"received_at"`
	DispatchedAt *time.Time     `json:"dispatched_at,omitempty"`
}

// ExportMessage is one outbox row with its status history.
type ExportMessage struct {
	Key           string          `json:"key"`
	EnrollmentID  string          `json:"enrollment_id,omitempty"`
	Playbook      string          `json:"playbook,omitempty"`
	StepID        string          `json:"step_id,omitempty"`
	Channel       string          `json:"channel"`
	Template      string          `json:"template,omitempty"`
	Locale        string          `json:"locale,omitempty"`
	Topic         string          `json:"topic,omitempty"`
	Transactional bool            `json:"transactional"`
	Recipient     string          `json:"recipient,omitempty"`
	Subject       string          `json:"subject,omitempty"`
	Status        string          `json:"status"`
	Reason        string          `json:"reason,omitempty"`
	ProviderID    string          `json:"provider_id,omitempty"`
	Attempts      int             `json:"attempts"`
	CreatedAt     time.Time       `json:"created_at"`
	SentAt        *time.Time      `json:"sent_at,omitempty"`
	History       []MessageStatus `json:"history"`
}

// MessageStatus is one provider or tracking notification of a message.
type MessageStatus struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	Provider string    `json:"provider"`
	Bounce   string    `json:"bounce,omitempty"`
	URL      string    `json:"url,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	At       time.Time `json:"at"`
}

// ExportStep is one step an enrollment took.
type ExportStep struct {
	EnrollmentID string    `json:"enrollment_id"`
	StepID       string    `json:"step_id"`
	Kind         string    `json:"kind"`
	Detail       string    `json:"detail,omitempty"`
	Branch       string    `json:"branch,omitempty"`
	At           time.Time `json:"at"`
}

// ExportTask is one hand-off task, open or done.
type ExportTask struct {
	ID           int64     `json:"id"`
	EnrollmentID string    `json:"enrollment_id,omitempty"`
	Assignee     string    `json:"assignee"`
	Title        string    `json:"title"`
	Priority     string    `json:"priority"`
	Status       string    `json:"status"`
	DueAt        time.Time `json:"due_at"`
	CreatedAt    time.Time `json:"created_at"`
}

// ExportAnonymousID is an anonymous id tied to the customer, with the
// traits it carried and the events still filed under it.
type ExportAnonymousID struct {
	AnonymousID string         `json:"anonymous_id"`
	Traits      map[string]any `json:"traits"`
	FirstSeenAt time.Time      `json:"first_seen_at"`
	MergedAt    *time.Time     `json:"merged_at,omitempty"`
	Events      []ExportEvent  `json:"events"`
}

// ExportSuppression is the suppression-list entry of one of the
// customer's addresses (the profile's, and every one a message went
// to), including one that only counts soft bounces so far.
type ExportSuppression struct {
	Channel      string     `json:"channel"`
	Address      string     `json:"address"`
	Reason       string     `json:"reason,omitempty"`
	SoftBounces  int        `json:"soft_bounces"`
	SuppressedAt *time.Time `json:"suppressed_at,omitempty"`
	Source       string     `json:"source,omitempty"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// CustomerExport reads everything held about the customer. A missing
// customer is an error wrapping ErrNotFound.
func (s *Store) CustomerExport(ctx context.Context, id string) (CustomerExport, error) {
	view, err := s.CustomerView(ctx, id, math.MaxInt32)
	if err != nil {
		return CustomerExport{}, err
	}
	x := CustomerExport{CustomerView: view}
	for _, part := range []struct {
		what string
		read func(context.Context, *CustomerExport, string) error
	}{
		{"record", s.exportRecord}, {"events", s.exportEvents}, {"messages", s.exportMessages},
		{"enrollment steps", s.exportSteps}, {"tasks", s.exportTasks}, {"anonymous ids", s.exportAnonymous},
		{"suppression entries", s.exportSuppressions},
	} {
		if err := part.read(ctx, &x, id); err != nil {
			return CustomerExport{}, fmt.Errorf("export customer %q: %s: %w", id, part.what, err)
		}
	}
	return x, nil
}

func (s *Store) exportRecord(ctx context.Context, x *CustomerExport, id string) error {
	err := s.pool.QueryRow(ctx, `SELECT created_at, updated_at FROM customers WHERE id = $1`, id).
		Scan(&x.Record.CreatedAt, &x.Record.UpdatedAt)
	x.Record.CreatedAt, x.Record.UpdatedAt = x.Record.CreatedAt.UTC(), x.Record.UpdatedAt.UTC()
	return err
}

// exportEvents reads the customer's events with their dispatch markers
// (event_ids, migration 00015).
func (s *Store) exportEvents(ctx context.Context, x *CustomerExport, id string) error {
	rows, _ := s.pool.Query(ctx, `SELECT e.id, e.name, e.time, e.amount::float8, e.currency, e.order_id, e.category,
			e.score, e.props, e.received_at, i.dispatched_at
		FROM events e LEFT JOIN event_ids i ON i.id = e.id
		WHERE e.customer_id = $1 ORDER BY e.time, e.id`, id)
	var err error
	x.Events, err = pgx.CollectRows(rows, pgx.RowToStructByPos[ExportEvent])
	return err
}

func (s *Store) exportMessages(ctx context.Context, x *CustomerExport, id string) error {
	rows, _ := s.pool.Query(ctx, `
		SELECT m.key, m.enrollment_id, m.playbook, m.step_id, m.channel, m.template, m.locale, m.topic, m.transactional,
			m.recipient, m.subject, m.status, m.reason, m.provider_id, m.attempts, m.created_at, m.sent_at,
			coalesce((SELECT json_agg(json_build_object('id', me.id, 'kind', me.kind, 'provider', me.provider,
					'bounce', me.bounce, 'url', me.url, 'detail', me.detail, 'at', me.at) ORDER BY me.at, me.id)
				FROM message_events me WHERE me.message_key = m.key), '[]')
		FROM messages m WHERE m.customer_id = $1 ORDER BY m.created_at, m.id`, id)
	var err error
	x.Messages, err = pgx.CollectRows(rows, pgx.RowToStructByPos[ExportMessage])
	return err
}

func (s *Store) exportSteps(ctx context.Context, x *CustomerExport, id string) error {
	rows, _ := s.pool.Query(ctx, `
		SELECT st.enrollment_id, st.step_id, st.kind, st.detail, st.branch, st.at
		FROM enrollment_steps st JOIN enrollments e ON e.id = st.enrollment_id
		WHERE e.customer_id = $1 ORDER BY st.at, st.key`, id)
	var err error
	x.EnrollmentSteps, err = pgx.CollectRows(rows, pgx.RowToStructByPos[ExportStep])
	return err
}

func (s *Store) exportTasks(ctx context.Context, x *CustomerExport, id string) error {
	rows, _ := s.pool.Query(ctx, `SELECT id, enrollment_id, assignee, title, priority, status, due_at, created_at
		FROM tasks WHERE customer_id = $1 ORDER BY created_at, id`, id)
	var err error
	x.Tasks, err = pgx.CollectRows(rows, pgx.RowToStructByPos[ExportTask])
	return err
}

func (s *Store) exportAnonymous(ctx context.Context, x *CustomerExport, id string) error {
	rows, _ := s.pool.Query(ctx, `
		SELECT a.anonymous_id, a.traits, a.first_seen_at, a.merged_at,
			coalesce((SELECT json_agg(json_build_object('id', ae.id, 'name', ae.name, 'time', ae.time,
					'amount', ae.amount, 'currency', ae.currency, 'order_id', ae.order_id, 'category', ae.category,
					'score', ae.score, 'props', ae.props, 'received_at', ae.received_at) ORDER BY ae.time, ae.id)
				FROM anonymous_events ae WHERE ae.anonymous_id = a.anonymous_id), '[]')
		FROM anonymous_ids a WHERE a.customer_id = $1 ORDER BY a.first_seen_at, a.anonymous_id`, id)
	var err error
	x.AnonymousIDs, err = pgx.CollectRows(rows, pgx.RowToStructByPos[ExportAnonymousID])
	return err
}

func (s *Store) exportSuppressions(ctx context.Context, x *CustomerExport, id string) error {
	rows, _ := s.pool.Query(ctx, `
		WITH a AS (
			SELECT 'email' AS channel, rapport_address('email', email) AS address FROM customers WHERE id = $1 AND email <> ''
			UNION SELECT 'sms', rapport_address('sms', phone) FROM customers WHERE id = $1 AND phone <> ''
			UNION SELECT channel, rapport_address(channel, recipient) FROM messages
				WHERE customer_id = $1 AND channel IN ('email', 'sms') AND recipient <> ''
		)
		SELECT s.channel, s.address, s.reason, s.soft_bounces, s.suppressed_at, s.source, s.updated_at
		FROM suppressions s JOIN a USING (channel, address) ORDER BY s.channel, s.address`, id)
	var err error
	x.AddressEntries, err = pgx.CollectRows(rows, pgx.RowToStructByPos[ExportSuppression])
	return err
}
