package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/scan"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/workflows"
)

// Shape is what a shape workflow does in its first workflow task: the
// features a journey's first task has and a bare workflow's has not,
// switched on one at a time.
type Shape struct {
	LAs     int  // no-op local activities, one after the other
	Open    bool // then wait an hour on a timer, as part e's journeys do, instead of completing
	Upsert  bool // upsert RapportStep, as a journey does when it reaches a step
	Version bool // call GetVersion (a marker and the SDK's TemporalChangeVersion upsert)
}

// shapes are part shape's variants, each adding one feature to the one
// before; "journey" is Rapport's own journey, started from this process
// as the scan starts it, and "scan" the same journeys started by a scan
// (part e's Rapport side).
var shapes = []struct {
	name  string
	shape Shape
	input bool // the journey's input (the playbook's source and pinned plan) instead of none
	attrs bool // the journey's four search attributes and summary at the start
}{
	{name: "bare", shape: Shape{LAs: 1}},
	{name: "open", shape: Shape{LAs: 1, Open: true}},
	{name: "input", shape: Shape{LAs: 1, Open: true}, input: true},
	{name: "attrs", shape: Shape{LAs: 1, Open: true}, input: true, attrs: true},
	{name: "upsert", shape: Shape{LAs: 1, Open: true, Upsert: true}, input: true, attrs: true},
	{name: "version", shape: Shape{LAs: 1, Open: true, Upsert: true, Version: true}, input: true, attrs: true},
	{name: "twolas", shape: Shape{LAs: 2, Open: true, Upsert: true, Version: true}, input: true, attrs: true},
	{name: "journey"},
	{name: "scan"},
}

// ShapeWorkflow runs s: part shape's stand-in for a journey's first
// workflow task. in is carried, not read.
func ShapeWorkflow(ctx workflow.Context, in workflows.JourneyInput, s Shape) error {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
	for range s.LAs {
		if err := workflow.ExecuteLocalActivity(ctx, Noop, in.CustomerID).Get(ctx, nil); err != nil {
			return err
		}
	}
	if s.Version {
		workflow.GetVersion(ctx, "bench-shape", workflow.DefaultVersion, 1)
	}
	if s.Upsert {
		if err := workflow.UpsertTypedSearchAttributes(ctx, workflows.SAStep.ValueSet("s1")); err != nil {
			return err
		}
	}
	if s.Open {
		return workflow.Sleep(ctx, time.Hour)
	}
	return nil
}

// benchShape is part shape: for each variant named in c.shapes (in the
// order of shapes), n workflows started eagerly, c.concurrency at a time,
// timed until every one has run its local activities, with the CPU the
// dev server spent on them. Run it once per variant, each on a fresh dev
// server (the server slows as it holds more open workflows).
func benchShape(ctx context.Context, c config) error {
	n := c.scanStarts
	st, cleanup, err := freshStore(ctx, c, "shape")
	if err != nil {
		return err
	}
	defer cleanup()
	plan, err := startsPlan("bench_shape")
	if err != nil {
		return err
	}
	tc, _, stop, err := startStack(ctx, c, st, plan, nil)
	if err != nil {
		return err
	}
	defer stop()
	if _, err := seedCustomers(ctx, st, n, 1); err != nil {
		return err
	}
	want := strings.Split(c.shapes, ",")
	for _, v := range shapes {
		if !slices.Contains(want, v.name) {
			continue
		}
		profile := ""
		if c.eProfile != "" {
			profile = v.name + "-" + c.eProfile
		}
		stopProfile, err := profileCPU(profile)
		if err != nil {
			return err
		}
		cpu0, srv0, pg0 := cpuTime(), childCPUTime(), postgresCPUTime()
		took, err := runShape(ctx, tc, st, plan, n, c.concurrency, v.name, v.shape, v.input, v.attrs)
		cpu, srv, pg := cpuTime()-cpu0, childCPUTime()-srv0, postgresCPUTime()-pg0
		stopProfile()
		if err != nil {
			return fmt.Errorf("shape %s: %w", v.name, err)
		}
		fmt.Printf("shape %-8s %d workflows in %s → %.0f /s; per workflow %.2f ms CPU of this process, %.2f ms of the dev server, %.2f ms of PostgreSQL\n",
			v.name, n, took.Round(time.Millisecond), float64(n)/took.Seconds(), ms(cpu, n), ms(srv, n), ms(pg, n))
	}
	return nil
}

// runShape starts n workflows of one variant, concurrency at a time and
// eagerly, and waits until each has run its local activities (for
// "journey": until every enrollment is admitted).
func runShape(ctx context.Context, tc client.Client, st *store.Store, plan *engine.Plan, n, concurrency int, name string, s Shape, input, attrs bool) (time.Duration, error) {
	queue, stop, err := queueWorker(tc, "rapport-bench-shape", ShapeWorkflow)
	if err != nil {
		return 0, err
	}
	defer stop()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-b%07d", runTag, i)
	}
	now := time.Now().UTC()
	noopCount.Store(0)
	start := time.Now()
	if name == "scan" {
		_, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("bench-shape-scan-%d", start.UnixNano()), TaskQueue: workflows.TaskQueue},
			scan.WorkflowName, scan.Input{Playbook: plan.Name})
		if err != nil {
			return 0, err
		}
		if err := waitCount(ctx, st, `SELECT count(*) FROM enrollments`, n, 10*time.Minute); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	err = parallel(concurrency, ids, func(id string) error {
		trigger := scan.TriggerEvent(plan, id, now)
		if name == "journey" {
			_, _, err := workflows.Enroll(ctx, tc, plan, id, trigger)
			return err
		}
		opts := client.StartWorkflowOptions{ID: "shape-" + name + "-" + id, TaskQueue: queue, EnableEagerStart: true}
		if attrs {
			opts = workflows.StartOptions(plan, id, trigger)
			opts.ID, opts.TaskQueue = "shape-"+name+"-"+id, queue
		}
		var in workflows.JourneyInput
		if input {
			var err error
			if in, err = workflows.Input(plan, id, trigger); err != nil {
				return err
			}
		}
		_, err := tc.ExecuteWorkflow(ctx, opts, ShapeWorkflow, in, s)
		return err
	})
	if err != nil {
		return 0, err
	}
	if name == "journey" {
		if err := waitCount(ctx, st, `SELECT count(*) FROM enrollments`, n, 10*time.Minute); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	if err := waitNoops(int64(n * s.LAs)); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
