// Package simfile reads the files `rapport simulate` and `rapport test`
// take: the customer file (JSON, schema/customer.schema.json, documented
// in docs/playbooks.md) and the events file (YAML). It is apart from
// package simulate so that tests of the journey workflow can read the
// sample files without linking the simulator.
package simfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
)

// Event is an event that happens At after the start of a simulation.
type Event struct {
	At    time.Duration
	Event rules.Event
	// Trigger marks an event meant to start an enrollment. When any event
	// is marked, the simulator does not make up a trigger event at the
	// start; a marked event that does not trigger the playbook is shown
	// as not admitted, with the reason. For a manual playbook a marked
	// entry is a start by POST /v1/enroll (its ID and props are the
	// request's), not an event.
	Trigger bool
	// Of names the send step a message event (message_opened …) is
	// about: the simulator fills in the props the provider's report
	// would carry (enrollment_id of the journey running then, step_id,
	// playbook, template, channel, provider) where the entry leaves them
	// out.
	Of string
}

// eventKeys are the keys of one entry of a simulation events file.
var eventKeys = []string{"at", "event", "id", "amount", "currency", "order_id", "category", "score", "props", "trigger", "of"}

// ParseEvents reads a simulation events file: a YAML list of
// {at: 5d, event: order_completed, amount: 42, ...}. `at` is the offset
// from the start ("0s" for the start itself); custom properties go under
// props, and without `amount` the amount is read from them as the event
// API reads it (revenue, total, subtotal, products …). An
// entry with `trigger: true` is meant to start an enrollment (at the
// start when it has no `at`); several may, to show re-entry. A message
// event may say which send step's message it is about with `of`. Errors
// name the file and line.
func ParseEvents(file string, data []byte) ([]Event, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	list := doc.Content[0]
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s:%d: expected a list of events like {at: 5d, event: order_completed}", file, list.Line)
	}
	var events []Event
	for i, n := range list.Content {
		se, err := ParseEvent(n, i+1)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, n.Line, err)
		}
		events = append(events, se)
	}
	sort.SliceStable(events, func(a, b int) bool { return events[a].At < events[b].At })
	return events, nil
}

// Split separates the first marked trigger event from the others, for
// callers that start one enrollment with it and signal the rest.
func Split(events []Event) (rest []Event, trigger *rules.Event) {
	for _, e := range events {
		if e.Trigger && trigger == nil {
			ev := e.Event
			trigger = &ev
			continue
		}
		rest = append(rest, e)
	}
	return rest, trigger
}

// ParseEvent reads one entry of an events file, the pos-th (1-based, for
// messages and the default ID sim-<pos>). It is exported for `rapport
// test`, whose cases hold their events inline and report errors at the
// entry's own line.
func ParseEvent(n *yaml.Node, pos int) (Event, error) {
	if n.Kind != yaml.MappingNode {
		return Event{}, fmt.Errorf("event %d: expected a mapping like {at: 5d, event: order_completed}", pos)
	}
	var raw struct {
		At       string         `yaml:"at"`
		Event    string         `yaml:"event"`
		ID       string         `yaml:"id"`
		Amount   *float64       `yaml:"amount"`
		Currency string         `yaml:"currency"`
		OrderID  string         `yaml:"order_id"`
		Category string         `yaml:"category"`
		Score    float64        `yaml:"score"`
		Props    map[string]any `yaml:"props"`
		Trigger  bool           `yaml:"trigger"`
		Of       string         `yaml:"of"`
	}
	for i := 0; i < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !slices.Contains(eventKeys, k) {
			return Event{}, fmt.Errorf("event %d: unknown key %q (known: %s; put custom properties under props)", pos, k, strings.Join(eventKeys, ", "))
		}
	}
	if err := n.Decode(&raw); err != nil {
		return Event{}, fmt.Errorf("event %d: %w", pos, err)
	}
	if raw.Event == "" {
		return Event{}, fmt.Errorf("event %d: missing key event (the event name)", pos)
	}
	var at time.Duration
	if raw.At != "" && raw.At != "0" {
		d, err := rules.ParseDuration(raw.At)
		if err != nil {
			return Event{}, fmt.Errorf("event %d: at: %w", pos, err)
		}
		at = d
	} else if raw.At == "" && !raw.Trigger {
		return Event{}, fmt.Errorf("event %d: missing key at (offset from the start, like 5d)", pos)
	}
	if raw.Of != "" && !rules.IsMessageEvent(raw.Event) {
		return Event{}, fmt.Errorf("event %d: of: only a message event (%s) is about a message; %s is not one", pos, strings.Join(rules.MessageEvents, ", "), raw.Event)
	}
	if raw.ID == "" {
		raw.ID = fmt.Sprintf("sim-%d", pos)
	}
	ev := rules.Event{ID: raw.ID, Name: raw.Event, Currency: raw.Currency, OrderID: raw.OrderID,
		Category: raw.Category, Score: raw.Score, Props: raw.Props}
	if raw.Amount != nil {
		ev.Amount = *raw.Amount
	} else {
		// No amount: it is read from the props as the event API reads it
		// from a track call's properties (an Order Completed's revenue,
		// total, subtotal or products), so event.amount is what
		// production would see.
		a, err := activities.DefaultCommerce().Amount(raw.Props)
		if err != nil {
			return Event{}, fmt.Errorf("event %d: props.%w", pos, err)
		}
		ev.Amount = a
	}
	return Event{At: at, Event: ev, Trigger: raw.Trigger, Of: raw.Of}, nil
}

