package api

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store/storetest"
)

// TestPGSMSStop: a signed STOP from a customer's number, through the real
// store, withdraws SMS consent in PostgreSQL; a reply that is not a
// keyword is stored as an sms_received event.
func TestPGSMSStop(t *testing.T) {
	t.Parallel()
	st := storetest.New(t)
	ctx := context.Background()
	h := &harness{t: t, disp: &fakeDispatcher{}}
	srv, err := NewServer(Options{
		APIKey: testKey, Store: PGStore{st}, Dispatcher: h.disp,
		SMS:    &SMSOptions{AuthToken: smsToken, PublicURL: smsBase, Replies: st},
		Now:    func() time.Time { return testNow },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	if err := st.UpsertCustomer(ctx, rules.Customer{ID: "li", Phone: "+1 415 555 0100"}); err != nil {
		t.Fatal(err)
	}
	if r := h.sms(smsToken, "+14155550100", "Stop", "SM1"); r.code != 200 || r.message() == "" {
		t.Fatalf("STOP: %d %s", r.code, r.body)
	}
	var granted bool
	if err := st.Pool().QueryRow(ctx, `SELECT granted FROM consents WHERE customer_id = 'li' AND channel = 'sms' AND topic = '*'`).Scan(&granted); err != nil || granted {
		t.Errorf("sms/* granted=%v err=%v, want withdrawn", granted, err)
	}
	if r := h.sms(smsToken, "+14155550100", "Stop", "SM2"); r.code != 200 || r.message() != "" {
		t.Errorf("second STOP: %d %s, want no second confirmation", r.code, r.body)
	}
	if r := h.sms(smsToken, "+14155550100", "what time do you open?", "SM3"); r.code != 200 {
		t.Fatalf("message: %d %s", r.code, r.body)
	}
	var name, props string
	if err := st.Pool().QueryRow(ctx, `SELECT name, props::text FROM events WHERE customer_id = 'li'`).Scan(&name, &props); err != nil || name != "sms_received" || !strings.Contains(props, "what time do you open?") {
		t.Errorf("event %s %s %v", name, props, err)
	}
}
