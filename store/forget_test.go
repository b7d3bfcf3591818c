package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/channels"
	"github.com/rapport-crm/rapport/delivery"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// erasureSecret is the RAPPORT_ERASURE_SECRET of these tests.
var erasureSecret = []byte("forget-test-erasure-secret-0123456789")

// person is the personal data seeded for one customer; every string is
// distinctive, so that finding it anywhere in the database after an
// erasure is a leak.
type person struct {
	ID, Email, OldEmail, Phone, Name string
}

// needles are the strings no table may contain once p is erased: the
// id, name, both email addresses as stored and normalized, and the phone
// number as stored and reduced to its digits.
func (p person) needles() []string {
	digits := activities.NormalAddress("sms", p.Phone)
	return []string{p.ID, p.Name, p.Email, strings.ToLower(strings.TrimSpace(p.Email)), p.OldEmail, p.Phone, digits, strings.TrimPrefix(digits, "+")}
}

var (
	ada = person{ID: "cust-ada-7f3", Email: " Ada.Lovelace@Example.CN ", OldEmail: "ada.old@example.cn",
		Phone: "+86 138-0000-4321", Name: "Ada Lovelace-Byron"}
	bob = person{ID: "cust-bob-2c9", Email: "bob.keeper@example.cn", OldEmail: "bob.old@example.cn",
		Phone: "+49 151 2222 3333", Name: "Bob Keeper"}
)