// Consent is a customer's recorded decision for messages of a topic on a
// channel, as the store's consents table holds it. Topic "*" stands for
// every topic; a decision for the message's own topic wins over it.
type Consent struct {
	Channel string `json:"channel"`
	Topic   string `json:"topic"`
	Granted bool   `json:"granted"`
}

// Customer is a customer file: the profile and the consents.
type Customer struct {
	Customer rules.Customer
	Consents []Consent
}

// consentChannels are the channels a consent may name (the store's
// knownChannels).
var consentChannels = []string{"email", "sms", "webhook"}

// customerJSON is the customer file. Dates are strings, so that both
// YYYY-MM-DD and RFC 3339 are accepted.
type customerJSON struct {
	ID             string         `json:"id"`
	Email          string         `json:"email"`
	Phone          string         `json:"phone"`
	Name           string         `json:"name"`
	Locale         string         `json:"locale"`
	Timezone       string         `json:"timezone"`
	Tier           string         `json:"tier"`
	Stage          string         `json:"stage"`
	Points         int64          `json:"points"`
	LifetimeValue  float64        `json:"lifetime_value"`
	OrderCount     int64          `json:"order_count"`
	AvgOrderValue  float64        `json:"avg_order_value"`
	PurchaseGap    float64        `json:"purchase_gap_days"`
	ChurnRisk      bool           `json:"churn_risk"`
	LastPurchaseAt string         `json:"last_purchase_at"`
	Birthday       string         `json:"birthday"`
	SignupAt       string         `json:"signup_at"`
	Tags           []string       `json:"tags"`
	Attrs          map[string]any `json:"attrs"`
	Consents       []consentJSON  `json:"consents"`
}

// consentJSON is one consent of the file; every field is required.
type consentJSON struct {
	Channel *string `json:"channel"`
	Topic   *string `json:"topic"`
	Granted *bool   `json:"granted"`
}

