package devenv

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// TestSendDemoCallsRetriesUnavailable: a call answered 503 (a journey
// still starting) is sent again until it is accepted; one refused for its
// content (4xx) fails at once with the API's answer.
func TestSendDemoCallsRetriesUnavailable(t *testing.T) {
	calls := 0
	flaky := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls <= 2 {
			http.Error(w, `{"error":"dispatch temporarily unavailable; retry the same call"}`, http.StatusServiceUnavailable)
		}
	})
	var logged []string
	demo := []DemoCall{{"/v1/track", `{"userId":"demo-02","event":"purchase","messageId":"m1"}`, "purchase demo-02"}}
	if err := SendDemoCalls(flaky, "k", demo, func(what string) { logged = append(logged, what) }); err != nil {
		t.Fatal(err)
	}
	if calls != 3 || len(logged) != 1 {
		t.Errorf("%d requests, %v logged; want 3 requests (two answered 503) and the call logged once", calls, logged)
	}

	calls = 0
	refusing := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		http.Error(w, `{"error":"event: required"}`, http.StatusBadRequest)
	})
	err := SendDemoCalls(refusing, "k", demo, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "event: required") || calls != 1 {
		t.Errorf("error %v after %d requests; want the 400 and its answer after one request", err, calls)
	}
}

// TestDemoEventsStartSampleJourneys: every event the demo sends, and every
// one the banner suggests, starts a journey of a sample playbook once the
// API has named it as it stores it, except the survey answer, which the
// satisfaction survey the demo's service_completed starts waits for. The
// demo once sent "purchase" after the samples had moved to
// order_completed, and its orders started nothing.
func TestDemoEventsStartSampleJourneys(t *testing.T) {
	plans, err := compileDir("../playbooks")
	if err != nil {
		t.Fatal(err)
	}
	reg := engine.NewRegistry()
	for _, p := range plans {
		reg.Add(p)
	}
	names := []string{tryOrderEvent, tryComplaintEvent}
	for _, c := range DemoCalls(time.Now()) {
		if c.Path != "/v1/track" {
			continue
		}
		var body struct{ Event string }
		if err := json.Unmarshal([]byte(c.Body), &body); err != nil {
			t.Fatalf("%s: %v", c.What, err)
		}
		names = append(names, body.Event)
	}
	for _, name := range names {
		stored := rules.NormalizeEvent(name)
		triggered := reg.Triggering(stored)
		switch {
		case stored == "survey_answered":
			if s, ok := reg.Latest("satisfaction_survey"); !ok || !s.Listens(stored) {
				t.Errorf("%q: the satisfaction survey no longer hears it", name)
			}
		case len(triggered) == 0:
			t.Errorf("demo event %q (stored as %s) starts no sample journey", name, stored)
		}
	}
}
