package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/rapport-crm/rapport/activities"
)

// commerceEnvHelp documents the e-commerce settings of `rapport serve`.
const commerceEnvHelp = `
E-commerce (comma-separated lists; names compare as playbook words, so
"Order Completed" and order_completed are the same):
  RAPPORT_PURCHASE_EVENTS     events that count as a purchase (default order_completed,purchase)
  RAPPORT_REFUND_EVENTS       events that count as a refund (default order_refunded)
  RAPPORT_AMOUNT_PROPERTIES   where the amount is, the first present wins; "products"
                              is the sum of products[].price × quantity
                              (default amount,revenue,total,subtotal,value,products)`

// commerceFromEnv reads the e-commerce settings, each defaulting to
// activities.DefaultCommerce; a setting given but empty is an error, since
// it would silently stop counting purchases.
func commerceFromEnv() (activities.Commerce, error) {
	c := activities.DefaultCommerce()
	for _, s := range []struct {
		name string
		dst  *[]string
	}{
		{"RAPPORT_PURCHASE_EVENTS", &c.PurchaseEvents},
		{"RAPPORT_REFUND_EVENTS", &c.RefundEvents},
		{"RAPPORT_AMOUNT_PROPERTIES", &c.AmountProps},
	} {
		raw, set := os.LookupEnv(s.name)
		if !set {
			continue
		}
		var list []string
		for _, v := range strings.Split(raw, ",") {
			if v = strings.TrimSpace(v); v != "" {
				list = append(list, v)
			}
		}
		if len(list) == 0 && s.name != "RAPPORT_REFUND_EVENTS" {
			return c, fmt.Errorf("%s is set but names nothing", s.name)
		}
		*s.dst = list
	}
	return c, nil
}
