package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/report"
	"github.com/rapport-crm/rapport/store"
)

// Part report times `rapport report` (issue #15 c: "over 10 M events:
// under 2 s") over a year of history: -report-customers customers,
// -report-events events over 13 months and -report-enrollments
// enrollments in five playbooks with their step records, messages and
// what became of them, points, coupons and tasks, all copied in with COPY.
// It times the real binary (built from this tree unless -rapport-bin
// names one) as an operator runs it, and, with -report-before naming the
// binary of an earlier release, that release first on the schema it knew
// (the database migrated down to -report-before-schema), then migrates up
// (timing what the later migrations take on this data) and times this
// release, in the same run over the same rows.

// reportWindow is how far back the seeded history goes: 13 months.
const reportWindow = 395 * 24 * time.Hour

// reportSinceGap: no enrollment starts within this much of 90 days
// before the seeding, so that `--since 90d` covers the same enrollments
// whenever within that time after the seeding the reports run, and the
// releases' reports can be compared line for line.
const reportSinceGap = 12 * time.Hour

// simStep is one step of a seeded playbook, as the journey records it.
type simStep struct {
	id, kind string
	after    time.Duration // after the previous step
	share    float64       // the share of enrollments that take it (0: all)
	channel  string        // send: email or sms
	branches []string      // split, if and event-wait outcomes (the first is the likeliest)
}

// simPlaybook is a seeded playbook.
type simPlaybook struct {
	name        string
	enrollments int
	global      bool    // takes part in the global control group
	holdout     float64 // its holdout share
	convert     float64 // treated customers' conversion rate (holdouts: 2/3 of it)
	steps       []simStep
}

// reportPlaybooks are the seeded playbooks and the share of the
// enrollments each has; winback is the one timed alone.
var reportPlaybooks = []simPlaybook{
	{name: "winback", enrollments: 40, global: true, holdout: 0.1, convert: 0.15, steps: []simStep{
		{id: "miss_you", kind: "send", channel: "email"},
		{id: "offer_test", kind: "split", after: 3 * 24 * time.Hour, branches: []string{"a", "b"}},
		{id: "offer", kind: "coupon"},
		{id: "wait_order", kind: "wait", after: 7 * 24 * time.Hour, branches: []string{"timeout", "order_completed"}},
		{id: "bought", kind: "if", branches: []string{"else", "then"}},
		{id: "reminder", kind: "send", channel: "sms", share: 0.8},
		{id: "reward", kind: "points", share: 0.2},
		{id: "tag_lapsed", kind: "update"},
		{id: "call_vip", kind: "task", share: 0.05},
	}},
	{name: "welcome", enrollments: 30, global: true, holdout: 0.05, convert: 0.2, steps: []simStep{
		{id: "welcome_mail", kind: "send", channel: "email"},
		{id: "subject_test", kind: "split", after: 2 * 24 * time.Hour, branches: []string{"short", "long"}},
		{id: "tips", kind: "send", channel: "email"},
		{id: "signup_bonus", kind: "points"},
	}},
	{name: "post_purchase", enrollments: 15, holdout: 0.1, convert: 0.1, steps: []simStep{
		{id: "review_request", kind: "send", channel: "email", after: 3 * 24 * time.Hour},
		{id: "reviewed", kind: "if", after: 4 * 24 * time.Hour, branches: []string{"else", "then"}},
		{id: "thanks", kind: "coupon", share: 0.3},
	}},
	{name: "birthday", enrollments: 10, holdout: 0.1, convert: 0.08, steps: []simStep{
		{id: "greeting", kind: "send", channel: "email"},
		{id: "gift", kind: "coupon"},
	}},
	{name: "vip_nurture", enrollments: 5, holdout: 0.1, convert: 0.12, steps: []simStep{
		{id: "call_customer", kind: "task"},
		{id: "vip_news", kind: "send", channel: "email", after: 24 * time.Hour},
		{id: "wait_visit", kind: "wait", after: 14 * 24 * time.Hour, branches: []string{"timeout", "page_viewed"}},
		{id: "tag_vip", kind: "update"},
	}},
}

