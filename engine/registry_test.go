package engine

import (
	"fmt"
	"slices"
	"testing"
)

// names are the plans' name@version, in order.
func names(ps []*Plan) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name + "@" + p.Version
	}
	return out
}

func TestRegistryTriggeringIndexesTheLatestPlans(t *testing.T) {
	r := NewRegistry()
	r.Add(&Plan{Name: "welcome", Version: "v1", Trigger: Trigger{Kind: TriggerEvent, Event: "signup"}})
	r.Add(&Plan{Name: "abandoned", Version: "v1", Trigger: Trigger{Kind: TriggerEvent, Events: []EventTrigger{
		{Event: "cart_updated"}, {Event: "signup"}, {Event: "cart_updated"}}}})
	r.Add(&Plan{Name: "winback", Version: "v1", Trigger: Trigger{Kind: TriggerSegment, Event: "signup"}})
	r.Add(&Plan{Name: "birthday", Version: "v1", Trigger: Trigger{Kind: TriggerDate, Date: "birthday"}})

	for event, want := range map[string][]string{
		"signup":       {"abandoned@v1", "welcome@v1"},
		"cart_updated": {"abandoned@v1"}, // named twice, listed once
		"page":         {},
	} {
		if got := names(r.Triggering(event)); !slices.Equal(got, want) {
			t.Errorf("Triggering(%q) = %v, want %v", event, got, want)
		}
	}

	// A new version replaces the old one in the index.
	r.Add(&Plan{Name: "welcome", Version: "v2", Trigger: Trigger{Kind: TriggerEvent, Event: "account_created"}})
	if got := names(r.Triggering("signup")); !slices.Equal(got, []string{"abandoned@v1"}) {
		t.Errorf("after welcome v2, Triggering(signup) = %v, want abandoned@v1 only", got)
	}
	if got := names(r.Triggering("account_created")); !slices.Equal(got, []string{"welcome@v2"}) {
		t.Errorf("after welcome v2, Triggering(account_created) = %v, want welcome@v2", got)
	}
}

func TestRegistryTriggeringWhileAdding(t *testing.T) {
	r := NewRegistry()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			r.Add(&Plan{Name: fmt.Sprintf("p%03d", i), Version: "v1", Trigger: Trigger{Kind: TriggerEvent, Event: "signup"}})
		}
	}()
	for {
		select {
		case <-done:
			if n := len(r.Triggering("signup")); n != 200 {
				t.Fatalf("%d plans triggered by signup after 200 adds", n)
			}
			return
		default:
			_ = r.Triggering("signup")
		}
	}
}
