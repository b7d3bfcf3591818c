package activities

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/rapport-crm/rapport/rules"
)

// Effects an event may have on the purchase metrics.
const (
	Purchase = "purchase" // one more order, its amount added to the revenue
	Refund   = "refund"   // its amount taken off the revenue
)

// Commerce says which events are purchases and refunds and where their
// amount is. Names are compared in their normalised form (rules.NormalizeEvent),
// so "Order Completed" and order_completed are the same event.
type Commerce struct {
	PurchaseEvents []string
	RefundEvents   []string
	// AmountProps are the properties the amount is read from, the first
	// present wins; "products" means the sum of products[].price ×
	// quantity.
	AmountProps []string
}

// DefaultCommerce is Segment's e-commerce spec (v2) plus Rapport's own
// `purchase`: Order Completed is a purchase, Order Refunded a refund, and
// the amount is amount, else revenue, total, subtotal, value, else the
// products' sum.
func DefaultCommerce() Commerce {
	return Commerce{
		PurchaseEvents: []string{"order_completed", "purchase"},
		RefundEvents:   []string{"order_refunded"},
		AmountProps:    []string{"amount", "revenue", "total", "subtotal", "value", "products"},
	}
}

// Effect is Purchase, Refund or "" for the event named name.
func (c Commerce) Effect(name string) string {
	n := rules.NormalizeEvent(name)
	for _, p := range c.PurchaseEvents {
		if rules.NormalizeEvent(p) == n {
			return Purchase
		}
	}
	for _, r := range c.RefundEvents {
		if rules.NormalizeEvent(r) == n {
			return Refund
		}
	}
	return ""
}

// Amount reads an event's amount from its properties as the event API
// does: the first of AmountProps present (and not null), "products" being
// the sum of products[].price × quantity (quantity 1 when absent, 0 when
// null, as api.productsSum reads it); 0 when
// none is present. A number may be sent as text ("12.50"), as some sources
// send money; anything else is an error naming the property, never a
// silent 0. `rapport simulate` and `rapport test` read events files with
// it, so an Order Completed written with its spec props (revenue, total,
// products) has the amount it would have in production.
func (c Commerce) Amount(props map[string]any) (float64, error) {
	for _, name := range c.AmountProps {
		v, ok := props[name]
		if !ok || v == nil {
			continue
		}
		list, isList := v.([]any)
		if !isList || name != "products" {
			return amountNumber(v, name)
		}
		sum := 0.0
		for i, item := range list {
			at := fmt.Sprintf("%s[%d]", name, i)
			p, ok := item.(map[string]any)
			if !ok {
				return 0, fmt.Errorf("%s: must be an object, got %T", at, item)
			}
			price, qty := 0.0, 1.0
			var err error
			if v, ok := p["price"]; ok && v != nil {
				if price, err = amountNumber(v, at+".price"); err != nil {
					return 0, err
				}
			}
			if v, ok := p["quantity"]; ok {
				qty = 0 // as the event API reads a quantity sent as null
				if v != nil {
					if qty, err = amountNumber(v, at+".quantity"); err != nil {
						return 0, err
					}
				}
			}
			sum += price * qty
		}
		return sum, nil
	}
	return 0, nil
}

// amountNumber is a property read as a number: any Go number (JSON and
// YAML decoders give float64 or int) or a finite numeric text.
func amountNumber(v any, name string) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f, nil
		}
		return 0, fmt.Errorf("%s: must be a number, got %q", name, x)
	}
	return 0, fmt.Errorf("%s: must be a number, got %T", name, v)
}