// seedEveryTable writes one row about p into every table that holds
// customer data (the tables of migrations 00001–00015), each carrying
// some of p's personal data, and returns the tables written.
func seedEveryTable(t *testing.T, s *store.Store, p person) []string {
	t.Helper()
	ctx := context.Background()
	en, an := "run-"+p.ID, "anon-"+p.ID
	msgKey, oldKey := en+"/mail/1", en+"/mail/0"
	stmts := []struct {
		table, sql string
		args       []any
	}{
		{"customers", `INSERT INTO customers (id, email, phone, name, tags, attrs) VALUES ($1, $2, $3, $4, ARRAY['vip'], $5)`,
			[]any{p.ID, p.Email, p.Phone, p.Name, map[string]any{"nickname": p.Name, "backup_email": p.OldEmail}}},
		{"events", `INSERT INTO events (id, customer_id, name, time, amount, order_id, props) VALUES ($1, $2, 'order_completed', '2026-03-01Z', 42, 'o-1', $3)`,
			[]any{"ev-" + p.ID, p.ID, map[string]any{"shipping_name": p.Name, "contact": p.Phone}}},
		{"event_ids", `INSERT INTO event_ids (id, customer_id, time, dispatched_at) VALUES ($1, $2, '2026-03-01Z', '2026-03-01 00:00:07Z')`,
			[]any{"ev-" + p.ID, p.ID}},
		{"consents", `INSERT INTO consents (customer_id, channel, topic, granted, source) VALUES ($1, 'email', 'surveys', false, 'preference centre')`,
			[]any{p.ID}},
		{"enrollments", `INSERT INTO enrollments (id, workflow_id, playbook, version, customer_id, status, started_at, trigger_id, converted_at, conversion_event)
			VALUES ($1, $2, 'winback', 'v1', $3, 'active', '2026-03-01Z', $4, '2026-03-02Z', 'order_completed')`,
			[]any{en, "rapport/winback/" + p.ID, p.ID, "ev-" + p.ID}},
		{"enrollment_steps", `INSERT INTO enrollment_steps (key, enrollment_id, step_id, kind, detail, at) VALUES ($1, $2, 'mail', 'send', $3, '2026-03-01Z')`,
			[]any{en + "/mail/1", en, "sent to " + p.Email}},
		{"messages", `INSERT INTO messages (key, enrollment_id, customer_id, playbook, step_id, channel, template, recipient, subject, status, provider_id, created_at)
			VALUES ($1, $2, $3, 'winback', 'mail', 'email', 'miss_you', $4, $5, 'sent', $6, '2026-03-01Z'),
			       ($7, $2, $3, 'winback', 'mail', 'email', 'miss_you', $8, 'Old news', 'sent', '', '2026-02-01Z')`,
			[]any{msgKey, en, p.ID, strings.TrimSpace(p.Email), "We miss you, " + p.Name, "prov-" + p.ID, oldKey, p.OldEmail}},
		{"message_events", `INSERT INTO message_events (id, message_key, kind, provider, bounce, detail, at) VALUES ($1, $2, 'bounced', 'ses', 'soft', $3, '2026-03-01Z')`,
			[]any{"msg-ses-" + p.ID, msgKey, "mailbox full: " + p.Email}},
		{"suppressions", `INSERT INTO suppressions (channel, address, reason, soft_bounces, suppressed_at, source)
			VALUES ('email', rapport_address('email', $1), 'hard_bounce', 0, now(), 'ses'),
			       ('sms', rapport_address('sms', $2), '', 1, NULL, 'twilio')`,
			[]any{p.OldEmail, p.Phone}},
		{"points_ledger", `INSERT INTO points_ledger (key, customer_id, enrollment_id, delta, reason, balance_after) VALUES ($1, $2, $3, 10, $4, 10)`,
			[]any{en + "/points/1", p.ID, en, "birthday of " + p.Name}},
		{"coupons", `INSERT INTO coupons (code, key, customer_id, enrollment_id, kind, value, expires_at) VALUES ($1, $2, $3, $4, 'percent', 10, '2026-04-01Z')`,
			[]any{"SAVE-" + p.ID, en + "/coupon/1", p.ID, en}},
		{"tasks", `INSERT INTO tasks (key, customer_id, enrollment_id, assignee, title, due_at, status) VALUES ($1, $2, $3, 'care', $4, '2026-03-05Z', 'done')`,
			[]any{en + "/task/1", p.ID, en, "Call " + p.Name + " on " + p.Phone}},
		{"anonymous_ids", `INSERT INTO anonymous_ids (anonymous_id, customer_id, traits, merged_at) VALUES ($1, $2, $3, now())`,
			[]any{an, p.ID, map[string]any{"email": p.Email}}},
		{"anonymous_events", `INSERT INTO anonymous_events (id, anonymous_id, name, time, props) VALUES ($1, $2, 'page', '2026-02-01Z', $3)`,
			[]any{"aev-" + p.ID, an, map[string]any{"search": p.Name}}},
		{"customer_groups", `INSERT INTO customer_groups (customer_id, group_id, traits) VALUES ($1, 'acme', $2)`,
			[]any{p.ID, map[string]any{"contact": p.Name}}},
		{"journey_starts", `INSERT INTO journey_starts (customer_id, playbook, version, trigger_id) VALUES ($1, 'winback', 'v1', $2)`,
			[]any{p.ID, "scan/winback/1/" + p.ID}},
		{"customer_keys", `INSERT INTO customer_keys (customer_id, key, master_key_id) VALUES ($1, '\x00', 'm1')`,
			[]any{p.ID}},
	}
	march := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := s.EnsureEventMonths(ctx, march, march); err != nil {
		t.Fatal(err)
	}
	var tables []string
	for _, st := range stmts {
		if _, err := s.Pool().Exec(ctx, st.sql, st.args...); err != nil {
			t.Fatalf("seed %s: %v", st.table, err)
		}
		tables = append(tables, st.table)
	}
	return tables
}

// notCustomerData are the tables that hold nothing about a customer:
// deployed playbooks, the migration log, API keys, and the erasure audit
// (keyed hashes only). Every other table must be covered by the seed
// above, so a table added later fails these tests until it is.
var notCustomerData = map[string]bool{
	"playbook_versions": true, "goose_db_version": true, "api_keys": true, "erasures": true,
}

// notExported are tables about a customer that an export leaves out:
// customer_keys holds key material (the wrapped data key of their
// Temporal payloads), not data about them;
// journey_starts holds a note of a start in flight, which the journey
// turns into its enrollment (exported) within moments.
var notExported = map[string]bool{"customer_keys": true, "journey_starts": true}

// customerTables lists the tables of the schema (partitions left out:
// their parent is read).
func customerTables(t *testing.T, s *store.Store) []string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		out = append(out, name)
	}
	return out
}

