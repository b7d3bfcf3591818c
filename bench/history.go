package main

import (
	"fmt"
	"os"
	"path/filepath"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"
)

// benchHistory is part history: what one journey costs Temporal, read
// from the histories recorded on a real dev server (the sample
// playbooks' main paths in workflows/testdata/histories): events, workflow
// tasks, timers, and bytes as the server stores them (protobuf), with the
// first event (the input: source and pinned plan) apart. docs/capacity.md
// scales these to a million enrollments a day.
func benchHistory(c config) error {
	files, err := filepath.Glob(filepath.Join(c.historyDir, "sample-*.json"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("-history-dir %s: no sample-*.json histories (%v); run from the repository root", c.historyDir, err)
	}
	fmt.Printf("\n== history: per journey, %d recorded sample runs in %s\n", len(files), c.historyDir)
	fmt.Printf("%-40s %7s %7s %7s %9s %9s\n", "history", "events", "tasks", "timers", "bytes", "input")
	var events, tasks, timers, bytes, input int
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			return err
		}
		h, err := client.HistoryFromJSON(r, client.HistoryJSONOptions{})
		r.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		var t, tm int
		for _, e := range h.Events {
			switch e.EventType {
			case enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
				t++
			case enums.EVENT_TYPE_TIMER_STARTED:
				tm++
			}
		}
		b, in := proto.Size(h), proto.Size(h.Events[0])
		fmt.Printf("%-40s %7d %7d %7d %9d %9d\n", filepath.Base(f), len(h.Events), t, tm, b, in)
		events, tasks, timers, bytes, input = events+len(h.Events), tasks+t, timers+tm, bytes+b, input+in
	}
	n := len(files)
	fmt.Printf("%-40s %7.1f %7.1f %7.1f %9d %9d\n", "mean", float64(events)/float64(n), float64(tasks)/float64(n), float64(timers)/float64(n), bytes/n, input/n)
	return nil
}
