package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

func TestMigrationsUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := storetest.EmptyDB(t)
	if err := store.Migrate(ctx, dbURL); err != nil {
		t.Fatalf("up: %v", err)
	}
	st, err := store.MigrationStatus(ctx, dbURL)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if len(st) < 1 {
		t.Fatalf("status lists no migrations")
	}
	for _, m := range st {
		if !m.Applied {
			t.Errorf("migration %s not applied after up", m.File)
		}
	}
	for range st {
		if err := store.MigrateDown(ctx, dbURL); err != nil {
			t.Fatalf("down: %v", err)
		}
	}
	st, err = store.MigrationStatus(ctx, dbURL)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, m := range st {
		if m.Applied {
			t.Errorf("migration %s still applied after all downs", m.File)
		}
	}
	if err := store.Migrate(ctx, dbURL); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if err := store.Migrate(ctx, dbURL); err != nil {
		t.Fatalf("up when current: %v", err)
	}
}

func TestCustomerUpsertMergesAndLoads(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	bday := time.Date(1990, 5, 17, 0, 0, 0, 0, time.UTC)
	mustCustomer(t, s, rules.Customer{ID: "c1", Email: "a@example.com", Name: "Ann", Tags: []string{"vip"},
		Attrs: map[string]any{"industry": "retail", "size": 10.0}, Birthday: bday})
	got := mustCustomer(t, s, rules.Customer{ID: "c1", Locale: "zh", Tags: []string{"new"}, Attrs: map[string]any{"size": 20.0}})
	if got.Email != "a@example.com" || got.Name != "Ann" || got.Locale != "zh" {
		t.Errorf("merge lost or missed fields: %+v", got)
	}
	if fmt.Sprint(got.Tags) != "[new vip]" {
		t.Errorf("tags = %v, want [new vip]", got.Tags)
	}
	if got.Attrs["industry"] != "retail" || got.Attrs["size"] != 20.0 {
		t.Errorf("attrs = %v, want industry kept and size replaced", got.Attrs)
	}
	if !got.Birthday.Equal(bday) {
		t.Errorf("birthday = %v, want %v", got.Birthday, bday)
	}
	_, err := s.Customer(ctx, "nobody")
	if !errors.Is(err, activities.ErrPermanent) || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown customer error = %v, want permanent and not found", err)
	}
}

func TestInsertEventIdempotentAndPurchaseMetrics(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := context.Background()
	buy := func(id string, amount float64, at time.Time) bool {
		t.Helper()
		ok, err := s.InsertEvent(ctx, "c1", rules.Event{ID: id, Name: "purchase", Amount: amount, Currency: "EUR", Time: at})
		if err != nil {
			t.Fatalf("insert %s: %v", id, err)
		}
		return ok
	}
	// The customer does not exist yet: the event creates it bare.
	if !buy("e1", 100, t0) {
		t.Fatal("first insert reported duplicate")
	}
	if buy("e1", 100, t0) {
		t.Fatal("second insert of e1 reported inserted")
	}
	buy("e3", 50, t0.Add(20*24*time.Hour))
	buy("e2", 30, t0.Add(10*24*time.Hour)) // out of order
	c, err := s.Customer(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if c.OrderCount != 3 || c.LifetimeValue != 180 || c.AvgOrderValue != 60 {
		t.Errorf("metrics = orders %d ltv %v avg %v, want 3 180 60", c.OrderCount, c.LifetimeValue, c.AvgOrderValue)
	}
	if !c.LastPurchaseAt.Equal(t0.Add(20 * 24 * time.Hour)) {
		t.Errorf("last purchase = %v", c.LastPurchaseAt)
	}
	if c.PurchaseGap != 10 {
		t.Errorf("purchase gap = %v days, want 10", c.PurchaseGap)
	}
	if n := count(t, s, `SELECT count(*) FROM events WHERE customer_id = 'c1'`); n != 3 {
		t.Errorf("%d events stored, want 3", n)
	}
	// A non-purchase event changes no metric.
	if _, err := s.InsertEvent(ctx, "c1", rules.Event{ID: "e4", Name: "page_view", Amount: 999}); err != nil {
		t.Fatal(err)
	}
	if c2, _ := s.Customer(ctx, "c1"); c2.OrderCount != 3 || c2.LifetimeValue != 180 {
		t.Errorf("page_view changed metrics: %+v", c2)
	}
	if _, err := s.InsertEvent(ctx, "c1", rules.Event{Name: "purchase"}); !errors.Is(err, activities.ErrPermanent) {
		t.Errorf("event without id: err = %v, want permanent", err)
	}
}

func TestInsertEventConcurrentDuplicatesCountOnce(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	var wg sync.WaitGroup
	var inserted sync.Map
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ok, err := s.InsertEvent(context.Background(), "c1", rules.Event{ID: "same", Name: "purchase", Amount: 10, Time: t0})
			if err != nil {
				t.Errorf("insert: %v", err)
			}
			inserted.Store(i, ok)
		}(i)
	}
	wg.Wait()
	n := 0
	inserted.Range(func(_, v any) bool {
		if v.(bool) {
			n++
		}
		return true
	})
	c, _ := s.Customer(context.Background(), "c1")
	if n != 1 || c.OrderCount != 1 || c.LifetimeValue != 10 {
		t.Errorf("inserted %d times, order_count %d, ltv %v; want 1, 1, 10", n, c.OrderCount, c.LifetimeValue)
	}
}