// leaks scans every row of every table, as JSON text, for p's personal
// data, and lists "table: needle" for each hit.
func leaks(t *testing.T, s *store.Store, p person) []string {
	t.Helper()
	var out []string
	for _, table := range customerTables(t, s) {
		for _, needle := range p.needles() {
			var n int
			q := fmt.Sprintf(`SELECT count(*) FROM %q t WHERE strpos(lower(row_to_json(t)::text), lower($1)) > 0`, table)
			if err := s.Pool().QueryRow(context.Background(), q, needle).Scan(&n); err != nil {
				t.Fatalf("scan %s: %v", table, err)
			}
			if n > 0 {
				out = append(out, fmt.Sprintf("%s: %q in %d rows", table, needle, n))
			}
		}
	}
	return out
}

func erasingStore(t *testing.T, secrets ...[]byte) *store.Store {
	t.Helper()
	cfg := storetest.Config()
	cfg.ErasureSecrets = secrets
	if len(secrets) == 0 {
		cfg.ErasureSecrets = [][]byte{erasureSecret}
	}
	return storetest.NewWithConfig(t, cfg)
}

// After Forget, no table holds anything of the customer — not the id,
// the name, any email address they had (the profile's and an older one
// a message went to), or the phone number, in any form — while another
// customer's rows are untouched; the addresses stay on the suppression
// list as keyed hashes only, and one audit row says who asked.
func TestForgetErasesEveryTable(t *testing.T) {
	t.Parallel()
	s := erasingStore(t)
	ctx := context.Background()
	seeded := seedEveryTable(t, s, ada)
	seedEveryTable(t, s, bob)
	covered := map[string]bool{}
	for _, tb := range seeded {
		covered[tb] = true
	}
	for _, tb := range customerTables(t, s) {
		if !covered[tb] && !notCustomerData[tb] {
			t.Errorf("table %s is neither seeded nor known to hold no customer data: decide what erasure does with it", tb)
		}
	}
	if l := leaks(t, s, ada); len(l) == 0 {
		t.Fatal("the seed left no personal data to find: the scan cannot fail")
	}

	res, err := s.Forget(ctx, store.ForgetRequest{CustomerID: ada.ID, RequestedBy: "key:k_test"})
	if err != nil {
		t.Fatal(err)
	}
	if l := leaks(t, s, ada); len(l) > 0 {
		t.Errorf("personal data left after Forget:\n  %s", strings.Join(l, "\n  "))
	}
	if !res.Found || res.Addresses != 3 || len(res.Active) != 1 || res.Active[0].WorkflowID != "rapport/winback/"+ada.ID {
		t.Errorf("result %+v: want found, 3 addresses (email, old email, phone), the active winback enrollment", res)
	}
	for _, tb := range seeded {
		if res.Deleted[tb] == 0 {
			t.Errorf("Deleted[%s] = 0, want the seeded rows counted", tb)
		}
	}
	if strings.Contains(res.CustomerHash, ada.ID) || res.CustomerHash != store.CustomerHash(erasureSecret, ada.ID) {
		t.Errorf("customer hash %q", res.CustomerHash)
	}
	// Bob keeps every row.
	for _, tb := range seeded {
		if n := count(t, s, fmt.Sprintf(`SELECT count(*) FROM %q t WHERE strpos(row_to_json(t)::text, $1) > 0`, tb), "bob"); n == 0 {
			t.Errorf("%s lost the other customer's rows", tb)
		}
	}
	for _, a := range [][2]string{{"email", ada.Email}, {"email", ada.OldEmail}, {"sms", ada.Phone}} {
		if n := count(t, s, `SELECT count(*) FROM suppressions WHERE channel = $1 AND address = $2 AND reason = 'erased' AND suppressed_at IS NOT NULL`,
			a[0], store.ErasedAddress(erasureSecret, a[0], a[1])); n != 1 {
			t.Errorf("%s %s is not suppressed as a keyed hash", a[0], a[1])
		}
	}
	var by, hash string
	var found bool
	var deleted map[string]int64
	if err := s.Pool().QueryRow(ctx, `SELECT requested_by, customer_hash, found, deleted FROM erasures`).Scan(&by, &hash, &found, &deleted); err != nil {
		t.Fatal(err)
	}
	if by != "key:k_test" || hash != res.CustomerHash || !found || deleted["events"] != 1 || deleted["messages"] != 2 {
		t.Errorf("audit row: by %q hash %q found %v deleted %v", by, hash, found, deleted)
	}
}

