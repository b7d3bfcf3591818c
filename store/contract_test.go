package store_test

import (
	"context"
	"testing"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/activities/activitiestest"
	"github.com/rapport-crm/rapport/delivery"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// pgWorld is the PostgreSQL store under the contract, set up through the
// same calls production makes.
type pgWorld struct {
	*store.Store
	delivery.Sender
}

// Put upserts the profile as the API's identify does; the points balance
// is the ledger's, so it is awarded through it.
func (w pgWorld) Put(t testing.TB, c rules.Customer) {
	t.Helper()
	ctx := context.Background()
	if err := w.UpsertCustomer(ctx, c); err != nil {
		t.Fatalf("upsert customer: %v", err)
	}
	if c.Points > 0 {
		if _, err := w.AdjustPoints(ctx, activities.PointsRequest{Key: "seed/" + c.ID, CustomerID: c.ID, Delta: c.Points, Reason: "seed"}); err != nil {
			t.Fatalf("seed points: %v", err)
		}
	}
}

func (w pgWorld) SetConsent(t testing.TB, customerID, channel, topic string, granted bool) {
	t.Helper()
	if err := w.Store.SetConsent(context.Background(), customerID, channel, topic, granted, "test"); err != nil {
		t.Fatalf("set consent: %v", err)
	}
}

func (w pgWorld) RecordEvent(t testing.TB, customerID string, ev rules.Event) bool {
	t.Helper()
	inserted, err := w.InsertEvent(context.Background(), customerID, ev)
	if err != nil {
		t.Fatalf("insert event: %v", err)
	}
	return inserted
}

func (w pgWorld) Suppress(t testing.TB, channel, address, reason string) {
	t.Helper()
	if err := w.Store.Suppress(context.Background(), channel, address, reason, "test"); err != nil {
		t.Fatalf("suppress: %v", err)
	}
}

func (w pgWorld) Recorded(t testing.TB, key string) (string, string) {
	t.Helper()
	var locale, subject string
	if err := w.Pool().QueryRow(context.Background(), `SELECT locale, subject FROM messages WHERE key = $1`, key).Scan(&locale, &subject); err != nil {
		t.Fatalf("read message %s: %v", key, err)
	}
	return locale, subject
}

// The store keeps the contract the in-memory activities keep
// (activities.TestContract runs the same cases), each case in a database
// of its own.
func TestContract(t *testing.T) {
	activitiestest.Run(t, func(t *testing.T, cfg activitiestest.Config) activitiestest.World {
		c := storetest.Config()
		c.CapMax, c.CapPer = cfg.GlobalCapMax, cfg.GlobalCapPer
		st := storetest.NewWithConfig(t, c)
		return pgWorld{Store: st, Sender: sender(st)}
	})
}
