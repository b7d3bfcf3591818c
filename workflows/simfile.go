package workflows

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rapport-crm/rapport/rules"
)

// eventKeys are the keys of one entry of a simulation events file.
var eventKeys = []string{"at", "event", "id", "amount", "currency", "order_id", "category", "score", "props", "trigger"}

// ParseSimEvents reads a simulation events file: a YAML list of
// {at: 5d, event: purchase, amount: 42, ...}. `at` is the offset from the
// start ("0s" for the start itself); custom properties go under props. An
// entry with `trigger: true` is the trigger event of the enrollment instead
// of a signal. Errors name the file and line.
func ParseSimEvents(file string, data []byte) (events []SimEvent, trigger *rules.Event, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil, nil
	}
	list := doc.Content[0]
	if list.Kind != yaml.SequenceNode {
		return nil, nil, fmt.Errorf("%s:%d: expected a list of events like {at: 5d, event: purchase}", file, list.Line)
	}
	for i, n := range list.Content {
		se, isTrigger, err := parseSimEvent(n, i+1)
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %w", file, n.Line, err)
		}
		if isTrigger {
			if trigger != nil {
				return nil, nil, fmt.Errorf("%s:%d: a second trigger event", file, n.Line)
			}
			trigger = &se.Event
			continue
		}
		events = append(events, se)
	}
	sort.SliceStable(events, func(a, b int) bool { return events[a].At < events[b].At })
	return events, trigger, nil
}

func parseSimEvent(n *yaml.Node, pos int) (SimEvent, bool, error) {
	if n.Kind != yaml.MappingNode {
		return SimEvent{}, false, fmt.Errorf("event %d: expected a mapping like {at: 5d, event: purchase}", pos)
	}
	var raw struct {
		At       string         `yaml:"at"`
		Event    string         `yaml:"event"`
		ID       string         `yaml:"id"`
		Amount   float64        `yaml:"amount"`
		Currency string         `yaml:"currency"`
		OrderID  string         `yaml:"order_id"`
		Category string         `yaml:"category"`
		Score    float64        `yaml:"score"`
		Props    map[string]any `yaml:"props"`
		Trigger  bool           `yaml:"trigger"`
	}
	for i := 0; i < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !contains(eventKeys, k) {
			return SimEvent{}, false, fmt.Errorf("event %d: unknown key %q (known: %s; put custom properties under props)", pos, k, strings.Join(eventKeys, ", "))
		}
	}
	if err := n.Decode(&raw); err != nil {
		return SimEvent{}, false, fmt.Errorf("event %d: %w", pos, err)
	}
	if raw.Event == "" {
		return SimEvent{}, false, fmt.Errorf("event %d: missing key event (the event name)", pos)
	}
	var at time.Duration
	if raw.At != "" && raw.At != "0" {
		d, err := rules.ParseDuration(raw.At)
		if err != nil {
			return SimEvent{}, false, fmt.Errorf("event %d: at: %w", pos, err)
		}
		at = d
	} else if raw.At == "" && !raw.Trigger {
		return SimEvent{}, false, fmt.Errorf("event %d: missing key at (offset from the start, like 5d)", pos)
	}
	if raw.ID == "" {
		raw.ID = fmt.Sprintf("sim-%d", pos)
	}
	ev := rules.Event{ID: raw.ID, Name: raw.Event, Amount: raw.Amount, Currency: raw.Currency, OrderID: raw.OrderID,
		Category: raw.Category, Score: raw.Score, Props: raw.Props}
	return SimEvent{At: at, Event: ev}, raw.Trigger, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ParseCustomer reads a customer profile in the JSON form of rules.Customer
// (unknown fields are errors); it needs an id.
func ParseCustomer(file string, data []byte) (rules.Customer, error) {
	var c rules.Customer
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%s: %w", file, err)
	}
	if c.ID == "" {
		return c, fmt.Errorf("%s: the customer needs an id", file)
	}
	return c, nil
}