// reportRows are the rows of the seeded history other than customers
// and the customers' own events.
type reportRows struct {
	enrollments, steps, messages, messageEvents, events, points, coupons, tasks [][]any
}

// journeySeeder writes enrollments and what their journeys left.
type journeySeeder struct {
	r         *rand.Rand
	now       time.Time
	customers int
	rows      reportRows
	n         int // ids handed out
}

func (s *journeySeeder) id() string {
	s.n++
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", s.r.Uint32(), s.r.IntN(1<<16), s.r.IntN(1<<12), s.r.IntN(1<<12), s.n)
}

// start is a start time in the window, outside the gap around 90 days ago.
func (s *journeySeeder) start() time.Time {
	for {
		t := s.now.Add(-time.Hour - time.Duration(s.r.Int64N(int64(reportWindow-2*time.Hour))))
		if d := s.now.Sub(t) - 90*24*time.Hour; d < -reportSinceGap || d > reportSinceGap {
			return t
		}
	}
}

// enroll writes one enrollment of p and what its journey did by now.
func (s *journeySeeder) enroll(p simPlaybook) {
	id, cust := s.id(), customerID(s.r.IntN(s.customers))
	start := s.start()
	version := "v1"
	if start.After(s.now.Add(-reportWindow / 2)) {
		version = "v2"
	}
	if s.r.Float64() < 0.03 { // rejected at admission: no steps, never reported
		s.rows.enrollments = append(s.rows.enrollments, []any{id, "rapport/" + p.name + "/" + cust, p.name, version, cust,
			"rejected", "", false, "active", start, start, start, nil, nil, nil})
		return
	}
	var global any // NULL: the playbook does not take part
	holdout := s.r.Float64() < p.holdout
	if p.global {
		g := s.r.Float64() < 0.04
		global, holdout = g, holdout || g
	}
	// The whole journey's length, and whether (and when) it ends early.
	length := time.Duration(0)
	for _, st := range p.steps {
		length += st.after
	}
	length += time.Hour
	status, reason, end := "completed", "", start.Add(length)
	var converted any
	rate := p.convert
	if holdout {
		rate *= 2.0 / 3
	}
	switch u := s.r.Float64(); {
	case u < rate:
		at := start.Add(time.Duration(s.r.Float64() * float64(length)))
		converted = at
		if s.r.IntN(2) == 0 { // the goal ends the journey; else it goes on
			status, reason, end = "converted", "goal order_completed", at
		}
	case u < rate+0.08:
		status, reason, end = "exited", "exit_when", start.Add(time.Duration(s.r.Float64()*float64(length)))
	case u < rate+0.09:
		status, reason, end = "failed", "step failed", start.Add(time.Duration(s.r.Float64()*float64(length)))
	}
	var ended any = end
	if end.After(s.now) {
		status, reason, ended = "active", "", nil
		if c, ok := converted.(time.Time); ok && c.After(s.now) {
			converted = nil
		}
	}
	var event any
	if converted != nil {
		event = "order_completed"
	}
	limit := end
	if limit.After(s.now) {
		limit = s.now
	}
	current := s.steps(p, id, cust, holdout, start, limit)
	s.rows.enrollments = append(s.rows.enrollments, []any{id, "rapport/" + p.name + "/" + cust, p.name, version, cust,
		status, current, holdout, reason, start, ended, limit, global, converted, event})
}

// steps writes the records of p's steps taken from start until limit and
// returns the last one's id.
func (s *journeySeeder) steps(p simPlaybook, enr, cust string, holdout bool, start, limit time.Time) string {
	at, current := start, ""
	for _, st := range p.steps {
		at = at.Add(st.after + time.Duration(s.r.IntN(600))*time.Second)
		if at.After(limit) {
			break
		}
		current = st.id
		if st.share > 0 && s.r.Float64() >= st.share {
			continue
		}
		key := enr + "/" + st.id + "/1"
		switch st.kind {
		case "send":
			at = s.send(p, st, key, enr, cust, holdout, at)
		case "split", "if", "wait":
			b := st.branches[0]
			if s.r.Float64() < 0.35 {
				b = st.branches[1+s.r.IntN(len(st.branches)-1)]
			}
			s.record(key, enr, st, b, st.kind+" → "+b, at)
		default: // coupon, points, task, update
			if holdout {
				s.record(key+"/holdout", enr, st, "suppressed:holdout", st.kind+" suppressed (holdout)", at)
				continue
			}
			s.action(st, key, enr, cust, at)
		}
	}
	return current
}

