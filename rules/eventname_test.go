package rules

import "testing"

func TestNormalizeEvent(t *testing.T) {
	for in, want := range map[string]string{
		"Order Completed":       "order_completed",
		"purchase":              "purchase",
		"Checkout Step-Viewed":  "checkout_step_viewed",
		"  Product  Added ":     "product_added",
		"Order Refunded":        "order_refunded",
		"2FA Enabled":           "2FA Enabled", // not a word: kept as sent
		"购买":                    "购买",
		"Café Visited":          "Café Visited",
		"order_completed":       "order_completed",
		"Application Installed": "application_installed",
	} {
		if got := NormalizeEvent(in); got != want {
			t.Errorf("NormalizeEvent(%q) = %q, want %q", in, got, want)
		}
	}
}
