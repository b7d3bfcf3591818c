package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/store/storetest"
)

// BenchmarkSendGridIngest compares a signed SendGrid webhook carrying
// one delivery event — verified, parsed, attributed, stored in the status
// history and as a customer event, dispatched (fake dispatcher) — with
// the cheapest durable write, a raw single-row INSERT into events,
// alternating in the same loop so load swings hit both alike. The
// reported ratio is webhook events per second over raw inserts per
// second (target ≥ 0.5, docs/benchmarks.md):
//
//	go test -run '^$' -bench SendGridIngest -benchtime 3s ./api
func BenchmarkSendGridIngest(b *testing.B) {
	st := storetest.New(b)
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err := st.Pool().Exec(ctx, `INSERT INTO customers (id, email) VALUES ('c1', 'ada@example.com')`)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := NewServer(Options{APIKey: testKey, Store: PGStore{st}, Dispatcher: &fakeDispatcher{},
		Feedback: &FeedbackOptions{Recorder: st, SendGridKey: &key.PublicKey},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	var hook, raw time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		mkey, pid := fmt.Sprintf("e%d/mail/1", i), fmt.Sprintf("m%d@rapport.test", i)
		_, err := st.Pool().Exec(ctx, `INSERT INTO messages (key, enrollment_id, customer_id, channel, recipient, status, provider_id, created_at)
			VALUES ($1, 'e', 'c1', 'email', 'ada@example.com', 'sent', $2, now())`, mkey, pid)
		if err != nil {
			b.Fatal(err)
		}
		body := fmt.Sprintf(`[{"email":"ada@example.com","timestamp":1513299569,"smtp-id":"<%s>","event":"delivered","sg_event_id":"ev%d","response":"250 OK"}]`, pid, i)
		h := sha256.Sum256([]byte("1513299569" + body))
		sig, _ := ecdsa.SignASN1(rand.Reader, key, h[:])
		req := httptest.NewRequest("POST", SendGridPath, strings.NewReader(body))
		req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", base64.StdEncoding.EncodeToString(sig))
		req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", "1513299569")
		b.StartTimer()

		t0 := time.Now()
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		t1 := time.Now()
		if rec.Code != 200 {
			b.Fatalf("webhook: %d %s", rec.Code, rec.Body)
		}
		if _, err := st.Pool().Exec(ctx, `INSERT INTO events (id, customer_id, name, time, props) VALUES ($1, 'c1', 'raw', now(), '{}')`,
			fmt.Sprintf("raw-%d", i)); err != nil {
			b.Fatal(err)
		}
		hook, raw = hook+t1.Sub(t0), raw+time.Since(t1)
	}
	b.ReportMetric(float64(b.N)/hook.Seconds(), "webhook_events/s")
	b.ReportMetric(float64(b.N)/raw.Seconds(), "raw_inserts/s")
	b.ReportMetric(raw.Seconds()/hook.Seconds(), "ratio")
}