// A second erasure of the same customer changes nothing but the audit
// log: found false, nothing deleted, the hashed suppressions as they
// were.
func TestForgetIsIdempotent(t *testing.T) {
	t.Parallel()
	s := erasingStore(t)
	ctx := context.Background()
	seedEveryTable(t, s, ada)
	if _, err := s.Forget(ctx, store.ForgetRequest{CustomerID: ada.ID, RequestedBy: "cli:ops"}); err != nil {
		t.Fatal(err)
	}
	before := count(t, s, `SELECT count(*) FROM suppressions`)
	again, err := s.Forget(ctx, store.ForgetRequest{CustomerID: ada.ID, RequestedBy: "cli:ops"})
	if err != nil {
		t.Fatal(err)
	}
	if again.Found || again.Addresses != 0 || len(again.Deleted) != 0 {
		t.Errorf("second erasure %+v, want nothing found or deleted", again)
	}
	if n := count(t, s, `SELECT count(*) FROM suppressions`); n != before {
		t.Errorf("suppressions %d after the second erasure, %d before", n, before)
	}
	if n := count(t, s, `SELECT count(*) FROM erasures WHERE customer_hash = $1`, again.CustomerHash); n != 2 {
		t.Errorf("%d audit rows, want one per request", n)
	}
}

// Without RAPPORT_ERASURE_SECRET an erasure is refused, naming the
// variable, and deletes nothing: the addresses could not be kept as
// hashes, so nothing would stop the customer being contacted again.
func TestForgetNeedsTheSecret(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	seedEveryTable(t, s, ada)
	_, err := s.Forget(context.Background(), store.ForgetRequest{CustomerID: ada.ID})
	if !errors.Is(err, store.ErrNoErasureSecret) || !strings.Contains(err.Error(), "RAPPORT_ERASURE_SECRET") {
		t.Fatalf("err %v, want ErrNoErasureSecret", err)
	}
	if n := count(t, s, `SELECT count(*) FROM customers`); n != 1 {
		t.Errorf("%d customers left, want the customer kept", n)
	}
}

// recorder is a channel that records what it is asked to deliver.
type recorder struct {
	mu sync.Mutex
	to []string
}

func (r *recorder) Deliver(_ context.Context, m channels.Message) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.to = append(r.to, m.To)
	return "p-" + m.Key, nil
}

func (r *recorder) sent() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.to...)
}

