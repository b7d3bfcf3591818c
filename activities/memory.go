package activities

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// Memory implements All in memory, for tests and `rapport simulate`. It is
// safe for concurrent use. Every call that changes something is idempotent
// by its Key: a retried call returns the first call's result and changes
// nothing. It keeps the same policies the PostgreSQL store does (consent,
// holdout, frequency cap, re-entry), so a simulation shows what production
// would do.
type Memory struct {
	mu sync.Mutex

	customers map[string]rules.Customer
	consent   map[consentKey]bool

	messages []Message
	sent     map[string]SendResult // by Key; final results only (never deferred)

	ledger  []LedgerEntry
	points  map[string]PointsResult // by Key
	coupons []IssuedCoupon
	issued  map[string]rules.Coupon // by Key
	tasks   []Task
	created map[string]TaskResult // by Key
	updated map[string]bool       // Keys of applied profile updates

	enrollments []*EnrollmentRecord
	byID        map[string]*EnrollmentRecord
	entries     map[string]EntryResult // by enrollment ID, admitted or not
	steps       []StepRecord
	stepKeys    map[string]bool

	// GlobalControlPct is the global control group's share in percent, the
	// store's setting rapport.global_control_pct (0 to 50; default 0).
	GlobalControlPct float64
}

type consentKey struct{ customer, channel, topic string }

// Message is one entry of the contact log: what was (or was not) sent.
type Message struct {
	Key           string     `json:"key"`
	Enrollment    Enrollment `json:"enrollment"`
	StepID        string     `json:"step_id"`
	Channel       string     `json:"channel"`
	Template      string     `json:"template"`
	Locale        string     `json:"locale"`
	Topic         string     `json:"topic"`
	Transactional bool       `json:"transactional,omitempty"`
	Status        SendStatus `json:"status"`
	Reason        string     `json:"reason,omitempty"`
	To            string     `json:"to,omitempty"`
	Subject       string     `json:"subject,omitempty"`
	Text          string     `json:"text,omitempty"`
	HTML          string     `json:"html,omitempty"`
	At            time.Time  `json:"at"`
}

// LedgerEntry is one line of the points ledger.
type LedgerEntry struct {
	Key        string     `json:"key"`
	Enrollment Enrollment `json:"enrollment"`
	CustomerID string     `json:"customer_id"`
	Delta      int64      `json:"delta"`
	Reason     string     `json:"reason"`
	Balance    int64      `json:"balance"`
}

// IssuedCoupon is a coupon with the request that issued it.
type IssuedCoupon struct {
	rules.Coupon
	Key        string `json:"key"`
	CustomerID string `json:"customer_id"`
}

// Task is a created hand-off task.
type Task struct {
	TaskRequest
	ID string `json:"id"`
}

