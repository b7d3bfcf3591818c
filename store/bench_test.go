package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// The benchmarks compare the activities with the cheapest durable write
// PostgreSQL offers here: one single-row INSERT in its own transaction.
// Run them together so the ratios compare like with like:
//
//	go test -run '^$' -bench . -benchtime 3s ./store

const benchCustomers = 2000

func benchStore(b *testing.B) *store.Store {
	b.Helper()
	s := storetest.New(b)
	_, err := s.Pool().Exec(context.Background(), `
		INSERT INTO customers (id, email, name, locale)
		SELECT 'c' || i, 'c' || i || '@example.com', 'Customer ' || i, 'en'
		FROM generate_series(0, $1 - 1) AS i`, benchCustomers)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// rawInsert is the baseline op: one outbox-sized row, one INSERT,
// autocommit.
func rawInsert(b *testing.B, s *store.Store, i int) {
	_, err := s.Pool().Exec(context.Background(), `
		INSERT INTO messages (key, customer_id, channel, template, topic, recipient, subject, status, created_at)
		VALUES ($1, $2, 'email', 'welcome', 'marketing', $3, 'Welcome', 'sent', now())`,
		fmt.Sprintf("raw/%d", i), fmt.Sprintf("c%d", i%benchCustomers), "x@example.com")
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRawInsert is the baseline alone.
func BenchmarkRawInsert(b *testing.B) {
	s := benchStore(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rawInsert(b, s, i)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// paired times op against the raw insert, alternating one of each per
// iteration, so that load from other processes hits both alike and the
// reported ratio (x-raw: op time / raw insert time) stays meaningful on a
// shared machine.
func paired(b *testing.B, s *store.Store, op func(i int)) {
	b.Helper()
	var rawT, opT time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := time.Now()
		rawInsert(b, s, i)
		rawT += time.Since(t)
		t = time.Now()
		op(i)
		opT += time.Since(t)
	}
	b.ReportMetric(float64(b.N)/opT.Seconds(), "ops/s")
	b.ReportMetric(float64(b.N)/rawT.Seconds(), "raw-ops/s")
	b.ReportMetric(opT.Seconds()/rawT.Seconds(), "x-raw")
}

// BenchmarkSendMessage records and "delivers" (log channel, discarded)
// one marketing email per op: customer lock, consent, both caps, render,
// queued row, sent update.
func BenchmarkSendMessage(b *testing.B) {
	benchSend(b, benchStore(b))
}

// BenchmarkSendMessageErasureCheck is BenchmarkSendMessage with an
// erasure secret configured and 10,000 erased addresses on the
// suppression list: every send also checks the recipient's keyed hash
// (store.queueInsertUnlessErased).
func BenchmarkSendMessageErasureCheck(b *testing.B) {
	cfg := storetest.Config()
	cfg.ErasureSecrets = [][]byte{[]byte("bench-erasure-secret-0123456789")}
	s := storetest.NewWithConfig(b, cfg)
	_, err := s.Pool().Exec(context.Background(), `
		INSERT INTO customers (id, email, name, locale)
		SELECT 'c' || i, 'c' || i || '@example.com', 'Customer ' || i, 'en'
		FROM generate_series(0, $1 - 1) AS i`, benchCustomers)
	if err != nil {
		b.Fatal(err)
	}
	var forms []string
	for i := range 10000 {
		forms = append(forms, store.ErasedAddress(cfg.ErasureSecrets[0], "email", fmt.Sprintf("gone%d@example.com", i)))
	}
	_, err = s.Pool().Exec(context.Background(), `INSERT INTO suppressions (channel, address, reason, suppressed_at, source)
		SELECT 'email', a, 'erased', now(), 'erasure' FROM unnest($1::text[]) AS a`, forms)
	if err != nil {
		b.Fatal(err)
	}
	benchSend(b, s)
}

func benchSend(b *testing.B, s *store.Store) {
	ctx := context.Background()
	reqs := make([]activities.SendRequest, benchCustomers)
	for i := range reqs {
		c := rules.Customer{ID: fmt.Sprintf("c%d", i), Name: fmt.Sprintf("Customer %d", i), Locale: "en"}
		reqs[i] = sendReq(enrollment(fmt.Sprintf("en%d", i), "nurture", c.ID), c, "", t0)
		reqs[i].CapMax, reqs[i].CapPer = 2, 7*24*time.Hour
	}
	snd := sender(s)
	paired(b, s, func(i int) {
		r := reqs[i%benchCustomers]
		r.Key = fmt.Sprintf("send/%d", i)
		// Each customer's sends are 8 days apart, so no cap ever bites and
		// every op takes the full path to "sent".
		r.Now = t0.Add(time.Duration(i/benchCustomers) * 8 * 24 * time.Hour)
		res, err := snd.SendMessage(ctx, r)
		if err != nil || res.Status != activities.SendSent {
			b.Fatalf("send %d: %+v %v", i, res, err)
		}
	})
}

// BenchmarkAdjustPoints awards points: customer lock, ledger entry,
// balance update.
func BenchmarkAdjustPoints(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	paired(b, s, func(i int) {
		_, err := s.AdjustPoints(ctx, activities.PointsRequest{
			Key: fmt.Sprintf("pts/%d", i), CustomerID: fmt.Sprintf("c%d", i%benchCustomers), Delta: 10, Reason: "bench",
		})
		if err != nil {
			b.Fatal(err)
		}
	})
}
