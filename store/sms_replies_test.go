package store_test

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store/storetest"
)

func TestSMSStopAndStart(t *testing.T) {
	t.Parallel()
	st := storetest.New(t)
	ctx := context.Background()
	for _, c := range []rules.Customer{
		{ID: "li", Phone: "+1 415-555-0100"},
		{ID: "wang", Phone: "+14155550100"}, // same household number
		{ID: "other", Phone: "+14155550199"},
	} {
		if err := st.UpsertCustomer(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := st.CustomersByPhone(ctx, "+14155550100")
	if err != nil || !slices.Equal(ids, []string{"li", "wang"}) {
		t.Fatalf("CustomersByPhone = %v, %v; want li and wang", ids, err)
	}
	// li opted in to sms marketing explicitly, and unsubscribed from sms
	// surveys by link: a STOP must override the first, a START must not
	// undo the second.
	if err := st.SetConsent(ctx, "li", "sms", "marketing", true, "import"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetConsent(ctx, "li", "sms", "surveys", false, "unsubscribe_link"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetConsent(ctx, "li", "email", "marketing", true, "import"); err != nil {
		t.Fatal(err)
	}
	consents := func() map[string]bool {
		rows, err := st.Pool().Query(ctx, `SELECT channel || '/' || topic, granted FROM consents WHERE customer_id = 'li'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := map[string]bool{}
		for rows.Next() {
			var k string
			var g bool
			if err := rows.Scan(&k, &g); err != nil {
				t.Fatal(err)
			}
			got[k] = g
		}
		return got
	}
	changed, err := st.WithdrawSMS(ctx, "li")
	if err != nil || !changed {
		t.Fatalf("STOP: changed=%v err=%v", changed, err)
	}
	want := map[string]bool{"sms/*": false, "sms/marketing": false, "sms/surveys": false, "email/marketing": true}
	if got := consents(); !maps.Equal(got, want) {
		t.Errorf("after STOP: %v, want %v", got, want)
	}
	if changed, err = st.WithdrawSMS(ctx, "li"); err != nil || changed {
		t.Errorf("second STOP: changed=%v err=%v, want no change (no second confirmation)", changed, err)
	}
	if changed, err = st.RegrantSMS(ctx, "li"); err != nil || !changed {
		t.Fatalf("START: changed=%v err=%v", changed, err)
	}
	want = map[string]bool{"sms/*": true, "sms/marketing": true, "sms/surveys": false, "email/marketing": true}
	if got := consents(); !maps.Equal(got, want) {
		t.Errorf("after START: %v, want %v", got, want)
	}
	if _, err := st.WithdrawSMS(ctx, "nobody"); err == nil {
		t.Error("STOP for an unknown customer: no error")
	}
}
