package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/rules"
)

// CustomerMetrics is one row of the customer_metrics view (migration
// 00003; definitions in docs/metrics.md).
type CustomerMetrics struct {
	OrderCount            int64     `json:"order_count"`
	RepeatPurchases       int64     `json:"repeat_purchases"`
	Revenue               float64   `json:"revenue"`
	AvgOrderValue         float64   `json:"avg_order_value"`
	FirstPurchaseAt       time.Time `json:"first_purchase_at,omitzero"`
	LastPurchaseAt        time.Time `json:"last_purchase_at,omitzero"`
	DaysSinceLastPurchase int64     `json:"days_since_last_purchase"`
	PurchaseGapDays       float64   `json:"purchase_gap_days"`
	UsualGapDays          float64   `json:"usual_gap_days"`
	LifetimeValue         float64   `json:"lifetime_value"`
	ChurnRisk             bool      `json:"churn_risk"`
}

// Refunds are the customer's refunds (Order Refunded; refund_count and
// refunded_amount of migration 00008). Their amount is already off the
// lifetime value; shown apart so that a value that dropped is explained.
type Refunds struct {
	Count  int64   `json:"count"`
	Amount float64 `json:"amount"`
}

// Group is an account the customer belongs to (a Segment group call),
// with the account's traits as merged from every call.
type Group struct {
	ID        string         `json:"id"`
	Traits    map[string]any `json:"traits"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// Consent is one recorded consent decision.
type Consent struct {
	Channel   string    `json:"channel"`
	Topic     string    `json:"topic"`
	Granted   bool      `json:"granted"`
	Source    string    `json:"source,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// LedgerEntry is one points movement.
type LedgerEntry struct {
	At           time.Time `json:"at"`
	Delta        int64     `json:"delta"`
	Reason       string    `json:"reason,omitempty"`
	BalanceAfter int64     `json:"balance_after"`
	EnrollmentID string    `json:"enrollment_id,omitempty"`
}

// IssuedCoupon is a coupon issued to the customer.
type IssuedCoupon struct {
	Code       string     `json:"code"`
	Kind       string     `json:"kind"`
	Value      float64    `json:"value"`
	ExpiresAt  time.Time  `json:"expires_at"`
	RedeemedAt *time.Time `json:"redeemed_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
}

// OpenTask is a hand-off task still to do.
type OpenTask struct {
	ID       int64     `json:"id"`
	Assignee string    `json:"assignee"`
	Title    string    `json:"title"`
	Priority string    `json:"priority"`
	DueAt    time.Time `json:"due_at"`
}

// Contact is one line of the two-way contact log: a message out
// (Direction "out") or a customer event in ("in").
type Contact struct {
	At        time.Time `json:"at"`
	Direction string    `json:"direction"`
	// Out: channel, template, status (sent, suppressed, failed, queued)
	// and its reason, recipient, playbook and step.
	Channel   string `json:"channel,omitempty"`
	Template  string `json:"template,omitempty"`
	Locale    string `json:"locale,omitempty"`
	Status    string `json:"status,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	Playbook  string `json:"playbook,omitempty"`
	Step      string `json:"step,omitempty"`
	// In: the event.
	Event    string  `json:"event,omitempty"`
	Amount   float64 `json:"amount,omitempty"`
	Currency string  `json:"currency,omitempty"`
	OrderID  string  `json:"order_id,omitempty"`
}

// EnrollmentSummary is one enrollment of the customer.
type EnrollmentSummary struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
	Playbook   string `json:"playbook"`
	Version    string `json:"version"`
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
	// CurrentStep is the step of the last decision the journey recorded
	// (a branch taken, a wait's outcome, a deferral; RecordStep), none
	// before its first. The step it waits at now is the workflow's
	// RapportStep search attribute and its state query.
	CurrentStep string     `json:"current_step,omitempty"`
	Holdout     bool       `json:"holdout"`
	StartedAt   time.Time  `json:"started_at"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
	// ConvertedAt and ConversionEvent: when the enrollment reached its
	// goal, and on which event (nil when it has not).
	ConvertedAt     *time.Time `json:"converted_at,omitempty"`
	ConversionEvent *string    `json:"conversion_event,omitempty"`
}

// CustomerView is everything Rapport knows about one customer, for
// `rapport customer ID`.
type CustomerView struct {
	Profile  rules.Customer  `json:"profile"`
	Metrics  CustomerMetrics `json:"metrics"`
	Refunds  Refunds         `json:"refunds"`
	Groups   []Group         `json:"groups"`
	Consents []Consent       `json:"consents"`
	// Suppressions are the customer's addresses on the suppression list,
	// with reason and date.
	Suppressions []Suppression       `json:"suppressions"`
	Ledger       []LedgerEntry       `json:"points_ledger"`
	Coupons      []IssuedCoupon      `json:"coupons"`
	OpenTasks    []OpenTask          `json:"open_tasks"`
	Contacts     []Contact           `json:"contact_log"`
	Enrollments  []EnrollmentSummary `json:"enrollments"`
}

// DefaultContactLimit is how many ledger entries and contact-log lines
// CustomerView returns when asked for 0.
const DefaultContactLimit = 50

// CustomerView reads the customer's profile (as rules see it, through the
// customer_profiles view), metrics, refunds, groups, consents, points
// ledger, coupons, open tasks, the latest limit contact-log lines
// (messages out and events in, newest first) and ledger entries, and
// every enrollment (newest first).
// A missing customer is an error wrapping ErrNotFound.
func (s *Store) CustomerView(ctx context.Context, id string, limit int) (CustomerView, error) {
	if limit <= 0 {
		limit = DefaultContactLimit
	}
	var v CustomerView
	var err error
	v.Profile, err = scanCustomer(s.pool.QueryRow(ctx, `SELECT `+customerColumns+` FROM customer_profiles WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return CustomerView{}, errUnknownCustomer(id)
	}
	if err != nil {
		return CustomerView{}, fmt.Errorf("customer view %q: profile: %w", id, err)
	}
	for _, part := range []struct {
		what string
		read func(context.Context, *CustomerView, string, int) error
	}{
		{"metrics", readMetrics(s)}, {"refunds", readRefunds(s)}, {"groups", readGroups(s)}, {"consents", readConsents(s)}, {"suppressions", readSuppressions(s)}, {"points ledger", readLedger(s)},
		{"coupons", readCoupons(s)}, {"tasks", readTasks(s)}, {"contact log", readContacts(s)},
		{"enrollments", readEnrollments(s)},
	} {
		if err := part.read(ctx, &v, id, limit); err != nil {
			return CustomerView{}, fmt.Errorf("customer view %q: %s: %w", id, part.what, err)
		}
	}
	return v, nil
}

