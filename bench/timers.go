package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/workflows"
)

// waitSrc enrolls and then waits two hours: the journeys sit on timers.
const waitSrc = `playbook: bench_wait
stage: nurture
trigger: { event: signup }
steps:
  - update: { add_tags: [bench] }
  - wait: 2h
`

// benchTimers is part c: memory of the process running the worker (and,
// here, the driver) with c.timers enrollments waiting on timers.
func benchTimers(ctx context.Context, c config) error {
	fmt.Printf("\n== c: worker memory with %d enrollments waiting on timers\n", c.timers)
	st, cleanup, err := freshStore(ctx, c, "c")
	if err != nil {
		return err
	}
	defer cleanup()
	plan, err := engine.Compile("bench_wait.yaml", []byte(waitSrc))
	if err != nil {
		return err
	}
	tc, _, stop, err := startStack(ctx, c, st, plan, c.keys)
	if err != nil {
		return err
	}
	defer stop()
	ids := make([]string, c.timers)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-c%06d", runTag, i)
		if err := st.UpsertCustomer(ctx, rules.Customer{ID: ids[i], Email: ids[i] + "@example.com"}); err != nil {
			return err
		}
	}
	before := memory()
	start := time.Now()
	err = parallel(c.concurrency, ids, func(id string) error {
		_, _, err := workflows.Enroll(ctx, tc, plan, id, rules.Event{ID: "signup-" + id, Name: "signup", Time: time.Now()})
		return err
	})
	if err != nil {
		return err
	}
	// Every journey has run its update step (the tag) and is on its timer.
	if err := waitCount(ctx, st, `SELECT count(*) FROM customers WHERE 'bench' = ANY(tags)`, c.timers, 30*time.Minute); err != nil {
		return err
	}
	took := time.Since(start)
	time.Sleep(2 * time.Second) // last workflow tasks complete
	after := memory()
	fmt.Printf("started: %d enrollments, all waiting, in %s (%.0f/s)\n", c.timers, took.Round(time.Millisecond), float64(c.timers)/took.Seconds())
	fmt.Printf("memory:  before RSS %s, Go heap in use %s; with %d waiting: RSS %s, heap in use %s (%.1f KiB heap per waiting journey)\n",
		mib(before.rss), mib(before.heap), c.timers, mib(after.rss), mib(after.heap), float64(after.heap-before.heap)/1024/float64(c.timers))
	fmt.Printf("note:    sticky cache %s (RAPPORT_WORKFLOW_CACHE for rapport worker); evicted journeys cost no worker memory while they wait\n", cacheNote(c.cache))
	return nil
}

type mem struct{ rss, heap uint64 }

// memory reads the process's RSS and, after a GC, the Go heap in use.
func memory() mem {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return mem{rss: rss(), heap: ms.HeapInuse}
}

func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb uint64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")), "%d", &kb)
			return kb * 1024
		}
	}
	return 0
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func cacheNote(n int) string {
	if n <= 0 {
		return "at the SDK default of 10,000 workflows"
	}
	return fmt.Sprintf("set to %d workflows", n)
}
