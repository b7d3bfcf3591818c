package devenv

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// CustomerWriter stores customer profiles; *store.Store implements it.
type CustomerWriter interface {
	UpsertCustomer(ctx context.Context, c rules.Customer) error
}

// demoNames alternate English and Chinese customers.
var demoNames = []struct{ name, locale string }{
	{"Alice Chen", "en"}, {"王芳", "zh"}, {"Ben Carter", "en"}, {"李伟", "zh"},
	{"Chloe Martin", "en"}, {"张敏", "zh"}, {"Daniel Okafor", "en"}, {"刘洋", "zh"},
	{"Emma Schmidt", "en"}, {"陈静", "zh"}, {"Farah Khan", "en"}, {"杨磊", "zh"},
	{"George Brown", "en"}, {"赵丽", "zh"}, {"Hannah Lee", "en"}, {"黄强", "zh"},
	{"Isaac Novak", "en"}, {"周婷", "zh"}, {"Julia Rossi", "en"}, {"吴军", "zh"},
	{"Kenji Sato", "en"}, {"徐静怡", "zh"}, {"Laura Gómez", "en"}, {"孙浩", "zh"},
	{"Mia Johnson", "en"}, {"马超", "zh"}, {"Noah Wilson", "en"}, {"朱琳", "zh"},
	{"Olivia Dubois", "en"}, {"胡斌", "zh"}, {"Priya Nair", "en"}, {"郭娜", "zh"},
	{"Quentin Blake", "en"}, {"林峰", "zh"}, {"Rosa Silva", "en"}, {"何雪", "zh-TW"},
}

var demoZones = []string{"America/New_York", "Asia/Shanghai", "Europe/London", "Asia/Taipei",
	"America/Los_Angeles", "Asia/Singapore", "Europe/Berlin", "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney"}

