package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/activities"
)

// EnvErasureSecret names the erasure secrets: one or more, comma-
// separated, the first used for new erasures and all of them checked, so
// that the secret can rotate without forgetting who was forgotten.
const EnvErasureSecret = "RAPPORT_ERASURE_SECRET"

// minErasureSecret is the shortest secret accepted: the keyed hash is only
// as strong as its key, and an address is easy to guess.
const minErasureSecret = 16

// ErrNoErasureSecret is an erasure asked of a store without
// RAPPORT_ERASURE_SECRET: without a key the addresses could not be kept
// as hashes, and a forgotten customer could be contacted again.
var ErrNoErasureSecret = errors.New(EnvErasureSecret + " is not set: erasure keeps the addresses only as keyed hashes, and needs the key")

// ErasureSecretsFromEnv reads RAPPORT_ERASURE_SECRET. Unset is no
// secrets (erasure refused, nothing checked); a secret shorter than 16
// bytes is an error naming the variable and the position, never the
// value.
func ErasureSecretsFromEnv() ([][]byte, error) {
	v := os.Getenv(EnvErasureSecret)
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var out [][]byte
	for i, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if len(s) < minErasureSecret {
			return nil, fmt.Errorf("%s: secret %d is shorter than %d bytes (generate one with: openssl rand -hex 32)", EnvErasureSecret, i+1, minErasureSecret)
		}
		out = append(out, []byte(s))
	}
	return out, nil
}

// erasureKeyID names a secret without revealing it, so that the hashes
// made with each one can be told apart (and counted before a secret is
// retired).
func erasureKeyID(secret []byte) string {
	h := sha256.Sum256(append([]byte("rapport erasure key id\x00"), secret...))
	return hex.EncodeToString(h[:4])
}

func keyedHash(secret []byte, parts ...string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(m.Sum(nil))
}

// ErasedAddress is the form an erased customer's address keeps on the
// suppression list: "erased:<key id>:<HMAC-SHA256 of channel and the
// normalized address>". Without the secret it names nobody; with it, an
// address can be checked against it but not read back.
func ErasedAddress(secret []byte, channel, address string) string {
	return "erased:" + erasureKeyID(secret) + ":" + keyedHash(secret, channel, activities.NormalAddress(channel, address))
}

// CustomerHash is the form an erased customer's id keeps in the audit
// log (erasures.customer_hash): "<key id>:<HMAC-SHA256>", so that "was
// customer X erased, and when?" can be answered by whoever holds the
// secret, and by nobody else.
func CustomerHash(secret []byte, customerID string) string {
	return erasureKeyID(secret) + ":" + keyedHash(secret, "customer", customerID)
}

// erasedForms are the suppression-list forms of an address under every
// configured secret; none for a channel without addresses (webhook).
func (s *Store) erasedForms(channel, address string) []string {
	if (channel != "email" && channel != "sms") || activities.NormalAddress(channel, address) == "" {
		return nil
	}
	out := make([]string, 0, len(s.cfg.ErasureSecrets))
	for _, sec := range s.cfg.ErasureSecrets {
		out = append(out, ErasedAddress(sec, channel, address))
	}
	return out
}

// ForgetRequest asks to erase one customer.
type ForgetRequest struct {
	CustomerID string
	// RequestedBy says who asked, for the audit row: "key:<API key id>",
	// "cli:<user>". Not personal data of the customer.
	RequestedBy string
}

// JourneyRef is an enrollment still active, whose workflow must be ended.
type JourneyRef struct {
	EnrollmentID string `json:"enrollment_id"`
	WorkflowID   string `json:"workflow_id"`
	Playbook     string `json:"playbook"`
}

// ForgetResult is what Forget did.
type ForgetResult struct {
	// CustomerHash is the audit log's name for the customer.
	CustomerHash string `json:"customer_hash"`
	// Found is false when nothing was held (never known, or erased
	// before): Forget then changed nothing but the audit log.
	Found bool `json:"found"`
	// Deleted counts the rows each table lost.
	Deleted map[string]int64 `json:"deleted"`
	// Addresses is how many addresses are kept, as keyed hashes, on the
	// suppression list.
	Addresses int `json:"addresses_suppressed"`
	// Active are the enrollments that were still active (their rows are
	// deleted with the rest; their workflows must be ended).
	Active []JourneyRef `json:"-"`
	At     time.Time    `json:"erased_at"`
}

// ActiveJourneys lists the customer's active enrollments, whose
// workflows an erasure ends before it deletes the rows.
func (s *Store) ActiveJourneys(ctx context.Context, customerID string) ([]JourneyRef, error) {
	return activeJourneys(ctx, s.pool, customerID)
}

