package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// result is what the load generator saw.
type result struct {
	mu        sync.Mutex
	sent      int             // events attempted
	accepted  int             // answered 200 (possibly after retries)
	errors    int             // gave up after retries
	retries   int             // extra attempts after a 503 or transport error
	statuses  map[int]int     // final status of each attempt
	latencies []time.Duration // every HTTP call
	signups   int             // accepted signups (one per new customer)
	spenders  map[string]bool // customers with an accepted purchase >= 10
	elapsed   time.Duration
	skipped   int // ticks dropped because all senders were busy
}

// expected is the number of enrollments the accepted events prescribe.
func (r *result) expected() int { return r.signups + len(r.spenders) }

// event is one track call to make.
type event struct {
	customer, name, id string
	amount             float64
}

// load sends events at rate per second for d through 16 senders. The
// rate is a ceiling: a tick finding every sender busy is skipped (and
// counted), so a slow system is never buried under a growing backlog.
func load(ctx context.Context, apiURL string, d time.Duration, rate float64) *result {
	res := &result{statuses: map[int]int{}, spenders: map[string]bool{}}
	jobs := make(chan event)
	var wg sync.WaitGroup
	httpc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	var customers struct {
		sync.Mutex
		ids []string
	}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range jobs {
				if !send(ctx, httpc, apiURL, ev, res) {
					continue
				}
				res.mu.Lock()
				switch {
				case ev.name == "signup":
					res.signups++
				case ev.amount >= 10:
					res.spenders[ev.customer] = true
				}
				res.mu.Unlock()
				if ev.name == "signup" {
					customers.Lock()
					customers.ids = append(customers.ids, ev.customer)
					customers.Unlock()
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	start := time.Now()
	deadline := time.After(d)
	progress := time.NewTicker(time.Minute)
	defer progress.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			close(jobs)
			wg.Wait()
			res.elapsed = time.Since(start)
			return res
		case <-deadline:
			close(jobs)
			wg.Wait()
			res.elapsed = time.Since(start)
			return res
		case <-progress.C:
			res.mu.Lock()
			fmt.Printf("soak: %s: %d sent, %d accepted, %d errors\n", time.Since(start).Round(time.Second), res.sent, res.accepted, res.errors)
			res.mu.Unlock()
		case <-tick.C:
			customers.Lock()
			known := len(customers.ids)
			ev := event{id: fmt.Sprintf("e%07d", n)}
			if known == 0 || rng.Float64() < 0.3 {
				ev.customer, ev.name = fmt.Sprintf("s%07d", n), "signup"
			} else {
				ev.customer, ev.name, ev.amount = customers.ids[rng.IntN(known)], "purchase", float64(1+rng.IntN(100))
			}
			customers.Unlock()
			select {
			case jobs <- ev:
			default:
				res.mu.Lock()
				res.skipped++
				res.mu.Unlock()
			}
		}
	}
}

// send posts one event, retrying 503s and transport errors with the same
// messageId as a Segment client would, and reports whether it was
// accepted.
func send(ctx context.Context, c *http.Client, apiURL string, ev event, res *result) bool {
	body := fmt.Sprintf(`{"userId":%q,"event":%q,"messageId":%q,"properties":{"amount":%g}}`, ev.customer, ev.name, ev.id, ev.amount)
	res.mu.Lock()
	res.sent++
	res.mu.Unlock()
	for attempt := 1; attempt <= 5; attempt++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/v1/track", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := c.Do(req)
		lat := time.Since(start)
		status := 0
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
		}
		res.mu.Lock()
		res.latencies = append(res.latencies, lat)
		res.statuses[status]++
		switch {
		case status == http.StatusOK:
			res.accepted++
		case (status == 0 || status == http.StatusServiceUnavailable) && attempt < 5:
			res.retries++
		default:
			res.errors++
		}
		res.mu.Unlock()
		if status == http.StatusOK {
			return true
		}
		if status != 0 && status != http.StatusServiceUnavailable {
			return false
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
	return false
}

// percentile is the p-th percentile (0–100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// report prints the figures docs/reliability.md records.
func report(o options, r *result, enrollments int, waited time.Duration) {
	errRate := 0.0
	if r.sent > 0 {
		errRate = float64(r.errors) / float64(r.sent) * 100
	}
	fmt.Printf(`soak results
  duration            %s (target rate %.0f/s, achieved %.1f/s)
  events sent         %d (accepted %d, errors %d = %.3f%%, retried attempts %d, skipped ticks %d)
  HTTP statuses       %v
  API latency         p50 %s  p99 %s  max %s  (%d calls)
  enrollments         %d in PostgreSQL, %d expected (%d signups + %d first big purchases), settled %s after the load
`, r.elapsed.Round(time.Second), o.rate, float64(r.sent)/r.elapsed.Seconds(),
		r.sent, r.accepted, r.errors, errRate, r.retries, r.skipped,
		r.statuses,
		percentile(r.latencies, 50).Round(100*time.Microsecond), percentile(r.latencies, 99).Round(100*time.Microsecond), percentile(r.latencies, 100).Round(time.Millisecond), len(r.latencies),
		enrollments, r.expected(), r.signups, len(r.spenders), waited.Round(time.Second))
}
