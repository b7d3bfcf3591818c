package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rapport-crm/rapport/rules"
)

// Ingestion is one call of the event API (identify, track, page, screen,
// group or alias), which Ingest writes in one transaction: a call is
// stored whole or not at all.
type Ingestion struct {
	// CustomerID is the userId; "" for an anonymous call.
	CustomerID string
	// AnonymousID is the anonymousId (or an alias's previousId). With a
	// CustomerID it ties the two; alone, the call counts for the customer
	// it was tied to before, else for the anonymous visitor.
	AnonymousID string
	// Profile is the change an identify's traits or a call's
	// context.traits make; nil for none.
	Profile *ProfileChange
	// AnonymousTraits are the traits kept for an anonymous visitor.
	AnonymousTraits map[string]any
	// Event is the event a track, page or screen stores; nil for none.
	Event *rules.Event
	// Effect is activities.Purchase, activities.Refund or "".
	Effect string
	// GroupID and GroupTraits are a group call's account.
	GroupID     string
	GroupTraits map[string]any
	// ReadRunning asks for the playbook versions the customer the call
	// counts for is actively enrolled in (IngestResult.Running), read in
	// the call's transaction together with its first statements: the
	// event API dispatches the event to them, and saves the round trip
	// of RunningVersions.
	ReadRunning bool
}

// ProfileChange is what a call changes in a customer profile.
type ProfileChange struct {
	// Set merges as UpsertCustomer does (its ID is filled in).
	Set rules.Customer
	// Clear empties core fields by name and attributes as attrs.<name>.
	Clear []string
	// Fill sets Locale, Timezone and SignupAt only where the stored
	// record has none (the device context and the first call's time).
	Fill rules.Customer
}

// IngestResult says what Ingest did.
type IngestResult struct {
	// CustomerID is who the call counted for; "" for an anonymous
	// visitor not tied to a customer yet (nothing to dispatch).
	CustomerID string
	// Inserted is true when the event is new.
	Inserted bool
	// Dispatched is true when the event was stored before (Inserted is
	// false) and its dispatch has been recorded (MarkDispatched): a
	// repeated call has nothing left to do. It is read in the call's
	// transaction, with the check that the stored event is the caller's.
	Dispatched bool
	// Running are the customer's active playbook versions, as
	// RunningVersions lists them, when ReadRunning asked; nil otherwise.
	Running []RunningVersion
}

// errTiedMeanwhile: an anonymous visitor read as untied was tied by a
// transaction that committed while this one waited for the visitor's row.
// Ingest writes the call again, which then counts for the customer. Going
// on in the same transaction would lock the customer's row while holding
// the visitor's, the reverse of an identify's order (customer, then
// visitor), and two such calls could deadlock.
var errTiedMeanwhile = errors.New("the anonymous visitor was tied to a customer meanwhile")

// ErrMessageIDReused is a messageId already stored for someone else's
// event: the call is refused and changes nothing.
var ErrMessageIDReused = errors.New("messageId is already used by an event of another user")

// IsInputError reports whether err is PostgreSQL refusing a value (data
// exception, class 22, or integrity violation, class 23): the same call
// would fail again, so it is the caller's error, not the server's.
func IsInputError(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (strings.HasPrefix(pg.Code, "22") || strings.HasPrefix(pg.Code, "23"))
}

// Ingest writes one call atomically. An event's messageId already used by
// another customer (or anonymous visitor) fails with ErrMessageIDReused
// and writes nothing.
func (s *Store) Ingest(ctx context.Context, in Ingestion) (IngestResult, error) {
	var months []time.Time
	if in.Event != nil {
		ev := *in.Event
		ev.Time = orNow(ev.Time) // the same time if the call runs again
		in.Event = &ev
		months = []time.Time{ev.Time}
	}
	var res IngestResult
	write := func() error {
		return s.inTx(ctx, func(tx pgx.Tx) error {
			var err error
			if res, err = s.ingest(ctx, tx, in); err != nil || res.CustomerID == "" {
				return err
			}
			return s.suppressReturningAddresses(ctx, tx, in.Profile)
		})
	}
	err := s.withEventMonths(ctx, months, write)
	if errors.Is(err, errTiedMeanwhile) {
		// Again, now that the tie is committed: the visitor is read as
		// tied, without holding the visitor's row (keepVisitor).
		err = s.withEventMonths(ctx, months, write)
	}
	if err != nil {
		return IngestResult{}, fmt.Errorf("ingest call of %q/%q: %w", in.CustomerID, in.AnonymousID, err)
	}
	return res, nil
}

