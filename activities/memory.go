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
	// suppressed holds the suppression list: reason by channel and
	// normalized address.
	suppressed map[[2]string]string

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
	steps       []StepRecord
	stepKeys    map[string]bool

	events        map[string]bool      // IDs of recorded events
	firstPurchase map[string]time.Time // by customer, as the store's first_purchase_at

	// GlobalControlPct is the global control group's share in percent, the
	// store's setting rapport.global_control_pct (0 to 50; default 0).
	GlobalControlPct float64
	// GlobalControlDraw, when set, says who is in the global control group
	// in place of the share's draw (InGlobalControl), so that a playbook
	// test can put its customer in the group or out of it whatever the
	// customer's id hashes to. Only whether the playbook takes part is
	// then decided as production decides it.
	GlobalControlDraw func(customerID string) bool
	// GlobalCapMax and GlobalCapPer are the operator's frequency cap per
	// customer and channel across all playbooks, the store's
	// RAPPORT_FREQUENCY_CAP. NewMemory leaves it off (0); `rapport
	// simulate` sets production's default.
	GlobalCapMax int
	GlobalCapPer time.Duration
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
	CustomerID    string     `json:"customer_id"`
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
// every channel and topic until SetConsent says otherwise, and the global
// frequency cap is off.
func NewMemory() *Memory {
	return &Memory{
		customers:  map[string]rules.Customer{},
		consent:    map[consentKey]bool{},
		suppressed: map[[2]string]string{},
		sent:       map[string]SendResult{},
		points:     map[string]PointsResult{},
		issued:     map[string]rules.Coupon{},
		created:    map[string]TaskResult{},
		updated:    map[string]bool{},
		byID:       map[string]*EnrollmentRecord{},
		stepKeys:   map[string]bool{},

		events:        map[string]bool{},
		firstPurchase: map[string]time.Time{},
	}
}

// Put stores (or replaces) a customer profile.
func (m *Memory) Put(c rules.Customer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.customers[c.ID] = cloneCustomer(c)
}

// RecordEvent stores a customer event the way the event API and
// store.InsertEvent do before a journey hears of it: once per event ID
// (false for a duplicate, which changes nothing), creating an unknown
// customer bare, and updating the purchase metrics for a purchase
// (ApplyPurchase) or a refund (ApplyRefund) — the events DefaultCommerce
// names, as store.InsertEvent counts them. The simulator calls it so that
// rules judging an event see the profile as it will be in production.
func (m *Memory) RecordEvent(customerID string, ev rules.Event) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ev.ID != "" {
		if m.events[ev.ID] {
			return false
		}
		m.events[ev.ID] = true
	}
	c, ok := m.customers[customerID]
	if !ok {
		c = rules.Customer{ID: customerID}
	}
	switch DefaultCommerce().Effect(ev.Name) { // as store.InsertEvent counts them
	case Purchase:
		first := m.firstPurchase[customerID]
		ApplyPurchase(&c, &first, ev.Amount, ev.Time)
		m.firstPurchase[customerID] = first
	case Refund:
		ApplyRefund(&c, ev.Amount)
	}
	m.customers[customerID] = c
	return true
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

// Suppress puts an address on the suppression list with a reason
// (ReasonHardBounce, ReasonComplaint, ReasonSoftBounces), as the store
// does for a provider's bounce or complaint.
func (m *Memory) Suppress(channel, address, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.suppressed[[2]string{channel, NormalAddress(channel, address)}] = reason
}

// LoadCustomer returns the stored profile; an unknown customer is a
// permanent failure.
func (m *Memory) LoadCustomer(_ context.Context, customerID string) (rules.Customer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.customer(customerID)
}

// customer is a copy of the stored profile of id; the caller holds the
// lock.
func (m *Memory) customer(id string) (rules.Customer, error) {
	c, ok := m.customers[id]
	if !ok {
		return rules.Customer{}, fmt.Errorf("load customer %q: not found: %w", id, ErrPermanent)
	}
	return cloneCustomer(c), nil
}