// querier is what activeJourneys reads through: the pool, or Forget's
// transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// forgetDeletes are the statements that delete a customer's rows, in an
// order that deletes children before their parents, each counting what
// it deleted. The customers row goes last; its ON DELETE CASCADE then
// also takes rows of tables added later that reference it.
var forgetDeletes = []struct{ table, sql string }{
	{"message_events", `DELETE FROM message_events WHERE message_key IN (SELECT key FROM messages WHERE customer_id = $1)`},
	{"messages", `DELETE FROM messages WHERE customer_id = $1`},
	{"enrollment_steps", `DELETE FROM enrollment_steps WHERE enrollment_id IN (SELECT id FROM enrollments WHERE customer_id = $1)`},
	{"enrollments", `DELETE FROM enrollments WHERE customer_id = $1`},
	{"journey_starts", `DELETE FROM journey_starts WHERE customer_id = $1`},
	{"events", `DELETE FROM events WHERE customer_id = $1`},
	{"event_ids", `DELETE FROM event_ids WHERE customer_id = $1`},
	{"anonymous_events", `DELETE FROM anonymous_events WHERE anonymous_id IN (SELECT anonymous_id FROM anonymous_ids WHERE customer_id = $1)`},
	{"anonymous_ids", `DELETE FROM anonymous_ids WHERE customer_id = $1`},
	{"customer_groups", `DELETE FROM customer_groups WHERE customer_id = $1`},
	{"consents", `DELETE FROM consents WHERE customer_id = $1`},
	{"points_ledger", `DELETE FROM points_ledger WHERE customer_id = $1`},
	{"coupons", `DELETE FROM coupons WHERE customer_id = $1`},
	{"tasks", `DELETE FROM tasks WHERE customer_id = $1`},
	// The customer's data key (migration 00013): with it gone, their
	// payloads in Temporal histories cannot be decrypted. The erasure also
	// deletes it through the payload codec's key store, which drops the
	// cached copy of the process that erases.
	{"customer_keys", `DELETE FROM customer_keys WHERE customer_id = $1`},
}

// Forget erases a customer in one transaction, with the customer row
// locked first (so a send in flight either finishes before, and its row
// is deleted, or finds no customer after):
//
//   - every address the customer had — the profile's email and phone
//     and each address a message went to — is normalized and kept on the
//     suppression list only as ErasedAddress, under the first secret;
//     their rows in the clear (bounces, complaints) are deleted;
//   - every row about the customer is deleted: messages and their status
//     history, enrollments and their steps, events, anonymous ids tied to
//     the customer and their events, groups, consents, points, coupons,
//     tasks, and the customer row (whose cascade takes anything added
//     later);
//   - one audit row (erasures) records CustomerHash, who asked, whether
//     the customer was found and the counts — nothing personal.
//
// Forget is idempotent: a second call finds nothing, deletes nothing,
// and records one more audit row (found false). It needs a secret
// (ErrNoErasureSecret). Ending the customer's journeys in Temporal and
// deleting their data key are the caller's (package erasure): Active
// lists the enrollments that were still active.
func (s *Store) Forget(ctx context.Context, r ForgetRequest) (ForgetResult, error) {
	if len(s.cfg.ErasureSecrets) == 0 {
		return ForgetResult{}, ErrNoErasureSecret
	}
	if r.CustomerID == "" {
		return ForgetResult{}, errors.New("forget: customer id is empty")
	}
	secret := s.cfg.ErasureSecrets[0]
	res := ForgetResult{CustomerHash: CustomerHash(secret, r.CustomerID), Deleted: map[string]int64{}}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		res.Deleted = map[string]int64{}
		res.Active, res.Addresses = nil, 0
		var email, phone string
		err := tx.QueryRow(ctx, `SELECT email, phone FROM customers WHERE id = $1 FOR UPDATE`, r.CustomerID).Scan(&email, &phone)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			res.Found = false
		case err != nil:
			return fmt.Errorf("lock customer: %w", err)
		default:
			res.Found = true
			if err := s.forgetRows(ctx, tx, r.CustomerID, email, phone, secret, &res); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `
			INSERT INTO erasures (customer_hash, requested_by, found, deleted, addresses) VALUES ($1, $2, $3, $4, $5)
			RETURNING erased_at`, res.CustomerHash, r.RequestedBy, res.Found, res.Deleted, res.Addresses).Scan(&res.At)
	})
	if err != nil {
		return ForgetResult{}, fmt.Errorf("forget customer %s: %w", res.CustomerHash, err)
	}
	res.At = res.At.UTC()
	return res, nil
}

