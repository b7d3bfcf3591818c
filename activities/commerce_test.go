package activities

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
	d := DefaultCommerce()
	if d.Effect("Order Completed") != Purchase || d.Effect("purchase") != Purchase || d.Effect("Order Refunded") != Refund || d.Effect("Order Cancelled") != "" {
		t.Error("default commerce does not follow the e-commerce spec")
	}
}