// Metrics reads one customer's row of customer_metrics.
func (s *Store) Metrics(ctx context.Context, id string) (CustomerMetrics, error) {
	var m CustomerMetrics
	var first, last *time.Time
	err := s.pool.QueryRow(ctx, `
		SELECT order_count, repeat_purchases, revenue::float8, avg_order_value::float8, first_purchase_at, last_purchase_at,
			days_since_last_purchase, purchase_gap_days, usual_gap_days, lifetime_value::float8, churn_risk
		FROM customer_metrics WHERE customer_id = $1`, id).Scan(
		&m.OrderCount, &m.RepeatPurchases, &m.Revenue, &m.AvgOrderValue, &first, &last,
		&m.DaysSinceLastPurchase, &m.PurchaseGapDays, &m.UsualGapDays, &m.LifetimeValue, &m.ChurnRisk)
	if errors.Is(err, pgx.ErrNoRows) {
		return CustomerMetrics{}, errUnknownCustomer(id)
	}
	if err != nil {
		return CustomerMetrics{}, fmt.Errorf("metrics of customer %q: %w", id, err)
	}
	if first != nil {
		m.FirstPurchaseAt = first.UTC()
	}
	if last != nil {
		m.LastPurchaseAt = last.UTC()
	}
	return m, nil
}

type viewPart = func(context.Context, *CustomerView, string, int) error

func readMetrics(s *Store) viewPart {
	return func(ctx context.Context, v *CustomerView, id string, _ int) error {
		m, err := s.Metrics(ctx, id)
		v.Metrics = m
		return err
	}
}

func readRefunds(s *Store) viewPart {
	return func(ctx context.Context, v *CustomerView, id string, _ int) error {
		return s.pool.QueryRow(ctx, `SELECT refund_count, refunded_amount::float8 FROM customers WHERE id = $1`, id).
			Scan(&v.Refunds.Count, &v.Refunds.Amount)
	}
}