func (s *Store) ingest(ctx context.Context, tx pgx.Tx, in Ingestion) (IngestResult, error) {
	who := in.CustomerID
	if who == "" && in.AnonymousID == "" {
		return IngestResult{}, permanent("ingest: a call needs a customer id or an anonymous id")
	}
	if who == "" {
		// A visitor tied before stays with its customer: no lock needed.
		err := tx.QueryRow(ctx, `SELECT COALESCE(customer_id, '') FROM anonymous_ids WHERE anonymous_id = $1`, in.AnonymousID).Scan(&who)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return IngestResult{}, err
		}
	}
	if who == "" {
		tied, err := keepVisitor(ctx, tx, in.AnonymousID, in.AnonymousTraits)
		if err != nil {
			return IngestResult{}, err
		}
		if tied != "" {
			return IngestResult{}, errTiedMeanwhile
		}
	}
	if who == "" {
		if in.Event != nil {
			if _, err := checkOwner(ctx, tx, in.Event.ID, who, in.AnonymousID); err != nil {
				return IngestResult{}, err
			}
		}
		return ingestAnonymous(ctx, tx, in)
	}
	res := IngestResult{CustomerID: who}
	var running *[]RunningVersion
	if in.ReadRunning {
		running = &res.Running
	}
	if err := ownerAndCustomer(ctx, tx, in.Event, who, in.AnonymousID, running); err != nil {
		return IngestResult{}, err
	}
	if err := s.ingestCustomer(ctx, tx, who, in); err != nil {
		return IngestResult{}, err
	}
	if in.Event == nil {
		return res, nil
	}
	var err error
	if res.Inserted, err = s.insertEvent(ctx, tx, who, *in.Event, in.Effect); err != nil || res.Inserted {
		return res, err
	}
	// Stored before: by this customer (a retry), or by a call racing this
	// one for the ID since the owner check, whose event it is not ours to
	// dispatch or mark.
	res.Dispatched, err = checkOwner(ctx, tx, in.Event.ID, who, in.AnonymousID)
	return res, err
}

// ownerSQL finds who an event ID is stored for, customer or anonymous
// visitor, and whether a customer's event has been dispatched.
const ownerSQL = `
	SELECT customer_id, '', dispatched_at IS NOT NULL FROM event_ids WHERE id = $1
	UNION ALL SELECT '', anonymous_id, false FROM anonymous_events WHERE id = $1`

// checkOwner refuses an event ID stored for someone else; for one stored
// for the caller it says whether its dispatch has been recorded.
func checkOwner(ctx context.Context, tx pgx.Tx, id, customerID, anonymousID string) (dispatched bool, err error) {
	var owner, anon string
	err = tx.QueryRow(ctx, ownerSQL, id).Scan(&owner, &anon, &dispatched)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return dispatched, refuseOwner(owner, anon, customerID, anonymousID)
}

func refuseOwner(owner, anon, customerID, anonymousID string) error {
	if owner != "" && owner != customerID || anon != "" && anon != anonymousID {
		return ErrMessageIDReused
	}
	return nil
}

