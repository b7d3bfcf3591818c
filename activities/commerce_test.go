package activities

import "testing"

func TestDefaultCommerceFollowsTheSpec(t *testing.T) {
	d := DefaultCommerce()
	if d.Effect("Order Completed") != Purchase || d.Effect("purchase") != Purchase || d.Effect("Order Refunded") != Refund || d.Effect("Order Cancelled") != "" {
		t.Error("default commerce does not follow the e-commerce spec")
	}
}