func (s *journeySeeder) record(key, enr string, st simStep, branch, detail string, at time.Time) {
	s.rows.steps = append(s.rows.steps, []any{key, enr, st.id, st.kind, detail, branch, at})
}

// send writes a send's deferrals, its message and what the provider said
// of it; it returns the time of the send.
func (s *journeySeeder) send(p simPlaybook, st simStep, key, enr, cust string, holdout bool, at time.Time) time.Time {
	if !holdout {
		switch u := s.r.Float64(); {
		case u < 0.12:
			s.record(key+"/quiet_hours", enr, st, "", "quiet hours: deferred", at)
			at = at.Add(8 * time.Hour)
		case u < 0.15:
			for a, n := 1, 1+s.r.IntN(2); a <= n; a++ {
				s.record(key+"/frequency_cap/"+strconv.Itoa(a), enr, st, "", "frequency cap: deferred", at)
				at = at.Add(24 * time.Hour)
			}
		}
	}
	status, reason := "sent", ""
	switch u := s.r.Float64(); {
	case holdout:
		status, reason = "suppressed", "holdout"
	case u < 0.03:
		status, reason = "suppressed", "consent"
	case u < 0.05:
		status, reason = "suppressed", "frequency_cap"
	case u < 0.06:
		status, reason = "failed", "provider rejected the message"
	case u < 0.062 && s.now.Sub(at) < 24*time.Hour:
		status = "queued"
	}
	recipient := cust + "@example.com"
	if st.channel == "sms" {
		recipient = "+4915100" + cust[1:]
	}
	provider := ""
	var sent any
	if status == "sent" {
		provider, sent = s.id()+"@mail.example.com", at
	}
	s.rows.messages = append(s.rows.messages, []any{key, enr, cust, p.name, st.id, st.channel, st.id, "en", "marketing",
		recipient, "A word from us", status, reason, provider, 1, at, sent})
	if status == "sent" {
		s.feedback(key, enr, p.name, st.id, cust, at)
	}
	return at
}

// feedback writes what the provider reported of a sent message, in
// message_events and as the customer's message_* events.
func (s *journeySeeder) feedback(key, enr, playbook, step, cust string, at time.Time) {
	kinds := []struct {
		kind  string
		share float64
		after time.Duration
	}{{"delivered", 0.95, time.Minute}, {"opened", 0.4, 3 * time.Hour}, {"clicked", 0.1, 4 * time.Hour},
		{"bounced", 0.03, 2 * time.Minute}, {"complained", 0.002, 5 * time.Hour}, {"unsubscribed", 0.005, 6 * time.Hour}}
	for _, k := range kinds {
		if s.r.Float64() >= k.share {
			continue
		}
		id, t := "msg-ses-"+s.id(), at.Add(k.after+time.Duration(s.r.IntN(3600))*time.Second)
		if t.After(s.now) {
			continue
		}
		bounce := ""
		if k.kind == "bounced" {
			bounce = "hard"
		}
		s.rows.messageEvents = append(s.rows.messageEvents, []any{id, key, k.kind, "ses", bounce, "", "", t, t})
		props := fmt.Sprintf(`{"message_key":%q,"enrollment_id":%q,"step_id":%q,"playbook":%q,"template":%q,"channel":"email","provider":"ses"}`,
			key, enr, step, playbook, step)
		s.rows.events = append(s.rows.events, []any{id, cust, "message_" + k.kind, t, 0.0, "", "", []byte(props), t})
	}
}

