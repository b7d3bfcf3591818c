package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/unsubscribe"
)

// customerColumns is the select list scanCustomer reads.
const customerColumns = `id, email, phone, name, locale, timezone, tier, stage, points,
	lifetime_value, order_count, avg_order_value, purchase_gap_days, churn_risk,
	last_purchase_at, birthday, signup_at, tags, attrs`

func scanCustomer(row pgx.Row) (rules.Customer, error) {
	var c rules.Customer
	var last, birthday, signup *time.Time
	err := row.Scan(&c.ID, &c.Email, &c.Phone, &c.Name, &c.Locale, &c.Timezone, &c.Tier, &c.Stage,
		&c.Points, &c.LifetimeValue, &c.OrderCount, &c.AvgOrderValue, &c.PurchaseGap, &c.ChurnRisk,
		&last, &birthday, &signup, &c.Tags, &c.Attrs)
	if err != nil {
		return rules.Customer{}, err
	}
	for _, p := range []struct {
		src *time.Time
		dst *time.Time
	}{{last, &c.LastPurchaseAt}, {birthday, &c.Birthday}, {signup, &c.SignupAt}} {
		if p.src != nil {
			*p.dst = p.src.UTC()
		}
	}
	return c, nil
}

// Customer reads one customer profile. A missing customer is a permanent
// error (wrapping activities.ErrPermanent).
func (s *Store) Customer(ctx context.Context, id string) (rules.Customer, error) {
	c, err := scanCustomer(s.pool.QueryRow(ctx, `SELECT `+customerColumns+` FROM customer_profiles WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return rules.Customer{}, errUnknownCustomer(id)
	}
	if err != nil {
		return rules.Customer{}, fmt.Errorf("load customer %q: %w", id, err)
	}
	return c, nil
}

// LoadCustomer implements activities.CustomerLoader.
func (s *Store) LoadCustomer(ctx context.Context, id string) (rules.Customer, error) {
	return s.Customer(ctx, id)
}

// UpsertCustomer creates the customer or merges traits into it. Merging
// reads zero values as "not provided": a non-empty string, non-zero number
// or time, or true churn_risk replaces the stored value; tags are added to
// the stored ones; attrs are merged key by key. Points are never set here:
// the balance only moves through the ledger (AdjustPoints). To clear a
// field, use UpdateProfile.
func (s *Store) UpsertCustomer(ctx context.Context, c rules.Customer) error {
	return upsertCustomer(ctx, s.pool, c)
}

// upsertCustomer is UpsertCustomer on q, so that Ingest can run it inside
// its transaction.
func upsertCustomer(ctx context.Context, q execer, c rules.Customer) error {
	if c.ID == "" {
		return permanent("customer has no id")
	}
	attrs := c.Attrs
	if attrs == nil {
		attrs = map[string]any{}
	}
	tags := c.Tags
	if tags == nil {
		tags = []string{}
	}
	_, err := q.Exec(ctx, `
		INSERT INTO customers AS c (id, email, phone, name, locale, timezone, tier, stage,
			lifetime_value, order_count, avg_order_value, purchase_gap_days, churn_risk,
			last_purchase_at, birthday, signup_at, tags, attrs)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
		ON CONFLICT (id) DO UPDATE SET
			email             = COALESCE(NULLIF(excluded.email, ''), c.email),
			phone             = COALESCE(NULLIF(excluded.phone, ''), c.phone),
			name              = COALESCE(NULLIF(excluded.name, ''), c.name),
			locale            = COALESCE(NULLIF(excluded.locale, ''), c.locale),
			timezone          = COALESCE(NULLIF(excluded.timezone, ''), c.timezone),
			tier              = COALESCE(NULLIF(excluded.tier, ''), c.tier),
			stage             = COALESCE(NULLIF(excluded.stage, ''), c.stage),
			lifetime_value    = COALESCE(NULLIF(excluded.lifetime_value, 0), c.lifetime_value),
			order_count       = COALESCE(NULLIF(excluded.order_count, 0), c.order_count),
			avg_order_value   = COALESCE(NULLIF(excluded.avg_order_value, 0), c.avg_order_value),
			purchase_gap_days = COALESCE(NULLIF(excluded.purchase_gap_days, 0), c.purchase_gap_days),
			churn_risk        = excluded.churn_risk OR c.churn_risk,
			last_purchase_at  = COALESCE(excluded.last_purchase_at, c.last_purchase_at),
			birthday          = COALESCE(excluded.birthday, c.birthday),
			signup_at         = COALESCE(excluded.signup_at, c.signup_at),
			tags              = ARRAY(SELECT DISTINCT t FROM unnest(c.tags || excluded.tags) AS t ORDER BY t),
			attrs             = c.attrs || excluded.attrs,
			updated_at        = now()`,
		c.ID, c.Email, c.Phone, c.Name, c.Locale, c.Timezone, c.Tier, c.Stage,
		c.LifetimeValue, c.OrderCount, c.AvgOrderValue, c.PurchaseGap, c.ChurnRisk,
		nullTime(c.LastPurchaseAt), nullTime(c.Birthday), nullTime(c.SignupAt), tags, attrs)
	if err != nil {
		return fmt.Errorf("upsert customer %q: %w", c.ID, err)
	}
	return nil
}

// InsertEvent stores a customer event once: ev.ID (the client's
// messageId) is the primary key, and inserted is false for a duplicate.
// An unknown customer is created bare, so events that arrive before the
// profile are not lost. A purchase event also updates the purchase metrics
// in the same transaction (applyPurchase), so they count each order
// exactly once.
func (s *Store) InsertEvent(ctx context.Context, customerID string, ev rules.Event) (bool, error) {
	if ev.ID == "" {
		return false, permanent("event %q for customer %q has no id", ev.Name, customerID)
	}
	if customerID == "" || ev.Name == "" {
		return false, permanent("event %q: customer id and event name are required", ev.ID)
	}
	ev.Time = orNow(ev.Time)
	inserted := false
	err := s.withEventMonths(ctx, []time.Time{ev.Time}, func() error {
		return s.inTx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO customers (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, customerID); err != nil {
				return err
			}
			var err error
			inserted, err = s.insertEvent(ctx, tx, customerID, ev, activities.DefaultCommerce().Effect(ev.Name))
			return err
		})
	})
	if err != nil {
		return false, fmt.Errorf("insert event %q of customer %q: %w", ev.ID, customerID, err)
	}
	return inserted, nil
}

// insertEvent stores ev for an existing customer inside tx and, when it
// is new, applies the metrics its effect implies (activities.Purchase or
// activities.Refund; "" for none). The id goes into event_ids, whose key
// makes a re-sent event a no-op whatever month it is for; the event into
// the partition of its month.
func (s *Store) insertEvent(ctx context.Context, tx pgx.Tx, customerID string, ev rules.Event, effect string) (bool, error) {
	props := ev.Props
	if props == nil {
		props = map[string]any{}
	}
	at := orNow(ev.Time)
	if err := s.ensureEventMonth(ctx, tx, at); err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, `
		WITH id AS (
			INSERT INTO event_ids (id, customer_id, time) VALUES ($1, $2, $4)
			ON CONFLICT (id) DO NOTHING RETURNING id
		)
		INSERT INTO events (id, customer_id, name, time, amount, currency, order_id, category, score, props)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM id`,
		ev.ID, customerID, ev.Name, at, ev.Amount, ev.Currency, ev.OrderID, ev.Category, ev.Score, props)
	if err != nil || tag.RowsAffected() == 0 {
		return false, err
	}
	return true, applyEffect(ctx, tx, customerID, effect, ev.Amount, at)
}

// applyEffect updates the metrics of a purchase or a refund.
func applyEffect(ctx context.Context, tx pgx.Tx, customerID, effect string, amount float64, at time.Time) error {
	switch effect {
	case activities.Purchase:
		return applyPurchase(ctx, tx, customerID, amount, at)
	case activities.Refund:
		return applyRefund(ctx, tx, customerID, amount)
	}
	return nil
}

// applyRefund takes a refunded amount off the revenue (never below zero)
// and counts it; the order count stays, since the order happened.
func applyRefund(ctx context.Context, tx pgx.Tx, customerID string, amount float64) error {
	_, err := tx.Exec(ctx, `
		UPDATE customers SET
			lifetime_value  = greatest(lifetime_value - $2::numeric, 0),
			avg_order_value = CASE WHEN order_count > 0
				THEN round(greatest(lifetime_value - $2::numeric, 0) / order_count, 2) ELSE 0 END,
			refund_count    = refund_count + 1,
			refunded_amount = refunded_amount + $2::numeric,
			updated_at      = now()
		WHERE id = $1`, customerID, amount)
	return err
}

// applyPurchase updates the purchase metrics of a customer for one
// purchase, with the row locked: activities.ApplyPurchase computes them,
// the formulas the in-memory activities (and so the simulator) use too.
func applyPurchase(ctx context.Context, tx pgx.Tx, customerID string, amount float64, at time.Time) error {
	var c rules.Customer
	var first, last *time.Time
	err := tx.QueryRow(ctx, `
		SELECT lifetime_value, order_count, avg_order_value, purchase_gap_days, last_purchase_at, first_purchase_at
		FROM customers WHERE id = $1 FOR UPDATE`, customerID).
		Scan(&c.LifetimeValue, &c.OrderCount, &c.AvgOrderValue, &c.PurchaseGap, &last, &first)
	if err != nil {
		return err
	}
	var firstAt time.Time
	if last != nil {
		c.LastPurchaseAt = *last
	}
	if first != nil {
		firstAt = *first
	}
	activities.ApplyPurchase(&c, &firstAt, amount, at)
	_, err = tx.Exec(ctx, `
		UPDATE customers SET order_count = $2, lifetime_value = $3, avg_order_value = $4,
			first_purchase_at = $5, last_purchase_at = $6, purchase_gap_days = $7, updated_at = now()
		WHERE id = $1`, customerID, c.OrderCount, c.LifetimeValue, c.AvgOrderValue, firstAt, c.LastPurchaseAt, c.PurchaseGap)
	return err
}

// knownChannels are the channels consent can be recorded for.
var knownChannels = map[string]bool{"email": true, "sms": true, "webhook": true}

// SetConsent records a customer's decision for a channel and topic
// (unsubscribe.AllTopics for every topic). Recording the same decision
// again changes nothing, so the first source and time are kept.
func (s *Store) SetConsent(ctx context.Context, customerID, channel, topic string, granted bool, source string) error {
	if !knownChannels[channel] {
		return permanent("consent for customer %q: unknown channel %q", customerID, channel)
	}
	if topic == "" {
		return permanent("consent for customer %q on %s: topic is required", customerID, channel)
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO consents AS c (customer_id, channel, topic, granted, source)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (customer_id, channel, topic) DO UPDATE
			SET granted = excluded.granted, source = excluded.source, updated_at = now()
			WHERE c.granted IS DISTINCT FROM excluded.granted`,
		customerID, channel, topic, granted, source)
	if isForeignKeyViolation(err) {
		return errUnknownCustomer(customerID)
	}
	if err != nil {
		return fmt.Errorf("set consent of customer %q on %s/%s: %w", customerID, channel, topic, err)
	}
	return nil
}

// Unsubscribe applies a verified unsubscribe link: consent withdrawn for
// the claims' channel and topic. Implements unsubscribe.Applier.
func (s *Store) Unsubscribe(ctx context.Context, c unsubscribe.Claims) error {
	return s.SetConsent(ctx, c.Customer, c.Channel, c.Topic, false, "unsubscribe_link")
}

var _ unsubscribe.Applier = (*Store)(nil)

// UpdateProfile applies a playbook's update step. Setting a value, adding
// and removing tags are idempotent by nature, so a retry changes nothing
// further; the whole update is one statement, so it applies atomically.
func (s *Store) UpdateProfile(ctx context.Context, u activities.ProfileUpdate) error {
	var sets []string
	args := []any{u.CustomerID}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	attrs := map[string]any{}
	keys := make([]string, 0, len(u.Set))
	for k := range u.Set {
		keys = append(keys, k)
	}
	sort.Strings(keys) // stable SQL text, so the statement cache hits
	for _, k := range keys {
		v := u.Set[k]
		if name, ok := strings.CutPrefix(k, "attrs."); ok && name != "" {
			attrs[name] = v
			continue
		}
		// The column is named as the field; the list is engine's.
		if !slices.Contains(engine.ProfileFields, k) {
			return permanent("update of customer %q: field %q cannot be set (use %s or attrs.%s)", u.CustomerID, k, strings.Join(engine.ProfileFields, ", "), k)
		}
		sets = append(sets, k+" = "+arg(rules.Format(v)))
	}
	if u.Tier != "" {
		sets = append(sets, "tier = "+arg(u.Tier))
	}
	if u.Stage != "" {
		sets = append(sets, "stage = "+arg(u.Stage))
	}
	if len(attrs) > 0 {
		sets = append(sets, "attrs = attrs || "+arg(attrs))
	}
	if len(u.AddTags) > 0 || len(u.RemoveTags) > 0 {
		add, remove := u.AddTags, u.RemoveTags
		if add == nil {
			add = []string{}
		}
		if remove == nil {
			remove = []string{}
		}
		// Keep the existing order, append new tags, drop removed ones.
		sets = append(sets, `tags = ARRAY(
			SELECT t FROM unnest(tags || `+arg(add)+`::text[]) WITH ORDINALITY AS x(t, i)
			WHERE t <> ALL(`+arg(remove)+`::text[]) GROUP BY t ORDER BY min(i))`)
	}
	if len(sets) == 0 {
		return nil
	}
	tag, err := s.pool.Exec(ctx, `UPDATE customers SET `+strings.Join(sets, ", ")+`, updated_at = now() WHERE id = $1`, args...)
	if err != nil {
		return fmt.Errorf("update customer %q (key %s): %w", u.CustomerID, u.Key, err)
	}
	if tag.RowsAffected() == 0 {
		return errUnknownCustomer(u.CustomerID)
	}
	return nil
}
