package worker

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
)

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestInstrumentCountsOutcomes drives the in-memory activities through the
// metrics wrapper: admitted starts, outcomes, messages by status, and
// failures by kind are counted.
func TestInstrumentCountsOutcomes(t *testing.T) {
	mem := activities.NewMemory()
	mem.Put(rules.Customer{ID: "c1", Email: "c1@example.com"})
	m := NewMetrics()
	all := Instrument(mem, m)
	ctx := context.Background()
	en := activities.Enrollment{ID: "e1", WorkflowID: "w1", Playbook: "winback", Version: "v1", CustomerID: "c1"}
	if res, err := all.RecordStart(ctx, activities.EntryRequest{Enrollment: en, Reentry: "never", At: time.Now()}); err != nil || !res.Admitted {
		t.Fatalf("RecordStart: %+v %v", res, err)
	}
	_, err := all.SendMessage(ctx, activities.SendRequest{Enrollment: en, Key: "e1/send/1", StepID: "send", Channel: "email",
		Template: "hi", Locale: "en", Topic: "marketing", Subject: "Hi", Text: "Hello", Customer: rules.Customer{ID: "c1", Email: "c1@example.com"}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := all.RecordOutcome(ctx, activities.Outcome{Enrollment: en, Status: activities.StatusConverted, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := all.LoadCustomer(ctx, "nobody"); err == nil {
		t.Fatal("loading an unknown customer succeeded")
	}
	checks := []struct {
		name string
		c    prometheus.Counter
		want float64
	}{
		{"started", m.Enrollments.WithLabelValues("winback", "started"), 1},
		{"converted", m.Enrollments.WithLabelValues("winback", "converted"), 1},
		{"sent", m.Messages.WithLabelValues("email", "sent"), 1},
		{"permanent failure", m.ActivityFailures.WithLabelValues("LoadCustomer", "permanent"), 1},
		{"transient failure", m.ActivityFailures.WithLabelValues("LoadCustomer", "transient"), 0},
	}
	for _, c := range checks {
		if got := counter(t, c.c); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestHandlerServesMetricsAndHealth: /metrics exposes Rapport's metrics
// and the SDK's (tally bridge), /healthz fails when a check fails.
func TestHandlerServesMetricsAndHealth(t *testing.T) {
	m := NewMetrics()
	h := m.TemporalHandler()
	h.Counter("temporal_probe").Inc(1)
	m.Messages.WithLabelValues("sms", "suppressed").Inc()
	if err := m.Close(); err != nil { // flushes tally
		t.Fatal(err)
	}
	healthy := true
	srv := httptest.NewServer(m.Handler(map[string]Check{"db": func(context.Context) error {
		if healthy {
			return nil
		}
		return io.ErrUnexpectedEOF
	}}))
	defer srv.Close()
	body := get(t, srv.URL+"/metrics", http.StatusOK)
	for _, want := range []string{`rapport_messages_total{channel="sms",status="suppressed"} 1`, "temporal_probe", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	get(t, srv.URL+"/healthz", http.StatusOK)
	healthy = false
	if body := get(t, srv.URL+"/healthz", http.StatusServiceUnavailable); !strings.Contains(body, "unexpected EOF") {
		t.Errorf("/healthz body %q does not name the failure", body)
	}
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d: %s", url, res.StatusCode, want, b)
	}
	return string(b)
}