// A forgotten customer whom a later event creates again — under the same
// id or another, with the address written differently — is never
// contacted at an address they had: ingest suppresses the address in the
// clear (reason erased, which `rapport customer` shows), and the send
// path checks the keyed hashes for an address that arrives without ingest
// (here UpsertCustomer). Marketing and transactional messages alike are
// recorded suppressed (erased) and never reach the channel; another
// customer's address still gets mail.
func TestErasedAddressesAreNeverContactedAgain(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	cfg := storetest.Config()
	cfg.ErasureSecrets = [][]byte{erasureSecret}
	s := storetest.NewWithConfig(t, cfg)
	d := storetest.Delivery()
	d.Channels["email"], d.Channels["sms"] = rec, rec
	snd := delivery.Sender{Outbox: s, Config: d}
	ctx := context.Background()
	seedEveryTable(t, s, ada)
	if _, err := s.Forget(ctx, store.ForgetRequest{CustomerID: ada.ID, RequestedBy: "cli:ops"}); err != nil {
		t.Fatal(err)
	}

	// Same id, through ingest, the address in another case.
	in := store.Ingestion{CustomerID: ada.ID, Profile: &store.ProfileChange{Set: rules.Customer{Email: "ADA.LOVELACE@example.cn", Phone: "+86 13800004321"}},
		Event: &rules.Event{ID: "ev-back", Name: "signed_up"}}
	if _, err := s.Ingest(ctx, in); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM suppressions WHERE reason = 'erased' AND source = 'erasure' AND address IN ('ada.lovelace@example.cn', '+8613800004321')`); n != 2 {
		t.Errorf("%d addresses suppressed in the clear at ingest, want the email and the phone", n)
	}
	v, err := s.CustomerView(ctx, ada.ID, 0)
	if err != nil || len(v.Suppressions) != 2 || v.Suppressions[0].Reason != activities.ReasonErased {
		t.Errorf("customer view suppressions %+v %v, want both addresses, erased", v.Suppressions, err)
	}
	// Another id, written straight into the profile (no ingest check).
	mustCustomer(t, s, rules.Customer{ID: "cust-ada-new", Email: "ada.old@EXAMPLE.cn"})
	// And a customer who was never erased.
	mustCustomer(t, s, rules.Customer{ID: bob.ID, Email: bob.Email})

	for i, tc := range []struct {
		customer, channel string
		transactional     bool
		want              activities.SendStatus
	}{
		{ada.ID, "email", false, activities.SendSuppressed},
		{ada.ID, "email", true, activities.SendSuppressed},
		{ada.ID, "sms", true, activities.SendSuppressed},
		{"cust-ada-new", "email", false, activities.SendSuppressed},
		{"cust-ada-new", "email", true, activities.SendSuppressed},
		{bob.ID, "email", false, activities.SendSent},
	} {
		c, err := s.Customer(ctx, tc.customer)
		if err != nil {
			t.Fatal(err)
		}
		r := sendReq(enrollment(fmt.Sprintf("en%d", i), "welcome", tc.customer), c, fmt.Sprintf("en%d/mail/1", i), t0)
		r.Channel, r.Transactional = tc.channel, tc.transactional
		res, err := snd.SendMessage(ctx, r)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if res.Status != tc.want || (tc.want == activities.SendSuppressed && res.Reason != activities.ReasonErased) {
			t.Errorf("send %d to %s over %s (transactional %v): %+v, want %s", i, tc.customer, tc.channel, tc.transactional, res, tc.want)
		}
		var status, reason, subject string
		if err := s.Pool().QueryRow(ctx, `SELECT status, reason, subject FROM messages WHERE key = $1`, r.Key).Scan(&status, &reason, &subject); err != nil {
			t.Fatal(err)
		}
		if status != string(tc.want) || (status == "suppressed" && (reason != "erased" || subject != "")) {
			t.Errorf("send %d recorded %s (%s) subject %q", i, status, reason, subject)
		}
	}
	if got := rec.sent(); len(got) != 1 || got[0] != bob.Email {
		t.Errorf("channel delivered to %v, want only %s", got, bob.Email)
	}
}

// The erasure secret rotates: with a new secret first and the old one
// kept after it, an address erased under the old secret is still
// stopped, and new erasures use the new one.
func TestErasureSecretRotation(t *testing.T) {
	t.Parallel()
	oldSecret, newSecret := []byte("old-erasure-secret-0123456789"), []byte("new-erasure-secret-9876543210")
	cfg := storetest.Config()
	cfg.ErasureSecrets = [][]byte{oldSecret}
	s := storetest.NewWithConfig(t, cfg)
	ctx := context.Background()
	seedEveryTable(t, s, ada)
	if _, err := s.Forget(ctx, store.ForgetRequest{CustomerID: ada.ID, RequestedBy: "cli:ops"}); err != nil {
		t.Fatal(err)
	}
	cfg.ErasureSecrets = [][]byte{newSecret, oldSecret}
	rotated := store.New(s.Pool(), cfg)
	c := mustCustomer(t, rotated, rules.Customer{ID: "again", Email: ada.Email})
	res, err := sender(rotated).SendMessage(ctx, sendReq(enrollment("en1", "welcome", "again"), c, "en1/mail/1", t0))
	if err != nil || res.Status != activities.SendSuppressed || res.Reason != activities.ReasonErased {
		t.Errorf("send after rotation: %+v %v, want suppressed (erased)", res, err)
	}
	seedEveryTable(t, rotated, bob)
	if _, err := rotated.Forget(ctx, store.ForgetRequest{CustomerID: bob.ID}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM suppressions WHERE address = $1`, store.ErasedAddress(newSecret, "email", bob.Email)); n != 1 {
		t.Error("a new erasure did not use the new secret")
	}
}

