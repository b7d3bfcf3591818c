package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// `rapport maintain` reads the retention from the environment: a dry run
// names the month it would drop and keeps it, the real pass drops it.
func TestMaintainCommand(t *testing.T) {
	st := testDatabase(t)
	ctx := context.Background()
	old := time.Now().UTC().AddDate(0, -14, 0)
	if _, err := st.InsertEvent(ctx, "c1", rules.Event{ID: "old", Name: "page_viewed", Time: old}); err != nil {
		t.Fatal(err)
	}
	oldPart := old.Format("events_2006_01")
	t.Setenv("RAPPORT_EVENT_RETENTION_MONTHS", "12")
	out, err := runRapport(t, "maintain", "--dry-run")
	if err != nil || !strings.Contains(out, "would drop: "+oldPart) || !strings.Contains(out, "would delete 1 event ids") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	out, err = runRapport(t, "maintain")
	if err != nil || !strings.Contains(out, "dropped: "+oldPart) || !strings.Contains(out, "messages: kept forever") ||
		!strings.Contains(out, "start notes of journeys that never ran (older than 30 days): deleted 0") {
		t.Fatalf("maintain: %v\n%s", err, out)
	}
	var n int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d events left, %v; want the old month gone", n, err)
	}
	t.Setenv("RAPPORT_MESSAGE_RETENTION_MONTHS", "x")
	if out, err := runRapport(t, "maintain"); err == nil || !strings.Contains(err.Error()+out, "RAPPORT_MESSAGE_RETENTION_MONTHS") {
		t.Errorf("bad setting: %v\n%s, want it named", err, out)
	}
}