// RecordStart admits an enrollment under the re-entry policy, as the
// store does: CheckEntry, then DecideEntry on the customer's enrollments
// of the playbook, then the global control draw for a new admission.
// Refusals are not recorded; asking again decides again.
func (m *Memory) RecordStart(_ context.Context, r EntryRequest) (EntryResult, error) {
	if err := CheckEntry(r); err != nil {
		return EntryResult{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	res := DecideEntry(r, m.entryFacts(r))
	if !res.Admitted {
		return res, nil
	}
	if r.WithCustomer {
		c, err := m.customer(r.Enrollment.CustomerID)
		if err != nil {
			return EntryResult{}, fmt.Errorf("record start of %s: %w", r.Enrollment.ID, err)
		}
		res.Customer = &c
	}
	if m.byID[r.Enrollment.ID] != nil {
		return res, nil
	}
	if r.GlobalControl && (m.GlobalControlPct < 0 || m.GlobalControlPct > MaxGlobalControlPct) {
		return EntryResult{}, fmt.Errorf("record start of %s: global control group %g%%; keep it between 0 and %d percent", r.Enrollment.ID, m.GlobalControlPct, MaxGlobalControlPct)
	}
	if r.GlobalControl && m.inGlobalControl(r.Enrollment.CustomerID) {
		res.GlobalControl = true
		r.Enrollment.Holdout = true // recorded as the store records it
	}
	rec := &EnrollmentRecord{Enrollment: r.Enrollment, Status: StatusActive, StartedAt: r.At, TriggerID: r.TriggerID, GlobalControl: res.GlobalControl}
	m.enrollments = append(m.enrollments, rec)
	m.byID[r.Enrollment.ID] = rec
	return res, nil
}

// inGlobalControl draws customerID for the global control group:
// GlobalControlDraw when set, else the share's hash as the store draws.
func (m *Memory) inGlobalControl(customerID string) bool {
	if m.GlobalControlDraw != nil {
		return m.GlobalControlDraw(customerID)
	}
	return InGlobalControl(customerID, m.GlobalControlPct)
}

// entryFacts gathers what DecideEntry needs; the caller holds the lock.
func (m *Memory) entryFacts(r EntryRequest) EntryFacts {
	var f EntryFacts
	if rec := m.byID[r.Enrollment.ID]; rec != nil {
		f.Existing, f.ExistingGlobalControl = rec.Status, rec.GlobalControl
	}
	for _, e := range m.enrollments {
		if e.Enrollment.Playbook != r.Enrollment.Playbook || e.Enrollment.CustomerID != r.Enrollment.CustomerID || e.Enrollment.ID == r.Enrollment.ID {
			continue
		}
		if r.TriggerID != "" && e.TriggerID == r.TriggerID {
			f.SameTrigger = true
		}
		if e.Status == StatusRejected {
			continue
		}
		f.Earlier = true
		f.Active = f.Active || e.Status == StatusActive
		if e.StartedAt.After(f.Last) {
			f.Last = e.StartedAt
		}
	}
	return f
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
// conversion wins, so a retried call changes nothing; an enrollment that
// has ended keeps what it had.
func (m *Memory) RecordConversion(_ context.Context, c Conversion) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.byID[c.Enrollment.ID]
	if !ok {
		return fmt.Errorf("record conversion of enrollment %q: not started: %w", c.Enrollment.ID, ErrPermanent)
	}
	if rec.Status == StatusActive {
		rec.convert(c.At, c.Event)
	}
	return nil
}

// convert records the first conversion of an enrollment.
func (rec *EnrollmentRecord) convert(at time.Time, event string) {
	if rec.ConvertedAt.IsZero() {
		rec.ConvertedAt, rec.ConversionEvent = at, event
	}
}

// RecordOutcome closes an enrollment; a status that is not final is a
// permanent failure. The first outcome wins, so a retried or replayed call
// changes nothing. A converted outcome converts the enrollment too, if it
// had not converted before.
func (m *Memory) RecordOutcome(_ context.Context, o Outcome) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch o.Status {
	case StatusCompleted, StatusConverted, StatusExited, StatusFailed, StatusRejected:
	default:
		return fmt.Errorf("record outcome of enrollment %s: %q is not a final status: %w", o.Enrollment.ID, o.Status, ErrPermanent)
	}
	rec, ok := m.byID[o.Enrollment.ID]
	if !ok {
		// Never admitted by RecordStart (a journey refused before it
		// began): recorded closed, as the store records it.
		if _, known := m.customers[o.Enrollment.CustomerID]; !known {
			return fmt.Errorf("record outcome of enrollment %s: customer %q not found: %w", o.Enrollment.ID, o.Enrollment.CustomerID, ErrPermanent)
		}
		rec = &EnrollmentRecord{Enrollment: o.Enrollment, Status: o.Status, Reason: o.Reason, StartedAt: o.At, EndedAt: o.At}
		m.enrollments = append(m.enrollments, rec)
		m.byID[o.Enrollment.ID] = rec
		return nil
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

// SendMessage decides, renders and logs a message once per Key, as the
// store does: an unknown customer is a permanent failure; DecideSend
// decides on the facts (the address as stored now, consent for the topic
// or "*", the messages each cap counts); a message that passes is
// rendered, and one whose template cannot be rendered is recorded failed
// (render_error). A deferred answer is not remembered, so asking again
// with the same Key after RetryAt gets a fresh decision.
func (m *Memory) SendMessage(_ context.Context, r SendRequest) (SendResult, error) {
	if r.Topic == "" {
		r.Topic = DefaultTopic
	}
	customerID := r.Customer.ID
	if customerID == "" {
		customerID = r.Enrollment.CustomerID
	}
	if r.Key == "" || customerID == "" {
		return SendResult{}, fmt.Errorf("send %s/%s: key and customer are required: %w", r.Channel, r.Template, ErrPermanent)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if res, ok := m.sent[r.Key]; ok {
		return res, nil
	}
	c, ok := m.customers[customerID]
	if !ok {
		return SendResult{}, fmt.Errorf("send %s: customer %q not found: %w", r.Key, customerID, ErrPermanent)
	}
	to := Recipient(r.Channel, customerID, c.Email, c.Phone)
	status, reason, retryAt := DecideSend(r, m.sendFacts(r, customerID, to))
	if status == SendDeferred {
		return SendResult{Status: status, Reason: reason, RetryAt: retryAt}, nil
	}
	res := SendResult{Status: status, Reason: reason, To: to}
	var out engine.Rendered
	if status == "" {
		env := rules.NewEnv(r.Customer, r.Event, r.Now)
		env.Coupon, env.UnsubscribeURL = r.Coupon, "https://example.invalid/u/"+r.Key
		var err error
		if out, err = engine.RenderMessage(engine.Message{Subject: r.Subject, Text: r.Text, HTML: r.HTML}, &env); err != nil {
			res.Status, res.Reason = SendFailed, ReasonRenderError
		} else {
			res.Status, res.ProviderID = SendSent, "mem-"+shortHash(r.Key, 10)
		}
	}
	m.sent[r.Key] = res
	m.messages = append(m.messages, Message{
		Key: r.Key, Enrollment: r.Enrollment, StepID: r.StepID, Channel: r.Channel,
		Template: r.Template, Locale: r.Locale, Topic: r.Topic, Transactional: r.Transactional,
		Status: res.Status, Reason: res.Reason, To: res.To, CustomerID: customerID,
		Subject: out.Subject, Text: out.Text, HTML: out.HTML, At: r.Now,
	})
	return res, nil
}

// sendFacts gathers what DecideSend needs; the caller holds the lock. The
// caps count the marketing messages sent (Memory delivers at once, so
// sent is the store's queued or sent).
func (m *Memory) sendFacts(r SendRequest, customerID, to string) SendFacts {
	f := SendFacts{Recipient: to, Consent: true}
	f.Suppressed = m.suppressed[[2]string{r.Channel, NormalAddress(r.Channel, to)}]
	if r.Transactional {
		return f
	}
	lookup := func(topic string) *bool {
		if ok, set := m.consent[consentKey{customerID, r.Channel, topic}]; set {
			return &ok
		}
		return nil
	}
	f.Consent = ConsentOf(lookup(r.Topic), lookup(AllTopics))
	var global, playbook []time.Time
	for _, msg := range m.messages {
		if msg.Status != SendSent || msg.Transactional || msg.CustomerID != customerID {
			continue
		}
		if msg.Channel == r.Channel {
			global = append(global, msg.At)
		}
		if msg.Enrollment.Playbook == r.Enrollment.Playbook {
			playbook = append(playbook, msg.At)
		}
	}
	if m.GlobalCapMax > 0 && m.GlobalCapPer > 0 {
		f.Global = CapFacts{Max: m.GlobalCapMax, Per: m.GlobalCapPer, Counted: CapWindow(global, r.Now, m.GlobalCapPer)}
	}
	if r.CapMax > 0 && r.CapPer > 0 && r.Enrollment.Playbook != "" {
		f.Playbook = CapFacts{Max: r.CapMax, Per: r.CapPer, Counted: CapWindow(playbook, r.Now, r.CapPer)}
	}
	return f
}

// UpdateProfile applies a profile update once per Key. Set accepts the core
// fields of engine.ProfileFields and attrs.<name>.
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
	if !slices.Contains(engine.ProfileFields, field) {
		return fmt.Errorf("field %q cannot be set (use %s or attrs.%s)", field, strings.Join(engine.ProfileFields, ", "), field)
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
		return fmt.Errorf("field %q is in engine.ProfileFields but Memory cannot set it", field)
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

// IssueCoupon issues a coupon once per Key, as the store does, with a
// code of the store's shape (CouponCode) whose characters derive from the
// key, so it is unique per enrollment step and the same in every
// simulation. A request CheckCoupon refuses, or for an unknown customer,
// fails permanently.
func (m *Memory) IssueCoupon(_ context.Context, r CouponRequest) (rules.Coupon, error) {
	if err := CheckCoupon(r); err != nil {
		return rules.Coupon{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.issued[r.Key]; ok {
		return c, nil
	}
	if _, ok := m.customers[r.CustomerID]; !ok {
		return rules.Coupon{}, fmt.Errorf("issue coupon for customer %q: not found: %w", r.CustomerID, ErrPermanent)
	}
	sum := sha256.Sum256([]byte(r.Key))
	c := rules.Coupon{Code: CouponCode(r.Prefix, sum[:CouponCodeLength]), Value: r.Value, Kind: r.Kind, ExpiresAt: r.ExpiresAt}
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