// action writes what a coupon, points, task or update step did (an
// update leaves no record of its own).
func (s *journeySeeder) action(st simStep, key, enr, cust string, at time.Time) {
	switch st.kind {
	case "coupon":
		s.rows.coupons = append(s.rows.coupons, []any{"WB-" + s.id(), key, cust, enr, "percent", 15.0, at.Add(30 * 24 * time.Hour), at})
	case "points":
		s.rows.points = append(s.rows.points, []any{key, cust, enr, int64(50), st.id, int64(50 + s.r.IntN(500)), at})
	case "task":
		s.rows.tasks = append(s.rows.tasks, []any{key, cust, enr, "care-team", "Call the customer", "normal", at.Add(48 * time.Hour), "done", at})
	}
}

// reportTables are the columns each seeded table is copied with.
var reportTables = []struct {
	table string
	cols  []string
	rows  func(*reportRows) [][]any
}{
	{"enrollments", []string{"id", "workflow_id", "playbook", "version", "customer_id", "status", "current_step", "holdout", "reason",
		"started_at", "ended_at", "updated_at", "global_control", "converted_at", "conversion_event"}, func(r *reportRows) [][]any { return r.enrollments }},
	{"enrollment_steps", []string{"key", "enrollment_id", "step_id", "kind", "detail", "branch", "at"}, func(r *reportRows) [][]any { return r.steps }},
	{"messages", []string{"key", "enrollment_id", "customer_id", "playbook", "step_id", "channel", "template", "locale", "topic",
		"recipient", "subject", "status", "reason", "provider_id", "attempts", "created_at", "sent_at"}, func(r *reportRows) [][]any { return r.messages }},
	{"message_events", []string{"id", "message_key", "kind", "provider", "bounce", "url", "detail", "at", "received_at"}, func(r *reportRows) [][]any { return r.messageEvents }},
	{"points_ledger", []string{"key", "customer_id", "enrollment_id", "delta", "reason", "balance_after", "at"}, func(r *reportRows) [][]any { return r.points }},
	{"coupons", []string{"code", "key", "customer_id", "enrollment_id", "kind", "value", "expires_at", "created_at"}, func(r *reportRows) [][]any { return r.coupons }},
	{"tasks", []string{"key", "customer_id", "enrollment_id", "assignee", "title", "priority", "due_at", "status", "created_at"}, func(r *reportRows) [][]any { return r.tasks }},
}

// eventColumns are the columns events are copied with.
var eventColumns = []string{"id", "customer_id", "name", "time", "amount", "currency", "order_id", "props", "received_at"}

// behaviourRows generates the customers' own events, in time order over
// the window (as they arrive), a few customers far busier than most.
type behaviourRows struct {
	n, i, customers int
	from            time.Time
	r               *rand.Rand
	row             []any
}

func (b *behaviourRows) Next() bool {
	if b.i >= b.n {
		return false
	}
	i := b.i
	b.i++
	t := b.from.Add(time.Duration(float64(reportWindow) * (float64(i) + b.r.Float64()) / float64(b.n)))
	u := b.r.Float64()
	cust := customerID(int(float64(b.customers) * u * u)) // half the events from a fifth of the customers
	amount, currency, order := 0.0, "", ""
	var name, props string
	switch v := b.r.IntN(10000); {
	case v < 5500:
		name = "page_viewed"
		props = fmt.Sprintf(`{"path":"/products/%d","title":"Product %d","referrer":"https://www.example.org/"}`, v%5000, v%5000)
	case v < 8500:
		name = "product_viewed"
		props = fmt.Sprintf(`{"product_id":"sku-%d","price":19.99,"category":"tea"}`, v%5000)
	case v < 9100:
		name = "added_to_cart"
		props = fmt.Sprintf(`{"product_id":"sku-%d","quantity":1}`, v%5000)
	case v < 9500:
		name, amount, currency, order = "order_completed", float64(20+v%200), "EUR", "ord-"+strconv.Itoa(i)
		props = `{"items":2}`
	case v < 9998:
		name = "searched"
		props = fmt.Sprintf(`{"query":"green tea %d"}`, v%100)
	default:
		name, props = "complaint_filed", `{"topic":"delivery"}`
	}
	b.row = []any{fmt.Sprintf("ev-%09d", i), cust, name, t, amount, currency, order, []byte(props), t.Add(time.Second)}
	return true
}

