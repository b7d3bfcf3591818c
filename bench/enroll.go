package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/payloadcrypt"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

const benchAPIKey = "bench-key"

// welcomeSrc: a signup enrolls the customer, who gets one email at once.
const welcomeSrc = `playbook: bench_welcome
stage: onboard
trigger: { event: signup }
entry: { reentry: always }
templates:
  welcome:
    en: { subject: "Welcome {{ customer.name }}", text: "Hello {{ customer.name }}. Unsubscribe: {{ unsubscribe_url }}" }
    zh: { subject: "欢迎 {{ customer.name }}", text: "您好 {{ customer.name }}。退订：{{ unsubscribe_url }}" }
steps:
  - send: { channel: email, template: welcome }
`

// benchEnrollments is part a. With -encryption it measures Rapport four
// times, payload encryption off, on, on, off (each in a fresh database:
// the ABBA order cancels a load that drifts during the run), and reports
// the ratio of the mean rates beside the bare baseline.
func benchEnrollments(ctx context.Context, c config) error {
	fmt.Printf("\n== a: enrollments/s, tracked event → first message recorded (%d events, concurrency %d)\n", c.enrollments, c.concurrency)
	plan, err := engine.Compile("bench_welcome.yaml", []byte(welcomeSrc))
	if err != nil {
		return err
	}
	type run struct {
		label string
		keys  *payloadcrypt.Keyring
		rate  float64
	}
	runs := []*run{{label: "rapport", keys: c.keys}}
	if c.encryption {
		runs = []*run{{label: "clear1"}, {label: "encrypted1", keys: c.keys}, {label: "encrypted2", keys: c.keys}, {label: "clear2"}}
	}
	tc, err := dial(ctx, c, nil)
	if err != nil {
		return err
	}
	defer tc.Close()
	// The baseline is started both ways, plainly and eagerly (as
	// Rapport's starters ask, workflows.StartOptions), before and after
	// the Rapport runs (the server slows as it holds more workflows; see
	// benchScanStarts); the faster way, at the mean of its two rates,
	// counts.
	conc := []int{c.concurrency}
	before := bareRound(ctx, tc, c.enrollments, conc, "before")
	for _, r := range runs {
		if r.rate, err = enrollmentRate(ctx, c, plan, r.label, r.keys); err != nil {
			return err
		}
	}
	after := bareRound(ctx, tc, c.enrollments, conc, "after")
	bRate, name, err := fastestBare(before, after)
	if err != nil {
		return err
	}
	fmt.Printf("bare:    %s: %.0f workflows/s, the mean of before and after\n", name, bRate)
	for _, r := range runs {
		fmt.Printf("ratio:   %s/bare %.2f (target ≥ 0.5)\n", r.label, r.rate/bRate)
	}
	if c.encryption {
		clear, encrypted := (runs[0].rate+runs[3].rate)/2, (runs[1].rate+runs[2].rate)/2
		fmt.Printf("ratio:   encrypted/clear %.2f, mean of %.1f and %.1f over mean of %.1f and %.1f enrollments/s (target ≥ 0.9)\n",
			encrypted/clear, runs[1].rate, runs[2].rate, runs[0].rate, runs[3].rate)
	}
	return nil
}

// enrollmentRate runs part a's Rapport side once, in a fresh database,
// payloads encrypted with keys (nil: in clear), and returns enrollments/s.
func enrollmentRate(ctx context.Context, c config, plan *engine.Plan, label string, keys *payloadcrypt.Keyring) (float64, error) {
	st, cleanup, err := freshStore(ctx, c, "a")
	if err != nil {
		return 0, err
	}
	defer cleanup()
	_, stack, stop, err := startStack(ctx, c, st, plan, keys)
	if err != nil {
		return 0, err
	}
	defer stop()
	ids := make([]string, c.enrollments)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-a%s%06d", runTag, label, i)
		if err := st.UpsertCustomer(ctx, rules.Customer{ID: ids[i], Email: ids[i] + "@example.com", Name: "Bench " + ids[i], Locale: []string{"en", "zh"}[i%2]}); err != nil {
			return 0, err
		}
	}

	db0 := dbCounts(ctx, st) // first: it waits for the counters to settle
	cpu0, srv0 := cpuTime(), childCPUTime()
	start := time.Now()
	if err := parallel(c.concurrency, ids, func(id string) error {
		return track(stack.API, fmt.Sprintf(`{"userId":%q,"event":"signup","messageId":"signup-%s"}`, id, id))
	}); err != nil {
		return 0, err
	}
	accepted := time.Since(start)
	if err := waitCount(ctx, st, `SELECT count(*) FROM messages`, c.enrollments, 10*time.Minute); err != nil {
		return 0, err
	}
	rapport := time.Since(start)
	cpu, srv := cpuTime()-cpu0, childCPUTime()-srv0
	db := dbCounts(ctx, st).minus(db0)
	var sent int
	_ = st.Pool().QueryRow(ctx, `SELECT count(*) FROM messages WHERE status = 'sent'`).Scan(&sent)
	rate := float64(c.enrollments) / rapport.Seconds()
	var nkeys int
	_ = st.Pool().QueryRow(ctx, `SELECT count(*) FROM customer_keys`).Scan(&nkeys)
	enc := "payloads in clear"
	if keys != nil {
		enc = fmt.Sprintf("payloads encrypted, %d customer keys", nkeys)
	}
	fmt.Printf("%-10s %d events accepted by the API in %s; %d first messages recorded (%d sent) after %s → %.0f enrollments/s (%s)\n",
		label+":", c.enrollments, accepted.Round(time.Millisecond), c.enrollments, sent, rapport.Round(time.Millisecond), rate, enc)
	fmt.Printf("cost:      per enrollment, %.2f ms CPU of this process (API, dispatcher, worker), %.2f ms of the dev server it started; %.1f commits, %.1f rows inserted, %.1f updated in PostgreSQL\n",
		ms(cpu, c.enrollments), ms(srv, c.enrollments), float64(db.commits)/float64(c.enrollments), float64(db.inserted)/float64(c.enrollments), float64(db.updated)/float64(c.enrollments))
	return rate, nil
}