func readGroups(s *Store) viewPart {
	return func(ctx context.Context, v *CustomerView, id string, _ int) error {
		rows, _ := s.pool.Query(ctx, `SELECT group_id, traits, updated_at FROM customer_groups
			WHERE customer_id = $1 ORDER BY group_id`, id)
		var err error
		v.Groups, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Group])
		return err
	}
}

func readConsents(s *Store) viewPart {
	return func(ctx context.Context, v *CustomerView, id string, _ int) error {
		rows, _ := s.pool.Query(ctx, `SELECT channel, topic, granted, source, updated_at FROM consents
			WHERE customer_id = $1 ORDER BY channel, topic`, id)
		var err error
		v.Consents, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Consent])
		return err
	}
}

func readSuppressions(s *Store) viewPart {
	return func(ctx context.Context, v *CustomerView, id string, _ int) error {
		rows, _ := s.pool.Query(ctx, `SELECT s.channel, s.address, s.reason, s.soft_bounces, s.suppressed_at, s.source
			FROM suppressions s, customers c
			WHERE c.id = $1 AND s.suppressed_at IS NOT NULL AND (
				(s.channel = 'email' AND s.address = rapport_address('email', c.email)) OR
				(s.channel = 'sms' AND s.address = rapport_address('sms', c.phone)))
			ORDER BY s.channel`, id)
		var err error
		v.Suppressions, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Suppression])
		return err
	}
}

func readLedger(s *Store) viewPart {
	return func(ctx context.Context, v *CustomerView, id string, limit int) error {
		rows, _ := s.pool.Query(ctx, `SELECT at, delta, reason, balance_after, enrollment_id FROM points_ledger
			WHERE customer_id = $1 ORDER BY id DESC LIMIT $2`, id, limit)
		var err error
		v.Ledger, err = pgx.CollectRows(rows, pgx.RowToStructByPos[LedgerEntry])
		return err
	}
}

func readCoupons(s *Store) viewPart {
	return func(ctx context.Context, v *CustomerView, id string, _ int) error {
		rows, _ := s.pool.Query(ctx, `SELECT code, kind, value::float8, expires_at, redeemed_at, created_at FROM coupons
			WHERE customer_id = $1 ORDER BY created_at DESC, code`, id)
		var err error
		v.Coupons, err = pgx.CollectRows(rows, pgx.RowToStructByPos[IssuedCoupon])
		return err
	}
}

func readTasks(s *Store) viewPart {
	return func(ctx context.Context, v *CustomerView, id string, _ int) error {
		rows, _ := s.pool.Query(ctx, `SELECT id, assignee, title, priority, due_at FROM tasks
			WHERE customer_id = $1 AND status = 'open' ORDER BY due_at, id`, id)
		var err error
		v.OpenTasks, err = pgx.CollectRows(rows, pgx.RowToStructByPos[OpenTask])
		return err
	}
}

// readContacts merges messages (at their journey time) and events (at
// their event time), newest first.
func readContacts(s *Store) viewPart {
	return func(ctx context.Context, v *CustomerView, id string, limit int) error {
		rows, _ := s.pool.Query(ctx, `
			SELECT at, direction, channel, template, locale, status, reason, recipient, playbook, step, event, amount, currency, order_id
			FROM (
				SELECT created_at AS at, 'out' AS direction, channel, template, locale, status, reason, recipient,
					playbook, step_id AS step, '' AS event, 0::float8 AS amount, '' AS currency, '' AS order_id, id AS seq
				FROM messages WHERE customer_id = $1
				UNION ALL
				SELECT time, 'in', '', '', '', '', '', '', '', '', name, amount::float8, currency, order_id, 0
				FROM events WHERE customer_id = $1
			) log ORDER BY at DESC, seq DESC LIMIT $2`, id, limit)
		var err error
		v.Contacts, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Contact])
		return err
	}
}

func readEnrollments(s *Store) viewPart {
	return func(ctx context.Context, v *CustomerView, id string, _ int) error {
		rows, _ := s.pool.Query(ctx, `SELECT id, workflow_id, playbook, version, status, reason, current_step, holdout, started_at, ended_at,
				converted_at, conversion_event
			FROM enrollments WHERE customer_id = $1 ORDER BY started_at DESC, id`, id)
		var err error
		v.Enrollments, err = pgx.CollectRows(rows, pgx.RowToStructByPos[EnrollmentSummary])
		return err
	}
}