func (b *behaviourRows) Values() ([]any, error) { return b.row, nil }
func (b *behaviourRows) Err() error             { return nil }

// reportDB is the seeded database of part report.
type reportDB struct {
	st          *store.Store
	url         string
	cleanup     func()
	enrollments map[string]int // per playbook, admitted
}

// seedReport creates the part's database at schema version schema (0:
// every migration) and copies the history in.
func seedReport(ctx context.Context, c config, schema int64) (*reportDB, error) {
	st, cleanup, err := freshStore(ctx, c, "report")
	if err != nil {
		return nil, err
	}
	db := &reportDB{st: st, cleanup: cleanup, url: strings.Replace(st.Pool().Config().ConnString(), "&pool_max_conns=20", "", 1),
		enrollments: map[string]int{}}
	fail := func(err error) (*reportDB, error) { cleanup(); return nil, err }
	if schema > 0 {
		if err := store.MigrateDownTo(ctx, db.url, schema); err != nil {
			return fail(fmt.Errorf("migrate down to %d: %w", schema, err))
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	if _, err := copyCustomers(ctx, st, c.reportCustomers, 0, now); err != nil {
		return fail(err)
	}
	// The journeys, in memory (a few hundred thousand rows).
	js := &journeySeeder{r: rand.New(rand.NewPCG(15, 3)), now: now, customers: c.reportCustomers}
	total := 0
	for _, p := range reportPlaybooks {
		total += p.enrollments
	}
	for _, p := range reportPlaybooks {
		for range c.reportEnrollments * p.enrollments / total {
			js.enroll(p)
		}
	}
	for _, e := range js.rows.enrollments {
		if e[5] != "rejected" {
			db.enrollments[e[2].(string)]++
		}
	}
	start := time.Now()
	for _, t := range reportTables {
		if _, err := st.Pool().CopyFrom(ctx, pgx.Identifier{t.table}, t.cols, pgx.CopyFromRows(t.rows(&js.rows))); err != nil {
			return fail(fmt.Errorf("seed %s: %w", t.table, err))
		}
	}
	// Points that no journey gave (earned by orders) outnumber the rest.
	if _, err := st.Pool().Exec(ctx, `
		INSERT INTO points_ledger (key, customer_id, delta, reason, balance_after, at)
		SELECT 'order/' || g, 's' || lpad((g::bigint * 7919 % $1)::text, 7, '0'), 10, 'order', 10, $2::timestamptz - (g % 395) * interval '1 day'
		FROM generate_series(1, $3) g`, c.reportCustomers, now, c.reportEnrollments*3); err != nil {
		return fail(fmt.Errorf("seed order points: %w", err))
	}
	fmt.Printf("seeded:  %d enrollments (%s), %d step records, %d messages, %d message events, %d points, %d coupons, %d tasks with COPY in %s\n",
		len(js.rows.enrollments), playbookCounts(db.enrollments), len(js.rows.steps), len(js.rows.messages), len(js.rows.messageEvents),
		len(js.rows.points)+c.reportEnrollments*3, len(js.rows.coupons), len(js.rows.tasks), time.Since(start).Round(time.Millisecond))
	// The events: provider events about the messages, and the customers' own.
	from := now.Add(-reportWindow)
	if err := st.EnsureEventMonths(ctx, from, now); err != nil {
		return fail(err)
	}
	start = time.Now()
	if _, err := st.Pool().CopyFrom(ctx, pgx.Identifier{"events"}, eventColumns, pgx.CopyFromRows(js.rows.events)); err != nil {
		return fail(fmt.Errorf("seed message events: %w", err))
	}
	own := max(c.reportEvents-len(js.rows.events), 0)
	rows := &behaviourRows{n: own, customers: c.reportCustomers, from: from, r: rand.New(rand.NewPCG(15, 4))}
	if _, err := st.Pool().CopyFrom(ctx, pgx.Identifier{"events"}, eventColumns, rows); err != nil {
		return fail(fmt.Errorf("seed events: %w", err))
	}
	copied := time.Since(start)
	if _, err := st.Pool().Exec(ctx, `INSERT INTO event_ids (id, customer_id, time, received_at, dispatched_at)
		SELECT id, customer_id, time, received_at, received_at FROM events`); err != nil {
		return fail(fmt.Errorf("seed event_ids: %w", err))
	}
	var months int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_partition_tree('events') WHERE isleaf`).Scan(&months); err != nil {
		return fail(err)
	}
	fmt.Printf("seeded:  %d events (%d about messages) in %d monthly partitions with COPY in %s, event_ids from them in %s\n",
		own+len(js.rows.events), len(js.rows.events), months, copied.Round(time.Millisecond), (time.Since(start) - copied).Round(time.Millisecond))
	start = time.Now()
	if _, err := st.Pool().Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return fail(fmt.Errorf("vacuum: %w", err))
	}
	fmt.Printf("vacuum:  VACUUM ANALYZE in %s\n", time.Since(start).Round(time.Millisecond))
	if c.reportKeep {
		db.cleanup = st.Close
		fmt.Printf("kept:    %s (-report-keep: drop it yourself)\n", db.url)
	}
	return db, nil
}

func playbookCounts(m map[string]int) string {
	var parts []string
	for _, p := range reportPlaybooks {
		parts = append(parts, fmt.Sprintf("%s %d", p.name, m[p.name]))
	}
	return strings.Join(parts, ", ") + " admitted"
}

// reportCases are the reports timed: the one, with --since, and
// every playbook's.
var reportCases = [][]string{{"winback"}, {"winback", "--since", "90d"}, {}}

// benchReport is part report.
func benchReport(ctx context.Context, c config) error {
	fmt.Printf("\n== report: rapport report over %d customers, %d events, %d enrollments (13 months)\n",
		c.reportCustomers, c.reportEvents, c.reportEnrollments)
	bin, removeBin, err := rapportBinary(ctx, c.rapportBin)
	if err != nil {
		return err
	}
	defer removeBin()
	var schema int64
	if c.reportBefore != "" {
		schema = c.reportBeforeSchema
	}
	db, err := seedReport(ctx, c, schema)
	if err != nil {
		return err
	}
	defer db.cleanup()
	var before map[string]string
	if c.reportBefore != "" {
		fmt.Printf("before:  %s on the schema at migration %d\n", c.reportBefore, schema)
		if before, err = timeReports(ctx, c, db, c.reportBefore); err != nil {
			return err
		}
		start := time.Now()
		if err := store.Migrate(ctx, db.url); err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
		took := time.Since(start)
		if _, err := db.st.Pool().Exec(ctx, `ANALYZE`); err != nil {
			return err
		}
		fmt.Printf("migrate: migrations after %d applied in %s (then ANALYZE)\n", schema, took.Round(time.Millisecond))
	}
	fmt.Printf("after:   %s\n", bin)
	after, err := timeReports(ctx, c, db, bin)
	if err != nil {
		return err
	}
	for _, args := range reportCases {
		k := strings.Join(args, " ")
		if before != nil && before[k] != after[k] {
			return fmt.Errorf("rapport report %s: the two releases print different reports:\n--- before\n%s\n--- after\n%s", k, before[k], after[k])
		}
	}
	if before != nil {
		fmt.Printf("same:    both releases print the same reports, line for line\n")
		if err := pairedReports(ctx, c, db, c.reportBefore, bin); err != nil {
			return err
		}
	}
	if err := inProcessReport(ctx, c, db); err != nil {
		return err
	}
	fmt.Printf("\n%s", after["winback"])
	return nil
}

// timeReports runs bin's `report` for every case: one untimed run, then
// -report-runs timed ones. It returns each case's output without its
// first line (which carries the time it was generated).
func timeReports(ctx context.Context, c config, db *reportDB, bin string) (map[string]string, error) {
	out := map[string]string{}
	for _, args := range reportCases {
		var runs []time.Duration
		var text string
		for i := range c.reportRuns + 1 {
			cmd := exec.CommandContext(ctx, bin, append([]string{"report"}, args...)...)
			cmd.Env = append(os.Environ(), "DATABASE_URL="+db.url)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			if err := cmd.Run(); err != nil {
				return nil, fmt.Errorf("rapport report %s: %w: %s", strings.Join(args, " "), err, stderr.String())
			}
			if i > 0 {
				runs = append(runs, time.Since(start))
			}
			_, text, _ = strings.Cut(stdout.String(), "\n")
		}
		out[strings.Join(args, " ")] = text
		fmt.Printf("  rapport report %-22s median %s, best %s, worst %s (runs %s)\n", strings.Join(args, " "),
			median(runs).Round(time.Millisecond), slices.Min(runs).Round(time.Millisecond), slices.Max(runs).Round(time.Millisecond), roundMillis(runs))
	}
	return out, nil
}

// pairedReports runs `report winback` with the earlier release and this
// one in turn, -report-runs pairs on the migrated schema, and prints the
// median of each pair's ratio: the two releases' code on the same indexes,
// each pair under the same load (the before and after timings above run
// minutes apart, and a load that drifts in between moves their ratio).
func pairedReports(ctx context.Context, c config, db *reportDB, before, after string) error {
	run := func(bin string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, bin, "report", "winback")
		cmd.Env = append(os.Environ(), "DATABASE_URL="+db.url)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("%s report winback: %w: %s", bin, err, stderr.String())
		}
		return time.Since(start), nil
	}
	var ratios, bs, as []time.Duration
	for range c.reportRuns {
		b, err := run(before)
		if err != nil {
			return err
		}
		a, err := run(after)
		if err != nil {
			return err
		}
		bs, as = append(bs, b), append(as, a)
		ratios = append(ratios, time.Duration(float64(time.Second)*a.Seconds()/b.Seconds()))
	}
	fmt.Printf("paired:  report winback on the migrated schema, earlier release then this one, %d pairs: median %s vs %s, after/before %.2f (median of the pairs' ratios)\n",
		len(ratios), median(bs).Round(time.Millisecond), median(as).Round(time.Millisecond), median(ratios).Seconds())
	return nil
}

// inProcessReport times what the command does inside the process
// (store.ReportInput, report.Build, the text), without starting a
// process or connecting, for the winback report.
func inProcessReport(ctx context.Context, c config, db *reportDB) error {
	var runs []time.Duration
	for i := range c.reportRuns + 1 {
		start := time.Now()
		in, err := db.st.ReportInput(ctx, store.ReportQuery{Playbook: "winback"})
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := report.WriteText(&b, report.Build(in)); err != nil {
			return err
		}
		if i > 0 {
			runs = append(runs, time.Since(start))
		}
		if n := in.Outcomes; i == 0 {
			enrolled := 0
			for _, o := range n {
				enrolled += o.Count
			}
			if enrolled != db.enrollments["winback"] {
				return fmt.Errorf("the report counts %d winback enrollments, %d were seeded", enrolled, db.enrollments["winback"])
			}
		}
	}
	fmt.Printf("in-process: ReportInput + Build + WriteText for winback, median %s, best %s\n",
		median(runs).Round(time.Millisecond), slices.Min(runs).Round(time.Millisecond))
	return nil
}

// rapportBinary is bin, or the rapport command built from this tree into
// a temporary folder that remove deletes.
func rapportBinary(ctx context.Context, bin string) (path string, remove func(), err error) {
	if bin != "" {
		return bin, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "rapport-bench-")
	if err != nil {
		return "", nil, err
	}
	remove = func() { _ = os.RemoveAll(dir) }
	bin = filepath.Join(dir, "rapport")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/rapport")
	if out, err := cmd.CombinedOutput(); err != nil {
		remove()
		return "", nil, fmt.Errorf("go build ./cmd/rapport (run the bench from the repository's root): %w\n%s", err, out)
	}
	return bin, remove, nil
}

func roundMillis(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