func track(h http.Handler, body string) error {
	req := httptest.NewRequest(http.MethodPost, "/v1/track", bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+benchAPIKey)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("track: %d %s", rec.Code, rec.Body)
	}
	return nil
}

// parallel runs fn over items with n goroutines; the first error wins.
func parallel(n int, items []string, fn func(string) error) error {
	ch := make(chan string)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range ch {
				if err := fn(it); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for _, it := range items {
		ch <- it
	}
	close(ch)
	wg.Wait()
	return first
}

// waitCount polls query until it counts want rows.
func waitCount(ctx context.Context, st *store.Store, query string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var n int
		if err := st.Pool().QueryRow(ctx, query).Scan(&n); err != nil {
			return err
		}
		if n >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%q: %d of %d after %s", query, n, want, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const bareQueue = "rapport-bench-bare"

// BareWorkflow is the baseline: one no-op local activity, as a journey's
// steps are local activities. (Until 2026-11-26 it ran a regular
// activity, two more round trips through the server, which flattered
// Rapport.)
func BareWorkflow(ctx workflow.Context, id string) error {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
	return workflow.ExecuteLocalActivity(ctx, Noop, id).Get(ctx, nil)
}

// noopCount counts Noop executions: the bare run ends when every
// workflow's activity has run, as the Rapport run ends when every
// enrollment's first message is recorded (also inside a local activity).
var noopCount atomic.Int64

// Noop does nothing but count.
func Noop(context.Context, string) error {
	noopCount.Add(1)
	return nil
}

// eagerly labels a bare run started with EnableEagerStart.
func eagerly(eager bool) string {
	if eager {
		return " eagerly (EnableEagerStart: the first workflow task comes back with the start)"
	}
	return ""
}

// benchBare starts n bare workflows, concurrency at a time, on their own
// worker and waits until every one has run its local activity; eager
// starts them with EnableEagerStart.
func benchBare(ctx context.Context, tc client.Client, n, concurrency int, eager bool) (time.Duration, error) {
	queue, stop, err := queueWorker(tc, bareQueue, BareWorkflow)
	if err != nil {
		return 0, err
	}
	defer stop()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("bare-%d-%06d", time.Now().UnixNano(), i)
	}
	noopCount.Store(0)
	start := time.Now()
	err = parallel(concurrency, ids, func(id string) error {
		_, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue, EnableEagerStart: eager}, BareWorkflow, id)
		return err
	})
	if err != nil {
		return 0, err
	}
	if err := waitNoops(int64(n)); err != nil {
		return 0, fmt.Errorf("bare: %w", err)
	}
	return time.Since(start), nil
}

// queueWorker starts a worker running wf on a queue of its own, named
// after prefix: workflows an earlier run left behind (one that failed)
// must not count in this one. stop stops the worker.
func queueWorker(tc client.Client, prefix string, wf any) (queue string, stop func(), err error) {
	queue = fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	w := worker.New(tc, queue, worker.Options{})
	w.RegisterWorkflow(wf)
	if err := w.Start(); err != nil {
		return "", nil, err
	}
	return queue, w.Stop, nil
}

// waitNoops waits until Noop has run want times since noopCount was last
// reset, for up to 10 minutes.
func waitNoops(want int64) error {
	deadline := time.Now().Add(10 * time.Minute)
	for noopCount.Load() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d activities ran", noopCount.Load(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