// EnrollmentRecord is one enrollment: admitted, then closed by an outcome.
type EnrollmentRecord struct {
	Enrollment Enrollment `json:"enrollment"`
	Status     Status     `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	StartedAt  time.Time  `json:"started_at"`
	EndedAt    time.Time  `json:"ended_at,omitzero"`
	TriggerID  string     `json:"trigger_id,omitempty"`
	// ConvertedAt and ConversionEvent: when the enrollment reached its
	// goal, and the goal event (zero when it has not).
	ConvertedAt     time.Time `json:"converted_at,omitzero"`
	ConversionEvent string    `json:"conversion_event,omitempty"`
	// GlobalControl: the customer is in the global control group.
	GlobalControl bool `json:"global_control,omitempty"`
}

// NewMemory returns an empty store. Every customer has given consent on
// every channel and topic until SetConsent says otherwise.
func NewMemory() *Memory {
	return &Memory{
		customers: map[string]rules.Customer{},
		consent:   map[consentKey]bool{},
		sent:      map[string]SendResult{},
		points:    map[string]PointsResult{},
		issued:    map[string]rules.Coupon{},
		created:   map[string]TaskResult{},
		updated:   map[string]bool{},
		byID:      map[string]*EnrollmentRecord{},
		entries:   map[string]EntryResult{},
		stepKeys:  map[string]bool{},
	}
}

// Put stores (or replaces) a customer profile.
func (m *Memory) Put(c rules.Customer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.customers[c.ID] = cloneCustomer(c)
}

// RecordEvent applies a customer event to the profile the way the event API
// and store.InsertEvent do before a journey hears of it: a purchase raises
// the order count, lifetime value and average order value and moves the
// last purchase time. The simulator calls it so that rules judging an event
// see the profile as it will be in production.
func (m *Memory) RecordEvent(customerID string, ev rules.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.customers[customerID]
	if !ok || ev.Name != "purchase" {
		return
	}
	first := c.LastPurchaseAt
	if c.OrderCount > 1 && c.PurchaseGap > 0 {
		first = c.LastPurchaseAt.Add(-time.Duration(c.PurchaseGap * float64(c.OrderCount-1) * float64(24*time.Hour)))
	}
	c.OrderCount++
	c.LifetimeValue += ev.Amount
	c.AvgOrderValue = c.LifetimeValue / float64(c.OrderCount)
	if ev.Time.After(c.LastPurchaseAt) {
		c.LastPurchaseAt = ev.Time
	}
	if c.OrderCount > 1 && !first.IsZero() {
		c.PurchaseGap = c.LastPurchaseAt.Sub(first).Hours() / 24 / float64(c.OrderCount-1)
	}
	m.customers[customerID] = c
}

// Customer returns the stored profile of id.
func (m *Memory) Customer(id string) (rules.Customer, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.customers[id]
	return cloneCustomer(c), ok
}

// SetConsent records whether customer agrees to messages of topic on
// channel. Transactional messages ignore it.
func (m *Memory) SetConsent(customer, channel, topic string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.consent[consentKey{customer, channel, topic}] = ok
}

// LoadCustomer returns the stored profile; an unknown customer is a
// permanent failure.
func (m *Memory) LoadCustomer(_ context.Context, customerID string) (rules.Customer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.customers[customerID]
	if !ok {
		return rules.Customer{}, fmt.Errorf("load customer %q: not found: %w", customerID, ErrPermanent)
	}
	return cloneCustomer(c), nil
}

// RecordStart admits an enrollment under the re-entry policy. Enrollments
// that ended "rejected" (turned away by the audience rule) do not count as
// earlier entries: a customer outside the audience today may enter later.
// Any policy refuses while another enrollment of the playbook is active.
func (m *Memory) RecordStart(_ context.Context, r EntryRequest) (EntryResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if res, ok := m.entries[r.Enrollment.ID]; ok {
		return res, nil
	}
	if r.GlobalControl && (m.GlobalControlPct < 0 || m.GlobalControlPct > MaxGlobalControlPct) {
		return EntryResult{}, fmt.Errorf("record start of %s: global control group %g%%; keep it between 0 and %d percent", r.Enrollment.ID, m.GlobalControlPct, MaxGlobalControlPct)
	}
	res := m.admit(r)
	if res.Admitted && r.GlobalControl && InGlobalControl(r.Enrollment.CustomerID, m.GlobalControlPct) {
		res.GlobalControl = true
		r.Enrollment.Holdout = true // recorded as the store records it
	}
	m.entries[r.Enrollment.ID] = res
	if res.Admitted {
		rec := &EnrollmentRecord{Enrollment: r.Enrollment, Status: StatusActive, StartedAt: r.At, TriggerID: r.TriggerID, GlobalControl: res.GlobalControl}
		m.enrollments = append(m.enrollments, rec)
		m.byID[r.Enrollment.ID] = rec
	}
	return res, nil
}

// admit applies the re-entry policy to the earlier enrollments of the same
// customer in the same playbook.
func (m *Memory) admit(r EntryRequest) EntryResult {
	var last *EnrollmentRecord
	for _, e := range m.enrollments {
		if e.Enrollment.Playbook != r.Enrollment.Playbook || e.Enrollment.CustomerID != r.Enrollment.CustomerID || e.Status == StatusRejected {
			continue
		}
		if r.TriggerID != "" && e.TriggerID == r.TriggerID {
			return EntryResult{Reason: ReasonDuplicateTrigger}
		}
		if e.Status == StatusActive {
			return EntryResult{Reason: "already_active"}
		}
		if last == nil || e.StartedAt.After(last.StartedAt) {
			last = e
		}
	}
	if last == nil {
		return EntryResult{Admitted: true}
	}
	switch r.Reentry {
	case "always":
		return EntryResult{Admitted: true}
	case "after":
		if r.At.Sub(last.StartedAt) >= r.Cooldown {
			return EntryResult{Admitted: true}
		}
		return EntryResult{Reason: "cooldown"}
	default: // never, or unset
		return EntryResult{Reason: "reentry_never"}
	}
}

// RecordStep appends a step record once per Key.
func (m *Memory) RecordStep(_ context.Context, s StepRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stepKeys[s.Key] {
		return nil
	}
	m.stepKeys[s.Key] = true
	m.steps = append(m.steps, s)
	return nil
}

// RecordConversion marks an active enrollment converted. The first
// conversion wins, so a retried call changes nothing.
func (m *Memory) RecordConversion(_ context.Context, c Conversion) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.byID[c.Enrollment.ID]
	if !ok {
		return fmt.Errorf("record conversion of enrollment %q: not started: %w", c.Enrollment.ID, ErrPermanent)
	}
	rec.convert(c.At, c.Event)
	return nil
}

// convert records the first conversion of an enrollment.
func (rec *EnrollmentRecord) convert(at time.Time, event string) {
	if rec.ConvertedAt.IsZero() {
		rec.ConvertedAt, rec.ConversionEvent = at, event
	}
}

// RecordOutcome closes an enrollment. The first outcome wins, so a retried
// or replayed call changes nothing. A converted outcome converts the
// enrollment too, if it had not converted before.
func (m *Memory) RecordOutcome(_ context.Context, o Outcome) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.byID[o.Enrollment.ID]
	if !ok {
		return fmt.Errorf("record outcome of enrollment %q: not started: %w", o.Enrollment.ID, ErrPermanent)
	}
	if rec.Status != StatusActive {
		return nil
	}
	rec.Status, rec.Reason, rec.EndedAt = o.Status, o.Reason, o.At
	if o.Status == StatusConverted {
		rec.convert(o.At, o.Goal)
	}
	return nil
}

// SendMessage renders and logs a message. In order, a non-transactional
// message is suppressed for a holdout enrollment, for missing consent, or
// over the playbook's frequency cap (or deferred, when the cap says defer);
// any message is suppressed when the customer has no address on the
// channel. A deferred answer is not remembered, so asking again with the
// same Key after RetryAt gets a fresh decision.
func (m *Memory) SendMessage(_ context.Context, r SendRequest) (SendResult, error) {
	unsubscribe := "https://example.invalid/u/" + r.Key
	env := rules.NewEnv(r.Customer, r.Event, r.Now)
	env.Coupon, env.UnsubscribeURL = r.Coupon, unsubscribe
	out, err := engine.RenderMessage(engine.Message{Subject: r.Subject, Text: r.Text, HTML: r.HTML}, &env)
	if err != nil {
		return SendResult{}, fmt.Errorf("render template %s (%s) for step %s: %v: %w", r.Template, r.Locale, r.StepID, err, ErrPermanent)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if res, ok := m.sent[r.Key]; ok {
		return res, nil
	}
	res := m.decide(r)
	if res.Status == SendDeferred {
		return res, nil
	}
	if res.Status == SendSent {
		res.ProviderID = "mem-" + shortHash(r.Key, 10)
	}
	m.sent[r.Key] = res
	m.messages = append(m.messages, Message{
		Key: r.Key, Enrollment: r.Enrollment, StepID: r.StepID, Channel: r.Channel,
		Template: r.Template, Locale: r.Locale, Topic: r.Topic, Transactional: r.Transactional,
		Status: res.Status, Reason: res.Reason, To: res.To,
		Subject: out.Subject, Text: out.Text, HTML: out.HTML, At: r.Now,
	})
	return res, nil
}

// decide applies the send policies; the caller holds the lock.
func (m *Memory) decide(r SendRequest) SendResult {
	if r.Enrollment.Holdout { // a holdout receives nothing, transactional included
		return SendResult{Status: SendSuppressed, Reason: ReasonHoldout}
	}
	if !r.Transactional {
		if ok, set := m.consent[consentKey{r.Customer.ID, r.Channel, r.Topic}]; set && !ok {
			return SendResult{Status: SendSuppressed, Reason: ReasonConsent}
		}
	}
	to := address(r.Channel, r.Customer)
	if to == "" && r.Channel != "webhook" {
		return SendResult{Status: SendSuppressed, Reason: ReasonNoAddress}
	}
	if !r.Transactional && r.CapMax > 0 {
		if n, oldest := m.sentWithin(r); n >= r.CapMax {
			if r.CapDefer {
				return SendResult{Status: SendDeferred, Reason: ReasonFrequencyCap, RetryAt: oldest.Add(r.CapPer)}
			}
			return SendResult{Status: SendSuppressed, Reason: ReasonFrequencyCap}
		}
	}
	return SendResult{Status: SendSent, To: to}
}

// sentWithin counts the marketing messages of r's playbook sent to r's
// customer in the cap window ending at r.Now, and the time of the oldest.
func (m *Memory) sentWithin(r SendRequest) (int, time.Time) {
	from := r.Now.Add(-r.CapPer)
	n, oldest := 0, time.Time{}
	for _, msg := range m.messages {
		if msg.Status != SendSent || msg.Transactional || msg.Enrollment.Playbook != r.Enrollment.Playbook ||
			msg.Enrollment.CustomerID != r.Customer.ID || !msg.At.After(from) || msg.At.After(r.Now) {
			continue
		}
		if n == 0 || msg.At.Before(oldest) {
			oldest = msg.At
		}
		n++
	}
	return n, oldest
}

func address(channel string, c rules.Customer) string {
	switch channel {
	case "email":
		return c.Email
	case "sms":
		return c.Phone
	default:
		return c.ID
	}
}

// UpdateProfile applies a profile update once per Key. Set accepts the core
// fields name, locale, timezone and tier, and attrs.<name>.
func (m *Memory) UpdateProfile(_ context.Context, u ProfileUpdate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.updated[u.Key] {
		return nil
	}
	c, ok := m.customers[u.CustomerID]
	if !ok {
		return fmt.Errorf("update profile %q: customer not found: %w", u.CustomerID, ErrPermanent)
	}
	c = cloneCustomer(c)
	for field, v := range u.Set {
		if err := setField(&c, field, v); err != nil {
			return fmt.Errorf("update profile %q (step key %s): %v: %w", u.CustomerID, u.Key, err, ErrPermanent)
		}
	}
	for _, t := range u.AddTags {
		if !slices.Contains(c.Tags, t) {
			c.Tags = append(c.Tags, t)
		}
	}
	c.Tags = slices.DeleteFunc(c.Tags, func(t string) bool { return slices.Contains(u.RemoveTags, t) })
	if u.Tier != "" {
		c.Tier = u.Tier
	}
	if u.Stage != "" {
		c.Stage = u.Stage
	}
	m.customers[u.CustomerID] = c
	m.updated[u.Key] = true
	return nil
}

func setField(c *rules.Customer, field string, v any) error {
	if name, ok := strings.CutPrefix(field, "attrs."); ok {
		if c.Attrs == nil {
			c.Attrs = map[string]any{}
		}
		c.Attrs[name] = v
		return nil
	}
	s := rules.Format(v)
	switch field {
	case "name":
		c.Name = s
	case "locale":
		c.Locale = s
	case "timezone":
		c.Timezone = s
	case "tier":
		c.Tier = s
	default:
		return fmt.Errorf("cannot set field %q (use name, locale, timezone, tier or attrs.<name>)", field)
	}
	return nil
}

// AdjustPoints appends to the ledger once per Key and keeps the customer's
// points balance in step with it, as the store does: a change out of the
// bounds of CheckPoints fails permanently, and a deduction larger than the
// balance is refused whole (RefuseDeduction) and changes nothing; asked
// again, it is decided again.
func (m *Memory) AdjustPoints(_ context.Context, r PointsRequest) (PointsResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if res, ok := m.points[r.Key]; ok {
		return res, nil
	}
	if err := CheckPoints(r); err != nil {
		return PointsResult{}, err
	}
	c, ok := m.customers[r.CustomerID]
	if !ok {
		return PointsResult{}, fmt.Errorf("adjust points of %q: customer not found: %w", r.CustomerID, ErrPermanent)
	}
	if err := RefuseDeduction(c.Points, r.Delta); err != nil {
		return PointsResult{}, err
	}
	c.Points += r.Delta
	m.customers[r.CustomerID] = c
	m.ledger = append(m.ledger, LedgerEntry{Key: r.Key, Enrollment: r.Enrollment, CustomerID: r.CustomerID, Delta: r.Delta, Reason: r.Reason, Balance: c.Points})
	res := PointsResult{Balance: c.Points}
	m.points[r.Key] = res
	return res, nil
}

// IssueCoupon issues a coupon once per Key. The code is the prefix and a
// suffix derived from the key, so it is unique per enrollment step and the
// same on every retry. A value out of the bounds of CheckCoupon fails
// permanently, as in the store.
func (m *Memory) IssueCoupon(_ context.Context, r CouponRequest) (rules.Coupon, error) {
	if err := CheckCoupon(r); err != nil {
		return rules.Coupon{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.issued[r.Key]; ok {
		return c, nil
	}
	code := shortHash(r.Key, 8)
	if r.Prefix != "" {
		code = r.Prefix + "-" + code
	}
	c := rules.Coupon{Code: code, Value: r.Value, Kind: r.Kind, ExpiresAt: r.ExpiresAt}
	m.issued[r.Key] = c
	m.coupons = append(m.coupons, IssuedCoupon{Coupon: c, Key: r.Key, CustomerID: r.CustomerID})
	return c, nil
}

// CreateTask creates a task once per Key.
func (m *Memory) CreateTask(_ context.Context, r TaskRequest) (TaskResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if res, ok := m.created[r.Key]; ok {
		return res, nil
	}
	res := TaskResult{TaskID: "task-" + strings.ToLower(shortHash(r.Key, 10))}
	m.created[r.Key] = res
	m.tasks = append(m.tasks, Task{TaskRequest: r, ID: res.TaskID})
	return res, nil
}

// Messages returns the contact log in order.
func (m *Memory) Messages() []Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.messages)
}

// Ledger returns the points ledger of one customer in order.
func (m *Memory) Ledger(customerID string) []LedgerEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []LedgerEntry
	for _, e := range m.ledger {
		if e.CustomerID == customerID {
			out = append(out, e)
		}
	}
	return out
}

// Coupons returns every issued coupon in order.
func (m *Memory) Coupons() []IssuedCoupon {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.coupons)
}

// Tasks returns every created task in order.
func (m *Memory) Tasks() []Task {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.tasks)
}

// Enrollments returns copies of the admitted enrollments in order.
func (m *Memory) Enrollments() []EnrollmentRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]EnrollmentRecord, len(m.enrollments))
	for i, e := range m.enrollments {
		out[i] = *e
	}
	return out
}

// Steps returns the step records in order.
func (m *Memory) Steps() []StepRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.steps)
}

// shortHash is a stable, upper-case base32 digest of s, n characters long.
func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:])[:n]
}

// cloneCustomer copies the slices and maps of c so callers cannot change
// the stored profile through them.
func cloneCustomer(c rules.Customer) rules.Customer {
	c.Tags = slices.Clone(c.Tags)
	if c.Attrs != nil {
		attrs := make(map[string]any, len(c.Attrs))
		for k, v := range c.Attrs {
			attrs[k] = v
		}
		c.Attrs = attrs
	}
	return c
}

var _ All = (*Memory)(nil)
