package activities_test

import (
	"testing"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/activities/activitiestest"
	"github.com/rapport-crm/rapport/rules"
)

// memWorld is the in-memory implementation under the contract.
type memWorld struct{ *activities.Memory }

func (m memWorld) Put(_ testing.TB, c rules.Customer) { m.Memory.Put(c) }

func (m memWorld) SetConsent(_ testing.TB, customerID, channel, topic string, granted bool) {
	m.Memory.SetConsent(customerID, channel, topic, granted)
}

func (m memWorld) RecordEvent(_ testing.TB, customerID string, ev rules.Event) bool {
	return m.Memory.RecordEvent(customerID, ev)
}

func (m memWorld) Suppress(_ testing.TB, channel, address, reason string) {
	m.Memory.Suppress(channel, address, reason)
}

func (m memWorld) Recorded(t testing.TB, key string) (string, string) {
	t.Helper()
	for _, msg := range m.Memory.Messages() {
		if msg.Key == key {
			return msg.Locale, msg.Subject
		}
	}
	t.Fatalf("no message recorded under %s", key)
	return "", ""
}

// The in-memory activities keep the contract the PostgreSQL store keeps
// (store.TestContract runs the same cases).
func TestContract(t *testing.T) {
	activitiestest.Run(t, func(t *testing.T, cfg activitiestest.Config) activitiestest.World {
		m := activities.NewMemory()
		m.GlobalCapMax, m.GlobalCapPer = cfg.GlobalCapMax, cfg.GlobalCapPer
		return memWorld{m}
	})
}
