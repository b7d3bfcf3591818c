package rules

// The zone database is embedded so that a worker on a slim image without
// /usr/share/zoneinfo still computes quiet hours, local-time waits and
// birthdays in the customer's zone instead of silently falling back to UTC.
// Go prefers the system database when it exists; workers of one deployment
// should run the same image so their zone data agree.
import _ "time/tzdata"