// ParseCustomer reads a customer file (schema/customer.schema.json):
// the profile fields rules see, dates as YYYY-MM-DD (midnight UTC) or RFC
// 3339, and the consents. Unknown fields are errors; the id is required.
func ParseCustomer(file string, data []byte) (Customer, error) {
	var raw customerJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			want, given := fieldType(te.Field, te.Type), givenKind(te.Value)
			switch {
			case want.Kind() == reflect.Slice && te.Type == want.Elem():
				given = "a list holding " + given
			case want.Kind() == reflect.Slice && te.Value == "string":
				given = "a single text"
			}
			return Customer{}, fmt.Errorf("%s: %s: expected %s, not %s", file, te.Field, expectedKind(want), given)
		}
		return Customer{}, fmt.Errorf("%s: %w (the fields are described in docs/playbooks.md, \"The customer file\")", file, err)
	}
	if err := checkKeys(data); err != nil {
		return Customer{}, fmt.Errorf("%s: %w", file, err)
	}
	if raw.ID == "" {
		return Customer{}, fmt.Errorf("%s: the customer needs an id", file)
	}
	c := rules.Customer{
		ID: raw.ID, Email: raw.Email, Phone: raw.Phone, Name: raw.Name, Locale: raw.Locale, Timezone: raw.Timezone,
		Tier: raw.Tier, Stage: raw.Stage, Points: raw.Points, LifetimeValue: raw.LifetimeValue, OrderCount: raw.OrderCount,
		AvgOrderValue: raw.AvgOrderValue, PurchaseGap: raw.PurchaseGap, ChurnRisk: raw.ChurnRisk, Tags: raw.Tags, Attrs: raw.Attrs,
	}
	for _, d := range []struct {
		name string
		in   string
		out  *time.Time
	}{{"last_purchase_at", raw.LastPurchaseAt, &c.LastPurchaseAt}, {"birthday", raw.Birthday, &c.Birthday}, {"signup_at", raw.SignupAt, &c.SignupAt}} {
		if d.in == "" {
			continue // omitted (checkKeys refused an empty string)
		}
		t, err := ParseDate(d.in)
		if err != nil {
			return Customer{}, fmt.Errorf("%s: %s: %w", file, d.name, err)
		}
		*d.out = t
	}
	if raw.Points < 0 {
		return Customer{}, fmt.Errorf("%s: points: %d is negative; a balance never goes below zero", file, raw.Points)
	}
	if raw.OrderCount < 0 {
		return Customer{}, fmt.Errorf("%s: order_count: %d is negative", file, raw.OrderCount)
	}
	if raw.Timezone != "" {
		if _, err := time.LoadLocation(raw.Timezone); err != nil {
			return Customer{}, fmt.Errorf("%s: timezone: %q is not an IANA zone like Europe/Berlin", file, raw.Timezone)
		}
	}
	var consents []Consent
	for i, k := range raw.Consents {
		switch {
		case k.Channel == nil || k.Topic == nil || k.Granted == nil:
			return Customer{}, fmt.Errorf("%s: consents[%d]: channel, topic and granted are required", file, i)
		case !slices.Contains(consentChannels, *k.Channel):
			return Customer{}, fmt.Errorf("%s: consents[%d]: channel %q: want one of %s", file, i, *k.Channel, strings.Join(consentChannels, ", "))
		case *k.Topic == "":
			return Customer{}, fmt.Errorf("%s: consents[%d]: topic is required (a playbook's topic, or \"*\" for every topic)", file, i)
		}
		consents = append(consents, Consent{Channel: *k.Channel, Topic: *k.Topic, Granted: *k.Granted})
	}
	return Customer{Customer: c, Consents: consents}, nil
}

// checkKeys refuses what encoding/json lets through but the schema does
// not: a key in another case than the schema's ("ID" for "id"; Go matches
// names case-insensitively), and a date given as "" (omit it instead).
func checkKeys(data []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return err
	}
	for k, v := range top {
		if !slices.Contains(CustomerKeys, k) {
			return fmt.Errorf("unknown field %q (the fields are described in docs/playbooks.md, \"The customer file\")", k)
		}
		if slices.Contains(dateKeys, k) && string(v) == `""` {
			return fmt.Errorf("%s: an empty date; omit the field when it is not set", k)
		}
	}
	return nil
}

// expectedKind says in a marketer's words what a field of Go type t takes.
func expectedKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "text"
	case reflect.Slice:
		if k := t.Elem().Kind(); k == reflect.String {
			return "a list of text"
		}
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Pointer:
		return expectedKind(t.Elem())
	}
	return t.String()
}

// fieldType is the Go type of the customer file's top-level field named
// field, where encoding/json reports the type of a list's element (tags:
// [1] is a string expected): the field's own type names what is expected.
func fieldType(field string, reported reflect.Type) reflect.Type {
	t := reflect.TypeFor[customerJSON]()
	for i := range t.NumField() {
		if f := t.Field(i); strings.Split(f.Tag.Get("json"), ",")[0] == field && f.Type.Kind() == reflect.Slice && f.Type.Elem() == reported {
			return f.Type
		}
	}
	return reported
}

// givenKind names the kind of JSON value encoding/json reports ("string",
// "number", "number 1.5", "bool", "array", "object").
func givenKind(v string) string {
	switch kind, detail, _ := strings.Cut(v, " "); kind {
	case "string":
		return "text"
	case "number":
		if detail != "" {
			return "the number " + detail
		}
		return "a number"
	case "bool":
		return "true or false"
	case "array":
		return "a list"
	case "object":
		return "a mapping"
	}
	return v
}

// CustomerKeys are the fields of the customer file (exported for `rapport
// test`, which checks them with typo hints); dateKeys the dates.
var (
	CustomerKeys = []string{"id", "email", "phone", "name", "locale", "timezone", "tier", "stage", "points",
		"lifetime_value", "order_count", "avg_order_value", "purchase_gap_days", "churn_risk",
		"last_purchase_at", "birthday", "signup_at", "tags", "attrs", "consents"}
	dateKeys = []string{"last_purchase_at", "birthday", "signup_at"}
)

// ParseDate reads a date of the customer file: YYYY-MM-DD (midnight UTC,
// the usual form of a birthday) or an RFC 3339 time.
func ParseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want a date like 1990-01-12 or a time like 2026-01-05T09:00:00Z", s)
	}
	return t, nil
}
