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
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// BenchmarkSendGridIngest compares signed SendGrid webhook calls —
// verified, parsed, attributed, stored in the status history and as
// customer events, dispatched (fake dispatcher), their dispatch markers
// queued for the batcher every 5 ms as rapport serve runs it — with
// the cheapest durable write, a raw single-row INSERT into events per
// event, alternating in the same loop so load swings hit both alike. The
// reported ratio is webhook events per second over raw inserts per
// second (target ≥ 0.5, docs/benchmarks.md). events=1 is a call carrying
// one event; events=20 one carrying an array of 20, as SendGrid batches
// them:
//
//	go test -run '^$' -bench SendGridIngest -benchtime 3s ./api
func BenchmarkSendGridIngest(b *testing.B) {
	for _, n := range []int{1, 20} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) { benchSendGrid(b, n) })
	}
}

func benchSendGrid(b *testing.B, perCall int) {
	st := storetest.New(b)
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err := st.Pool().Exec(ctx, `INSERT INTO customers (id, email) VALUES ('c1', 'ada@example.com')`)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := NewServer(Options{APIKey: testKey, Store: PGStore{st}, Dispatcher: &fakeDispatcher{},
		Feedback: &FeedbackOptions{Recorder: st, SendGridKey: &key.PublicKey, MarkEvery: 5 * time.Millisecond},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close(ctx) })
	var hook, raw time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		req := sendGridCall(b, st, key, i, perCall)
		b.StartTimer()

		t0 := time.Now()
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		t1 := time.Now()
		if rec.Code != 200 {
			b.Fatalf("webhook: %d %s", rec.Code, rec.Body)
		}
		for j := range perCall {
			if _, err := st.Pool().Exec(ctx, `INSERT INTO events (id, customer_id, name, time, props) VALUES ($1, 'c1', 'raw', now(), '{}')`,
				fmt.Sprintf("raw-%d-%d", i, j)); err != nil {
				b.Fatal(err)
			}
		}
		hook, raw = hook+t1.Sub(t0), raw+time.Since(t1)
	}
	events := float64(b.N * perCall)
	b.ReportMetric(events/hook.Seconds(), "webhook_events/s")
	b.ReportMetric(events/raw.Seconds(), "raw_inserts/s")
	b.ReportMetric(raw.Seconds()/hook.Seconds(), "ratio")
}

// sendGridCall stores perCall sent messages and returns the signed
// webhook call reporting each delivered.
func sendGridCall(b *testing.B, st *store.Store, key *ecdsa.PrivateKey, i, perCall int) *http.Request {
	b.Helper()
	var events []string
	for j := range perCall {
		mkey, pid := fmt.Sprintf("e%d-%d/mail/1", i, j), fmt.Sprintf("m%d-%d@rapport.test", i, j)
		_, err := st.Pool().Exec(context.Background(), `INSERT INTO messages (key, enrollment_id, customer_id, channel, recipient, status, provider_id, created_at)
			VALUES ($1, 'e', 'c1', 'email', 'ada@example.com', 'sent', $2, now())`, mkey, pid)
		if err != nil {
			b.Fatal(err)
		}
		events = append(events, fmt.Sprintf(`{"email":"ada@example.com","timestamp":1513299569,"smtp-id":"<%s>","event":"delivered","sg_event_id":"ev%d-%d","response":"250 OK"}`, pid, i, j))
	}
	body := "[" + strings.Join(events, ",") + "]"
	h := sha256.Sum256([]byte("1513299569" + body))
	sig, _ := ecdsa.SignASN1(rand.Reader, key, h[:])
	req := httptest.NewRequest("POST", SendGridPath, strings.NewReader(body))
	req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", base64.StdEncoding.EncodeToString(sig))
	req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", "1513299569")
	return req
}
