package api

// Segment's Go library, analytics-go v3, as a test peer: it is what a Go
// integrator points at `rapport serve`, and it sends its own batch envelope
// (context and messageId beside the batch, sentAt) and its own message
// shapes. The module is a test dependency only.

import (
	"io"
	"log"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	analytics "github.com/segmentio/analytics-go/v3"
)

// goCallback records which messages analytics-go delivered.
type goCallback struct {
	mu       sync.Mutex
	ok, fail int
	errs     []error
}

func (c *goCallback) Success(analytics.Message) { c.mu.Lock(); c.ok++; c.mu.Unlock() }
func (c *goCallback) Failure(_ analytics.Message, err error) {
	c.mu.Lock()
	c.fail++
	c.errs = append(c.errs, err)
	c.mu.Unlock()
}

func TestPeerAnalyticsGo(t *testing.T) {
	h, st := pgHarness(t)
	srv := httptest.NewServer(h.srv)
	defer srv.Close()
	cb := &goCallback{}
	client, err := analytics.NewWithConfig(testKey, analytics.Config{
		Endpoint: srv.URL, Interval: time.Hour, BatchSize: 100, Callback: cb,
		Logger: analytics.StdLogger(log.New(io.Discard, "", 0)),
	})
	if err != nil {
		t.Fatal(err)
	}
	p := "go"
	user, anon := p+"-u1", p+"-anon"
	for _, m := range []analytics.Message{
		analytics.Track{AnonymousId: anon, Event: "Product Viewed", Properties: analytics.NewProperties().Set("product_id", "p1").SetPrice(10)},
		analytics.Page{AnonymousId: anon, Name: "Pricing", Properties: analytics.NewProperties().SetURL("https://shop.example/pricing")},
		analytics.Identify{UserId: user, AnonymousId: anon, Traits: analytics.NewTraits().SetEmail(p + "@example.com").SetName("Ann Lee")},
		analytics.Identify{UserId: p + "-bad", Traits: analytics.NewTraits().SetEmail("not-an-email")},
		analytics.Track{UserId: user, Event: "Order Completed", Properties: analytics.NewProperties().SetOrderId(p + "-o1").SetRevenue(30).SetCurrency("usd")},
		analytics.Screen{UserId: user, Name: "Home", Properties: analytics.NewProperties().SetCategory("app")},
		analytics.Group{UserId: user, GroupId: p + "-acme", Traits: analytics.NewTraits().Set("plan", "pro")},
		analytics.Alias{UserId: user, PreviousId: p + "-old"},
	} {
		if err := client.Enqueue(m); err != nil {
			t.Fatalf("enqueue %T: %v", m, err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	cb.mu.Lock()
	defer cb.mu.Unlock()
	// The batch is answered 200, so the library counts every message
	// delivered; the bad identify is refused by Rapport, not lost with
	// its batch.
	if cb.ok != 8 || cb.fail != 0 {
		t.Fatalf("analytics-go delivered %d and failed %d (%v), want 8 and 0", cb.ok, cb.fail, cb.errs)
	}
	checkPeerRows(t, st, p)
}
