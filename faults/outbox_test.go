package faults

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/channels"
	"github.com/rapport-crm/rapport/delivery"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store/storetest"
)

// downChannel fails every delivery transiently, as a provider that is
// down for longer than the journey's retries (an hour) would.
type downChannel struct{}

func (downChannel) Deliver(context.Context, channels.Message) (string, error) {
	return "", channels.TransientError("http_503", errors.New("sms: provider answered 503"))
}

// TestNoMessageStaysQueuedAfterTheJourney: when a send's retries run out
// the journey fails and records its outcome; the message it could not
// deliver must then end failed with a reason, not sit queued in the
// outbox forever (where it would also keep counting against the caps).
func TestNoMessageStaysQueuedAfterTheJourney(t *testing.T) {
	d := storetest.Delivery()
	d.Channels["sms"] = downChannel{}
	st := storetest.New(t)
	snd := delivery.Sender{Outbox: st, Config: d}
	ctx := context.Background()
	if err := st.UpsertCustomer(ctx, rules.Customer{ID: "c1", Phone: "+15550001111"}); err != nil {
		t.Fatal(err)
	}
	enr := activities.Enrollment{ID: "e1", WorkflowID: "rapport/p/c1", Playbook: "p", Version: "v1", CustomerID: "c1"}
	if _, err := st.RecordStart(ctx, activities.EntryRequest{Enrollment: enr, Reentry: "always", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	req := activities.SendRequest{Enrollment: enr, Key: "e1/sms_1/1", StepID: "sms_1", Channel: "sms", Template: "t", Locale: "en",
		Text: "hi", Customer: rules.Customer{ID: "c1"}, Now: time.Now()}
	for range 3 { // the journey's retries
		if _, err := snd.SendMessage(ctx, req); err == nil {
			t.Fatal("delivery through a down provider succeeded")
		}
	}
	if got := messageStatus(t, st.Pool(), req.Key); got != "queued http_503" {
		t.Fatalf("while retrying: %q, want queued with the last failure", got)
	}
	err := st.RecordOutcome(ctx, activities.Outcome{Enrollment: enr, Status: activities.StatusFailed, Reason: "step sms_1: retries exhausted", At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if got := messageStatus(t, st.Pool(), req.Key); got != "failed http_503" {
		t.Errorf("after the journey ended: %q, want failed with the last failure's reason", got)
	}
}

func messageStatus(t *testing.T, pool *pgxpool.Pool, key string) string {
	t.Helper()
	var status, reason string
	if err := pool.QueryRow(context.Background(), `SELECT status, reason FROM messages WHERE key = $1`, key).Scan(&status, &reason); err != nil {
		t.Fatal(err)
	}
	return status + " " + reason
}