// DemoCustomers are the seeded profiles, made from now so that every run
// of `rapport dev` has the same mix: a quarter lapsed (winback), a quarter
// recently active (nurture), a quarter high-value (key accounts, some
// ranked in the top 10), a quarter new prospects without purchases; some
// birthdays and signup anniversaries fall today.
func DemoCustomers(now time.Time) []rules.Customer {
	out := make([]rules.Customer, len(demoNames))
	for i, p := range demoNames {
		id := fmt.Sprintf("demo-%02d", i+1)
		c := rules.Customer{
			ID: id, Name: p.name, Locale: p.locale, Timezone: demoZones[i%len(demoZones)],
			Email: id + "@example.com", Tier: []string{"bronze", "silver", "gold"}[i%3], Stage: "active",
			SignupAt: now.AddDate(-1-i%3, 0, -i*7), Birthday: time.Date(1970+i, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC),
			Attrs: map[string]any{"source": []string{"web", "store", "referral"}[i%3]},
		}
		if i%3 == 0 {
			c.Phone = fmt.Sprintf("+8613800138%03d", i)
		}
		demoHistory(&c, i, now)
		if i%9 == 4 { // birthday today (the hourly birthday scan picks them up at 09:00 local)
			c.Birthday = time.Date(1985+i%10, now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		}
		if i%10 == 7 { // signup anniversary today
			c.SignupAt = now.AddDate(-2, 0, 0)
		}
		out[i] = c
	}
	return out
}

// demoHistory gives customer number i one of four purchase histories.
func demoHistory(c *rules.Customer, i int, now time.Time) {
	switch i % 4 {
	case 0: // lapsed: bought every ~30 days, then stopped 100+ days ago
		c.OrderCount, c.PurchaseGap = int64(3+i%5), 30
		c.LastPurchaseAt = now.AddDate(0, 0, -(100 + 7*i))
		c.AvgOrderValue = 45 + float64(i)
	case 1: // active: a recent purchase
		c.OrderCount, c.PurchaseGap = int64(2+i%4), 21
		c.LastPurchaseAt = now.AddDate(0, 0, -(3 + i%20))
		c.AvgOrderValue = 60 + float64(i)
		c.Stage = []string{"new", "active", "loyal"}[i%3]
	case 2: // high value: frequent large orders, ranked by value
		c.OrderCount, c.PurchaseGap = int64(12+i), 9
		c.LastPurchaseAt = now.AddDate(0, 0, -(2 + i%5))
		c.AvgOrderValue = 180 + 10*float64(i)
		c.Stage, c.Tier = "loyal", "gold"
		c.Attrs["value_rank"] = i/4 + 1
		c.Attrs["spend_growth"] = 0.6
	default: // prospect: signed up, never bought
		c.Stage = "prospect"
	}
	c.LifetimeValue = float64(c.OrderCount) * c.AvgOrderValue
}

// SeedCustomers stores the demo customers.
func SeedCustomers(ctx context.Context, w CustomerWriter, now time.Time) (int, error) {
	cs := DemoCustomers(now)
	for _, c := range cs {
		if err := w.UpsertCustomer(ctx, c); err != nil {
			return 0, fmt.Errorf("seed customer %s: %w", c.ID, err)
		}
	}
	return len(cs), nil
}

// The events the banner of `rapport dev` suggests sending by hand; each
// starts a sample journey (TestDemoEventsStartSampleJourneys).
const (
	tryOrderEvent     = "Order Completed" // Segment's name: the API stores order_completed
	tryComplaintEvent = "complaint_filed"
)

// DemoCall is one call to the event API.
type DemoCall struct {
	Path string
	Body string
	What string // for the log
}

// DemoCalls are the demo's events, sent through the real API: new
// signups (onboarding), orders (loyalty ladder), a complaint (complaint
// recovery), a completed service and its survey answer, a converted
// referral, and a manual enrollment in the proactive fix.
func DemoCalls(now time.Time) []DemoCall {
	stamp := now.UTC().Format("20060102T150405")
	id := func(s string) string { return s + "-" + stamp }
	calls := []DemoCall{}
	for i, p := range []struct{ id, name, locale, tz string }{
		{"new-ava", "Ava Thompson", "en", "America/Chicago"},
		{"new-liu", "刘诗涵", "zh", "Asia/Shanghai"},
		{"new-omar", "Omar Haddad", "en", "Europe/Paris"},
		{"new-chen", "陈宇", "zh", "Asia/Hong_Kong"},
	} {
		calls = append(calls,
			DemoCall{"/v1/identify", fmt.Sprintf(`{"userId":%q,"traits":{"email":"%s@example.com","name":%q,"locale":%q,"timezone":%q,"createdAt":%q}}`,
				p.id, p.id, p.name, p.locale, p.tz, now.UTC().Format(time.RFC3339)), "identify " + p.id},
			DemoCall{"/v1/track", fmt.Sprintf(`{"userId":%q,"event":"signup","messageId":%q}`, p.id, id(fmt.Sprintf("signup-%d", i))), "signup " + p.id})
	}
	for i, c := range []string{"demo-02", "demo-06", "demo-11"} {
		calls = append(calls, DemoCall{"/v1/track", fmt.Sprintf(`{"userId":%q,"event":%q,"messageId":%q,"properties":{"revenue":%d,"currency":"CNY","order_id":"D-%d","category":"tea"}}`,
			c, tryOrderEvent, id(fmt.Sprintf("order-%d", i)), 88+40*i, 1000+i), "order " + c})
	}
	calls = append(calls,
		DemoCall{"/v1/track", fmt.Sprintf(`{"userId":"demo-03","event":"complaint_filed","messageId":%q,"properties":{"subject":"Late delivery","severity":"high"}}`, id("complaint")), "complaint demo-03"},
		DemoCall{"/v1/track", fmt.Sprintf(`{"userId":"demo-08","event":"service_completed","messageId":%q,"properties":{"case":"S-17"}}`, id("service")), "service completed demo-08"},
		DemoCall{"/v1/track", fmt.Sprintf(`{"userId":"demo-08","event":"survey_answered","messageId":%q,"properties":{"score":9}}`, id("survey")), "survey answer demo-08"},
		DemoCall{"/v1/track", fmt.Sprintf(`{"userId":"demo-10","event":"referral_converted","messageId":%q,"properties":{"amount":120,"friend_name":"Sam"}}`, id("referral")), "referral demo-10"},
		DemoCall{"/v1/identify", `{"userId":"demo-12","traits":{"recall_case":"R-2026-01"}}`, "identify demo-12 (recall case)"},
		DemoCall{"/v1/enroll", fmt.Sprintf(`{"playbook":"proactive_fix","userId":"demo-12","messageId":%q}`, id("recall")), "enroll demo-12 in proactive_fix"},
	)
	return calls
}

// SendDemoCalls sends calls to the API handler in process, as an HTTP
// client would, and returns the first failure (with the API's answer). A
// call answered 5xx is sent again, as Segment's libraries do (each demo
// call carries a messageId, so a repeat is not stored twice): the API
// answers 503 when, for one, an event reaches a journey whose start is
// still on its way to Temporal.
func SendDemoCalls(h http.Handler, apiKey string, calls []DemoCall, log func(string)) error {
	for _, c := range calls {
		if err := sendDemoCall(h, apiKey, c); err != nil {
			return err
		}
		log(c.What)
	}
	return nil
}

// demoAttempts bounds how often a demo call answered 5xx is sent, the
// first wait 100 ms, doubling up to 2 s (about 15 s in all).
const demoAttempts = 10

func sendDemoCall(h http.Handler, apiKey string, c DemoCall) error {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		req := httptest.NewRequest(http.MethodPost, c.Path, bytes.NewBufferString(c.Body))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusOK:
			return nil
		case rec.Code < 500 || attempt == demoAttempts:
			return fmt.Errorf("demo %s: %s %d (attempt %d): %s", c.What, c.Path, rec.Code, attempt, rec.Body.String())
		}
		time.Sleep(wait)
		wait = min(2*wait, 2*time.Second)
	}
}
