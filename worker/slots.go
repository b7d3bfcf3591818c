package worker

import "fmt"

// DefaultActivitySlots is how many regular activities (segment scans,
// reconcile passes) one worker runs at once unless RAPPORT_ACTIVITY_SLOTS
// says otherwise.
const DefaultActivitySlots = 4

// Slots are how many activities a worker runs at once. Every journey
// activity is a local activity holding at most one database connection, so
// local activities plus regular activities never exceed the connection
// pool: an activity never waits for a connection inside its 30-second
// attempt, where the wait would count as an outage.
type Slots struct {
	Local    int // RAPPORT_LOCAL_ACTIVITY_SLOTS, default pool size − Activity
	Activity int // RAPPORT_ACTIVITY_SLOTS, default DefaultActivitySlots
}

// sizeSlots fills in the defaults of want for a pool of poolSize
// connections and refuses a sizing that could make an activity wait for a
// connection.
func sizeSlots(poolSize int, want Slots) (Slots, error) {
	s := want
	if s.Activity <= 0 {
		s.Activity = min(DefaultActivitySlots, max(poolSize/4, 1))
	}
	if s.Local <= 0 {
		s.Local = poolSize - s.Activity
	}
	if s.Local < 1 || s.Local+s.Activity > poolSize {
		return Slots{}, fmt.Errorf("RAPPORT_LOCAL_ACTIVITY_SLOTS (%d) + RAPPORT_ACTIVITY_SLOTS (%d) must be at least 2 and at most the database pool, RAPPORT_DB_MAX_CONNS (%d): "+
			"an activity waiting for a connection spends its 30-second attempt waiting", s.Local, s.Activity, poolSize)
	}
	return s, nil
}
