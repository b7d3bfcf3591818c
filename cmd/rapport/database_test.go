package main

import (
	"context"
	"testing"

	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// testDatabase creates a migrated database, points the commands at it
// (DATABASE_URL) and returns a store over it for seeding and checking.
func testDatabase(t *testing.T) *store.Store {
	t.Helper()
	dbURL := storetest.NewDB(t)
	t.Setenv("DATABASE_URL", dbURL)
	st, err := store.Open(context.Background(), dbURL, storetest.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}