// ownerAndCustomer checks the owner of ev's ID (when there is an event),
// creates customer who's row if missing and, when running is not nil,
// reads the customer's running versions into it, in one round trip: none
// depends on another, and a refusal rolls the transaction back, the row
// with it.
func ownerAndCustomer(ctx context.Context, tx pgx.Tx, ev *rules.Event, who, anonymousID string, running *[]RunningVersion) error {
	b := &pgx.Batch{}
	var owner, anon string
	var dispatched bool // read again after the insert (ingest)
	if ev != nil {
		b.Queue(ownerSQL, ev.ID).QueryRow(func(row pgx.Row) error {
			if err := row.Scan(&owner, &anon, &dispatched); err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			return nil
		})
	}
	b.Queue(`INSERT INTO customers (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, who)
	if running != nil {
		b.Queue(runningSQL, who).Query(func(rows pgx.Rows) error {
			out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[RunningVersion])
			if out == nil {
				out = []RunningVersion{} // read, and none
			}
			*running = out
			return err
		})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	return refuseOwner(owner, anon, who, anonymousID)
}

// ingestCustomer applies the profile, the tie to an anonymous id and the
// group of a call that counts for customer who, whose row exists
// (ownerAndCustomer).
func (s *Store) ingestCustomer(ctx context.Context, tx pgx.Tx, who string, in Ingestion) error {
	if in.Profile != nil {
		if err := applyProfile(ctx, tx, who, *in.Profile); err != nil {
			return err
		}
	}
	if in.AnonymousID != "" && in.CustomerID != "" {
		if err := s.tieAnonymous(ctx, tx, in.AnonymousID, who); err != nil {
			return err
		}
	}
	if in.GroupID == "" {
		return nil
	}
	traits := in.GroupTraits
	if traits == nil {
		traits = map[string]any{}
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO customer_groups AS g (customer_id, group_id, traits) VALUES ($1, $2, $3)
		ON CONFLICT (customer_id, group_id) DO UPDATE SET traits = g.traits || excluded.traits, updated_at = now()`,
		who, in.GroupID, traits)
	return err
}

// clearable maps the core fields a profile change may clear to their SQL.
var clearable = map[string]string{
	"email": "email = ''", "phone": "phone = ''", "name": "name = ''", "locale": "locale = ''",
	"timezone": "timezone = ''", "tier": "tier = ''", "stage": "stage = ''",
	"birthday": "birthday = NULL", "signup_at": "signup_at = NULL",
}

// applyProfile merges, clears and fills in the profile of customer who.
func applyProfile(ctx context.Context, q execer, who string, p ProfileChange) error {
	p.Set.ID = who
	if err := upsertCustomer(ctx, q, p.Set); err != nil {
		return err
	}
	if err := ClearFields(ctx, q, who, p.Clear); err != nil {
		return err
	}
	_, err := q.Exec(ctx, `UPDATE customers SET
			locale    = CASE WHEN locale = '' THEN $2 ELSE locale END,
			timezone  = CASE WHEN timezone = '' THEN $3 ELSE timezone END,
			signup_at = COALESCE(signup_at, $4)
		WHERE id = $1`, who, p.Fill.Locale, p.Fill.Timezone, nullTime(p.Fill.SignupAt))
	return err
}

// ClearFields empties core fields by name and attributes as attrs.<name>
// of a customer, in one statement on q.
func ClearFields(ctx context.Context, q execer, customerID string, fields []string) error {
	if len(fields) == 0 {
		return nil
	}
	var sets []string
	attrs := []string{}
	for _, f := range fields {
		if name, ok := strings.CutPrefix(f, "attrs."); ok {
			attrs = append(attrs, name)
		} else if set, ok := clearable[f]; ok {
			sets = append(sets, set)
		} else {
			return permanent("clear %q of customer %s: not a field an identify may clear", f, customerID)
		}
	}
	sets = append(sets, "attrs = attrs - $2::text[]", "updated_at = now()")
	_, err := q.Exec(ctx, `UPDATE customers SET `+strings.Join(sets, ", ")+` WHERE id = $1`, customerID, attrs)
	if err != nil {
		return fmt.Errorf("clear fields of customer %s: %w", customerID, err)
	}
	return nil
}