// The export of a customer (an access request) holds a row of every
// table that holds customer data: each seeded table's data appears in the
// JSON, and nothing of another customer does.
func TestCustomerExportHasEveryTable(t *testing.T) {
	t.Parallel()
	s := erasingStore(t)
	ctx := context.Background()
	seedEveryTable(t, s, ada)
	seedEveryTable(t, s, bob)
	x, err := s.CustomerExport(ctx, ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	// Where each table's row shows, and a string only that row holds.
	want := map[string][2]string{
		"customers":        {"profile", `"nickname":"Ada Lovelace-Byron"`},
		"events":           {"events", `"shipping_name":"Ada Lovelace-Byron"`},
		"event_ids":        {"events", `"dispatched_at":"2026-03-01T00:00:07Z"`},
		"consents":         {"consents", `"preference centre"`},
		"enrollments":      {"enrollments", `"rapport/winback/cust-ada-7f3"`},
		"enrollment_steps": {"enrollment_steps", `sent to  Ada.Lovelace@Example.CN `},
		"messages":         {"messages", `"We miss you, Ada Lovelace-Byron"`},
		"message_events":   {"messages", `mailbox full:  Ada.Lovelace@Example.CN `},
		"suppressions":     {"suppression_entries", `"address":"ada.old@example.cn"`},
		"points_ledger":    {"points_ledger", `"birthday of Ada Lovelace-Byron"`},
		"coupons":          {"coupons", `"SAVE-cust-ada-7f3"`},
		"tasks":            {"tasks", `"Call Ada Lovelace-Byron on +86 138-0000-4321"`},
		"anonymous_ids":    {"anonymous_ids", `"anon-cust-ada-7f3"`},
		"anonymous_events": {"anonymous_ids", `"search":"Ada Lovelace-Byron"`},
		"customer_groups":  {"groups", `"contact":"Ada Lovelace-Byron"`},
	}
	for _, tb := range customerTables(t, s) {
		if _, ok := want[tb]; !ok && !notCustomerData[tb] && !notExported[tb] {
			t.Errorf("table %s is not in the export test: export its rows and add it", tb)
		}
	}
	for tb, w := range want {
		if !strings.Contains(string(doc[w[0]]), w[1]) {
			t.Errorf("%s: export field %q lacks %s: %s", tb, w[0], w[1], doc[w[0]])
		}
	}
	if strings.Contains(string(b), "bob") {
		t.Error("the export holds another customer's data")
	}
	if len(x.Messages) != 2 || len(x.Messages[1].History) != 1 || x.Messages[1].History[0].Kind != "bounced" {
		t.Errorf("messages %+v, want both with the bounce in the newer one's history", x.Messages)
	}
	if _, err := s.CustomerExport(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("export of an unknown customer: %v, want ErrNotFound", err)
	}
}

// RAPPORT_ERASURE_SECRET: unset is none; several are comma-separated,
// newest first; a short one is an error naming the variable and its
// position, never the value.
func TestErasureSecretsFromEnv(t *testing.T) {
	t.Setenv(store.EnvErasureSecret, "")
	if s, err := store.ErasureSecretsFromEnv(); err != nil || s != nil {
		t.Errorf("unset: %q %v", s, err)
	}
	t.Setenv(store.EnvErasureSecret, "new-secret-0123456789, old-secret-0123456789")
	s, err := store.ErasureSecretsFromEnv()
	if err != nil || len(s) != 2 || string(s[0]) != "new-secret-0123456789" || string(s[1]) != "old-secret-0123456789" {
		t.Errorf("two secrets: %q %v", s, err)
	}
	t.Setenv(store.EnvErasureSecret, "new-secret-0123456789,short7")
	_, err = store.ErasureSecretsFromEnv()
	if err == nil || !strings.Contains(err.Error(), "RAPPORT_ERASURE_SECRET: secret 2") || strings.Contains(err.Error(), "short7") {
		t.Errorf("short secret: %v", err)
	}
}
