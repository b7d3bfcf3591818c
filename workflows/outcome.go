package workflows

import "github.com/rapport-crm/rapport/activities"

// OutcomeDetail is how a journey's step log words an outcome ("completed",
// "exited (upgraded_gold)"); the simulator's summary uses the same words.
func OutcomeDetail(s activities.Status, reason string) string { return outcomeDetail(s, reason) }
