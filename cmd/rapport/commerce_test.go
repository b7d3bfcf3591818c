package main

import (
	"slices"
	"testing"

	"github.com/rapport-crm/rapport/activities"
)

func TestCommerceFromEnv(t *testing.T) {
	t.Setenv("RAPPORT_PURCHASE_EVENTS", " Deal Won , purchase")
	t.Setenv("RAPPORT_REFUND_EVENTS", "")
	c, err := commerceFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Effect("deal_won") != activities.Purchase || c.Effect("Order Completed") != "" || c.Effect("order_refunded") != "" {
		t.Errorf("purchase %v refund %v: want deal_won and purchase only, no refunds", c.PurchaseEvents, c.RefundEvents)
	}
	if !slices.Equal(c.AmountProps, activities.DefaultCommerce().AmountProps) {
		t.Errorf("amount properties %v: want the default when unset", c.AmountProps)
	}
	t.Setenv("RAPPORT_AMOUNT_PROPERTIES", " , ")
	if _, err := commerceFromEnv(); err == nil {
		t.Error("an empty RAPPORT_AMOUNT_PROPERTIES was accepted")
	}
}
