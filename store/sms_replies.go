package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Sources of the consent decisions an SMS reply records.
const (
	SourceSMSStop  = "sms_stop"
	SourceSMSStart = "sms_start"
)

// CustomersByPhone returns the ids of the customers whose phone number is
// phone once spaces, dashes, dots and brackets are dropped from both
// (Twilio sends E.164, "+14155550100"; profiles may hold "+1 415-555-0100").
// Several customers may share a number (a household): a STOP is theirs
// to honour alike.
func (s *Store) CustomersByPhone(ctx context.Context, phone string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id FROM customers
		WHERE phone <> '' AND regexp_replace(phone, '[\s().-]', '', 'g') = $1
		ORDER BY id`, normalizePhone(phone))
	if err != nil {
		return nil, fmt.Errorf("customers with phone %s: %w", maskPhone(phone), err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("customers with phone %s: %w", maskPhone(phone), err)
	}
	return ids, nil
}

func normalizePhone(p string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(" \t().-", r) {
			return -1
		}
		return r
	}, p)
}

// maskPhone keeps the last two digits of a number for errors and logs.
func maskPhone(p string) string {
	if len(p) <= 2 {
		return "…"
	}
	return "…" + p[len(p)-2:]
}

// WithdrawSMS records an SMS STOP: consent withdrawn for every SMS topic
// of the customer, the '*' row and each topic row (a granted topic row
// would otherwise take precedence over '*'). changed is false when
// nothing was granted any more, so a repeated STOP, or Twilio retrying
// the same one, gets no second confirmation.
func (s *Store) WithdrawSMS(ctx context.Context, customerID string) (changed bool, err error) {
	return s.smsConsent(ctx, customerID, false, SourceSMSStop, `
		UPDATE consents SET granted = false, source = $2, updated_at = now()
		WHERE customer_id = $1 AND channel = 'sms' AND topic <> '*' AND granted`)
}

// RegrantSMS records an SMS START: consent granted again for every SMS
// topic, the '*' row and the topic rows a STOP withdrew; topic rows
// withdrawn otherwise (an unsubscribe link for one topic) stay withdrawn.
func (s *Store) RegrantSMS(ctx context.Context, customerID string) (changed bool, err error) {
	return s.smsConsent(ctx, customerID, true, SourceSMSStart, `
		UPDATE consents SET granted = true, source = $2, updated_at = now()
		WHERE customer_id = $1 AND channel = 'sms' AND topic <> '*' AND NOT granted AND source = '`+SourceSMSStop+`'`)
}

// smsConsent sets the '*' row to granted and runs topics, in one
// transaction; changed says whether any row changed.
func (s *Store) smsConsent(ctx context.Context, customerID string, granted bool, source, topics string) (bool, error) {
	var changed bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		all, err := tx.Exec(ctx, `
			INSERT INTO consents AS c (customer_id, channel, topic, granted, source)
			VALUES ($1, 'sms', '*', $2, $3)
			ON CONFLICT (customer_id, channel, topic) DO UPDATE
				SET granted = excluded.granted, source = excluded.source, updated_at = now()
				WHERE c.granted IS DISTINCT FROM excluded.granted`, customerID, granted, source)
		if err != nil {
			return err
		}
		some, err := tx.Exec(ctx, topics, customerID, source)
		if err != nil {
			return err
		}
		changed = all.RowsAffected()+some.RowsAffected() > 0
		return nil
	})
	if isForeignKeyViolation(err) {
		return false, errUnknownCustomer(customerID)
	}
	if err != nil {
		return false, fmt.Errorf("sms consent of customer %q (%s): %w", customerID, source, err)
	}
	return changed, nil
}
