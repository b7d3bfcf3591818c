package scan

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// TestScanPageWithOneConnection scans a real database through a pool of a
// single connection. A scan that held the connection streaming customers
// while the re-entry pre-filter (EntryHistories) waited for another would
// never finish: that is what happens to every scan when as many fire at
// once as the pool has connections. The timeout makes it fail, not hang.
func TestScanPageWithOneConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st := oneConnStore(t)
	// Nanoseconds, as a scan time from Temporal has: the selection is at
	// the microsecond, and still pushed down.
	now := time.Now().UTC().Truncate(time.Second).Add(123_456_789)
	for i := range 7 {
		c := rules.Customer{ID: fmt.Sprintf("c%02d", i), LastPurchaseAt: now.AddDate(0, 0, -10)}
		if i%2 == 0 {
			c.LastPurchaseAt = now.AddDate(0, 0, -120) // c00, c02, c04, c06 lapsed
		}
		if err := st.UpsertCustomer(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.DeployPlaybook(ctx, "lapsed", "v1", []byte(segmentSrc)); err != nil {
		t.Fatal(err)
	}
	// c02 already runs the playbook: the pre-filter must skip it.
	e := activities.Enrollment{ID: "e-c02", WorkflowID: "wf-c02", Playbook: "lapsed", Version: "v1", CustomerID: "c02"}
	if res, err := st.RecordStart(ctx, activities.EntryRequest{Enrollment: e, At: now.Add(-time.Hour)}); err != nil || !res.Admitted {
		t.Fatalf("record start of c02: %+v, %v", res, err)
	}

	rec := &recorder{started: map[string]rules.Event{}}
	a := &Activities{Store: st, Start: rec.start}
	// The where rule is pushed into the query: only the four lapsed
	// customers are read, in pages of 2.
	res, err := a.ScanPage(ctx, PageRequest{Playbook: "lapsed", Now: now, Limit: 2, Pages: 1})
	if err != nil {
		t.Fatalf("scan page over a one-connection pool: %v", err)
	}
	want := Counts{Pages: 1, Scanned: 2, Matched: 2, Skipped: 1, Started: 1}
	if res.Counts != want || res.Done || res.NextID != "c02" {
		t.Fatalf("first call %+v, want counts %+v, not done, next c02", res, want)
	}
	res, err = a.ScanPage(ctx, PageRequest{Playbook: "lapsed", Now: now, AfterID: res.NextID, Limit: 2, Pages: 3})
	if err != nil {
		t.Fatalf("second scan page: %v", err)
	}
	want = Counts{Pages: 1, Scanned: 2, Matched: 2, Started: 2}
	if res.Counts != want || !res.Done || res.NextID != "c06" {
		t.Fatalf("second call %+v, want counts %+v, done, next c06", res, want)
	}
	for _, id := range []string{"c00", "c04", "c06"} {
		if _, ok := rec.started[id]; !ok {
			t.Errorf("%s was not started (started %v)", id, rec.started)
		}
	}
}

// oneConnStore is a Store over a fresh database whose pool has a single
// connection.
func oneConnStore(t *testing.T) *store.Store {
	t.Helper()
	pc, err := pgxpool.ParseConfig(storetest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	pc.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return store.New(pool, storetest.Config())
}
