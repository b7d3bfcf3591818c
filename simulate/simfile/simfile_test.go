package simfile

import (
	"strings"
	"testing"
	"time"
)

func TestParseEvents(t *testing.T) {
	cases := map[string]string{
		"- { at: 5d }":                               "ev.yaml:1: event 1: missing key event",
		"- { event: purchase }":                      "ev.yaml:1: event 1: missing key at",
		"- { at: 5x, event: purchase }":              "ev.yaml:1: event 1: at: invalid duration",
		"- { at: 5d, event: p, amont: 3 }":           `ev.yaml:1: event 1: unknown key "amont"`,
		"at: 5d":                                     "ev.yaml:1: expected a list of events",
		"- { at: 1d, event: a }\n- nothing":          "ev.yaml:2: event 2: expected a mapping",
		"- { at: 1d, event: purchase, of: welcome }": "ev.yaml:1: event 1: of: only a message event (message_delivered, message_opened, message_clicked, message_bounced, message_complained, message_unsubscribed) is about a message; purchase is not one",
	}
	for src, want := range cases {
		_, err := ParseEvents("ev.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", src, err, want)
		}
	}
	all, err := ParseEvents("ev.yaml", []byte("- { at: 2d, event: b }\n- { at: 1d, event: a, amount: 4, props: { sku: x } }\n- { event: t, trigger: true }\n- { at: 3d, event: t, trigger: true }\n"))
	evs, trig := Split(all)
	if err != nil || len(all) != 4 || len(evs) != 3 || !evs[2].Trigger || evs[0].Event.Name != "a" || evs[0].At != 24*time.Hour || evs[0].Event.Props["sku"] != "x" || trig == nil || trig.Name != "t" {
		t.Fatalf("parsed %+v, trigger %+v, %v", evs, trig, err)
	}
}

func TestParseEventOfAMessage(t *testing.T) {
	evs, err := ParseEvents("ev.yaml", []byte("- { at: 1d, event: message_opened, of: welcome }\n"))
	if err != nil || len(evs) != 1 || evs[0].Of != "welcome" || evs[0].Event.Name != "message_opened" {
		t.Fatalf("parsed %+v, %v", evs, err)
	}
}

// An event without amount takes it from its props as the event API does,
// so an Order Completed written with Segment's properties has the
// event.amount it has in production; an amount given wins.
func TestParseEventAmountFromSpecProps(t *testing.T) {
	src := `
- { at: 1d, id: a, event: order_completed, props: { order_id: o-1, revenue: 88, total: 95 } }
- { at: 1d, id: b, event: order_completed, props: { subtotal: "40.50" } }
- { at: 1d, id: c, event: order_completed, props: { products: [{ price: 10, quantity: 2 }, { price: 5.5 }] } }
- { at: 1d, id: d, event: order_completed, amount: 12, props: { revenue: 88 } }
- { at: 1d, id: e, event: order_refunded, props: { order_id: o-1 } }
`
	evs, err := ParseEvents("ev.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"a": 88, "b": 40.5, "c": 25.5, "d": 12, "e": 0}
	for _, e := range evs {
		if e.Event.Amount != want[e.Event.ID] {
			t.Errorf("event %s: amount %v, want %v", e.Event.ID, e.Event.Amount, want[e.Event.ID])
		}
	}
	_, err = ParseEvents("ev.yaml", []byte("- { at: 1d, event: order_completed, props: { revenue: lots } }\n"))
	if want := `ev.yaml:1: event 1: props.revenue: must be a number, got "lots"`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}
