package devenv

import (
	"net/http"
	"strings"
	"testing"
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
