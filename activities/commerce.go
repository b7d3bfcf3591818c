package activities

import (
	"strings"
	"unicode"
)

// Effects an event may have on the purchase metrics.
const (
	Purchase = "purchase" // one more order, its amount added to the revenue
	Refund   = "refund"   // its amount taken off the revenue
)

// Commerce says which events are purchases and refunds and where their
// amount is. Names are compared in their normalised form (NormalizeEvent),
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
	n := NormalizeEvent(name)
	for _, p := range c.PurchaseEvents {
		if NormalizeEvent(p) == n {
			return Purchase
		}
	}
	for _, r := range c.RefundEvents {
		if NormalizeEvent(r) == n {
			return Refund
		}
	}
	return ""
}

// NormalizeEvent turns a spec event name into the lowercase word a
// playbook can name: "Order Completed" → order_completed, "Checkout
// Step-Viewed" → checkout_step_viewed. ASCII letters are lowercased and
// every run of other characters becomes one underscore. A name that does
// not come out as a word (empty, starting with a digit, or with letters
// outside ASCII) is returned as sent: no playbook can name it either way,
// and the event log then shows it unchanged.
func NormalizeEvent(name string) string {
	var b strings.Builder
	under := false
	for _, r := range name {
		switch {
		case r > unicode.MaxASCII:
			return name
		case r >= 'A' && r <= 'Z':
			r = unicode.ToLower(r)
			fallthrough
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if under && b.Len() > 0 {
				b.WriteByte('_')
			}
			under = false
			b.WriteRune(r)
		default:
			under = true
		}
	}
	s := b.String()
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return name
	}
	return s
}