// tieAnonymous ties an anonymous id to customer who, the first time only:
// its traits fill the attributes the customer has none of, and its events
// move to the customer as history (metrics applied, marked dispatched, so
// no journey reacts to them late). An id tied before stays with its first
// customer.
func (s *Store) tieAnonymous(ctx context.Context, tx pgx.Tx, anonymousID, who string) error {
	var traits map[string]any
	err := tx.QueryRow(ctx, `
		INSERT INTO anonymous_ids AS a (anonymous_id, customer_id, merged_at) VALUES ($1, $2, now())
		ON CONFLICT (anonymous_id) DO UPDATE SET customer_id = excluded.customer_id, merged_at = now()
			WHERE a.customer_id IS NULL
		RETURNING traits`, anonymousID, who).Scan(&traits)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // tied before
	}
	if err != nil {
		return err
	}
	if len(traits) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE customers SET attrs = $2 || attrs WHERE id = $1`, who, traits); err != nil {
			return err
		}
	}
	return s.moveAnonymousEvents(ctx, tx, anonymousID, who)
}

// moveAnonymousEvents moves an anonymous visitor's events to customer who.
func (s *Store) moveAnonymousEvents(ctx context.Context, tx pgx.Tx, anonymousID, who string) error {
	rows, err := tx.Query(ctx, `DELETE FROM anonymous_events WHERE anonymous_id = $1
		RETURNING id, name, time, amount::float8, currency, order_id, category, score, props, effect`, anonymousID)
	if err != nil {
		return err
	}
	type moved struct {
		ev     rules.Event
		effect string
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (moved, error) {
		var m moved
		err := r.Scan(&m.ev.ID, &m.ev.Name, &m.ev.Time, &m.ev.Amount, &m.ev.Currency, &m.ev.OrderID,
			&m.ev.Category, &m.ev.Score, &m.ev.Props, &m.effect)
		return m, err
	})
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(evs))
	for _, m := range evs {
		if _, err := s.insertEvent(ctx, tx, who, m.ev, m.effect); err != nil {
			return err
		}
		ids = append(ids, m.ev.ID)
	}
	_, err = tx.Exec(ctx, markDispatchedSQL, ids) // by the primary key (markDispatchedSQL)
	return err
}

// keepVisitor keeps an anonymous visitor's row (made, if new; their traits
// merged) and says whom the visitor is tied to ("" for nobody), read from
// the row once this transaction holds its lock. tieAnonymous holds the
// same lock while it ties the visitor and moves their events, so a tie in
// flight is waited for and then seen here, and the caller does not store
// the event with a visitor already tied, where nothing would move it. (The
// first read, without the lock, cannot see a tie not yet committed.) When
// the visitor is tied, the caller rolls back (errTiedMeanwhile), so the
// traits merged here are not kept.
func keepVisitor(ctx context.Context, tx pgx.Tx, anonymousID string, traits map[string]any) (string, error) {
	if traits == nil {
		traits = map[string]any{}
	}
	var who string
	err := tx.QueryRow(ctx, `
		INSERT INTO anonymous_ids AS a (anonymous_id, traits) VALUES ($1, $2)
		ON CONFLICT (anonymous_id) DO UPDATE SET traits = a.traits || excluded.traits
		RETURNING COALESCE(customer_id, '')`, anonymousID, traits).Scan(&who)
	return who, err
}

// ingestAnonymous keeps an anonymous visitor's event (keepVisitor has
// kept the visitor) until an identify or alias ties the visitor to a
// customer.
func ingestAnonymous(ctx context.Context, tx pgx.Tx, in Ingestion) (IngestResult, error) {
	if in.Event == nil {
		return IngestResult{}, nil
	}
	ev := *in.Event
	props := ev.Props
	if props == nil {
		props = map[string]any{}
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO anonymous_events (id, anonymous_id, name, time, amount, currency, order_id, category, score, props, effect)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING`,
		ev.ID, in.AnonymousID, ev.Name, orNow(ev.Time), ev.Amount, ev.Currency, ev.OrderID, ev.Category, ev.Score, props, in.Effect)
	if err != nil {
		return IngestResult{}, err
	}
	return IngestResult{Inserted: tag.RowsAffected() == 1}, nil
}
