package api

import (
	"fmt"
	"testing"

	"github.com/rapport-crm/rapport/engine"
)

// BenchmarkTriggersManyPlaybooks asks, as the event API does of every
// event it stores (TriggerNamer), whether a deployed trigger names a page
// view, with 500 playbooks deployed, each triggered by an event of its
// own.
func BenchmarkTriggersManyPlaybooks(b *testing.B) {
	reg := engine.NewRegistry()
	for i := range 500 {
		reg.Add(&engine.Plan{Name: fmt.Sprintf("p%03d", i), Version: "v1",
			Trigger: engine.Trigger{Kind: engine.TriggerEvent, Event: fmt.Sprintf("event_%d", i)}})
	}
	plans := &LivePlans{}
	plans.Set(reg)
	d := NewEventDispatcher(plans, nil, nil, nil)
	if !d.Triggers("event_499") {
		b.Fatal("event_499 names no trigger")
	}
	b.ReportAllocs()
	for b.Loop() {
		if d.Triggers("page") {
			b.Fatal("page names a trigger")
		}
	}
}