// forgetRows is Forget for a customer that exists, inside its
// transaction.
func (s *Store) forgetRows(ctx context.Context, tx pgx.Tx, id, email, phone string, secret []byte, res *ForgetResult) error {
	rows, _ := tx.Query(ctx, `
		SELECT 'email', $2::text WHERE $2 <> ''
		UNION SELECT 'sms', $3::text WHERE $3 <> ''
		UNION SELECT channel, recipient FROM messages
			WHERE customer_id = $1 AND channel IN ('email', 'sms') AND recipient <> ''`, id, email, phone)
	type address struct{ channel, address string }
	addrs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (address, error) {
		var a address
		err := r.Scan(&a.channel, &a.address)
		return a, err
	})
	if err != nil {
		return fmt.Errorf("addresses: %w", err)
	}
	seen := map[address]bool{}
	var channels, plain, hashed []string
	for _, a := range addrs {
		n := address{a.channel, activities.NormalAddress(a.channel, a.address)}
		if n.address == "" || seen[n] {
			continue
		}
		seen[n] = true
		channels = append(channels, n.channel)
		plain = append(plain, n.address)
		hashed = append(hashed, ErasedAddress(secret, n.channel, n.address))
	}
	if res.Active, err = activeJourneys(ctx, tx, id); err != nil {
		return err
	}
	for _, d := range forgetDeletes {
		tag, err := tx.Exec(ctx, d.sql, id)
		if err != nil {
			return fmt.Errorf("delete %s: %w", d.table, err)
		}
		res.Deleted[d.table] = tag.RowsAffected()
	}
	tag, err := tx.Exec(ctx, `DELETE FROM suppressions s USING unnest($1::text[], $2::text[]) AS a(channel, address)
		WHERE s.channel = a.channel AND s.address = a.address`, channels, plain)
	if err != nil {
		return fmt.Errorf("delete suppressions in the clear: %w", err)
	}
	res.Deleted["suppressions"] = tag.RowsAffected()
	if tag, err = tx.Exec(ctx, `DELETE FROM customers WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete customer: %w", err)
	}
	res.Deleted["customers"] = tag.RowsAffected()
	_, err = tx.Exec(ctx, `
		INSERT INTO suppressions (channel, address, reason, suppressed_at, source)
		SELECT channel, address, 'erased', now(), 'erasure' FROM unnest($1::text[], $2::text[]) AS a(channel, address)
		ON CONFLICT (channel, address) DO NOTHING`, channels, hashed)
	if err != nil {
		return fmt.Errorf("suppress the erased addresses: %w", err)
	}
	res.Addresses = len(hashed)
	return nil
}

func activeJourneys(ctx context.Context, q querier, id string) ([]JourneyRef, error) {
	rows, _ := q.Query(ctx, `SELECT id, workflow_id, playbook FROM enrollments
		WHERE customer_id = $1 AND status = 'active' ORDER BY started_at, id`, id)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[JourneyRef])
	if err != nil {
		return nil, fmt.Errorf("active journeys: %w", err)
	}
	return out, nil
}

// suppressReturningAddresses is Ingest's check of the addresses a call
// gives a customer against the erased ones: an address that an erased
// customer had is suppressed in the clear, with the reason erased, so
// that a customer created again by a later event (same or another id) is
// never contacted there, and `rapport customer` shows why. The send path
// checks the hashes as well (DecideSend), for addresses that arrive any
// other way.
func (s *Store) suppressReturningAddresses(ctx context.Context, tx pgx.Tx, p *ProfileChange) error {
	if p == nil || len(s.cfg.ErasureSecrets) == 0 {
		return nil
	}
	for _, a := range [][2]string{{"email", p.Set.Email}, {"sms", p.Set.Phone}} {
		forms := s.erasedForms(a[0], a[1])
		if len(forms) == 0 {
			continue
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO suppressions AS s (channel, address, reason, suppressed_at, source)
			SELECT $1, rapport_address($1, $2), 'erased', now(), 'erasure'
			WHERE EXISTS (SELECT 1 FROM suppressions WHERE channel = $1 AND address = ANY($3) AND suppressed_at IS NOT NULL)
			ON CONFLICT (channel, address) DO UPDATE SET reason = 'erased', suppressed_at = coalesce(s.suppressed_at, now()),
				source = 'erasure', updated_at = now()
			WHERE s.reason <> 'erased'`, a[0], a[1], forms)
		if err != nil {
			return fmt.Errorf("check the %s address against the erased ones: %w", a[0], err)
		}
	}
	return nil
}

// ErasureReady says whether Forget can run: ErrNoErasureSecret without a
// secret. An erasure checks it before it ends any journey.
func (s *Store) ErasureReady() error {
	if len(s.cfg.ErasureSecrets) == 0 {
		return ErrNoErasureSecret
	}
	return nil
}
