package workflows

import (
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// SampleCustomer is the customer simulations use when none is given: Ada,
// a gold-tier customer in Shanghai who reads Chinese and last bought 120
// days before the simulation starts at start.
func SampleCustomer(start time.Time) rules.Customer {
	return rules.Customer{
		ID: "c-42", Email: "ada@example.com", Phone: "+8613800000042", Name: "Ada",
		Locale: "zh", Timezone: "Asia/Shanghai", Tier: "gold", Stage: "active",
		Points: 1200, LifetimeValue: 1850, OrderCount: 9, AvgOrderValue: 205.5, PurchaseGap: 35,
		LastPurchaseAt: start.AddDate(0, 0, -120),
		Birthday:       time.Date(1990, 1, 12, 0, 0, 0, 0, time.UTC),
		SignupAt:       start.AddDate(-3, 0, 0),
		Tags:           []string{"newsletter"},
		Attrs:          map[string]any{"industry": "retail"},
	}
}
