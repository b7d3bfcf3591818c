package worker

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"

	"github.com/rapport-crm/rapport/reconcile"
	"github.com/rapport-crm/rapport/scan"
)

// Metrics are the worker's Prometheus metrics: Rapport's own, the Temporal
// SDK's (through tally, see TemporalHandler) and the Go runtime's, all in
// one registry served at /metrics.
//
// The SDK's metrics go through go.temporal.io/sdk/contrib/tally and tally's
// Prometheus reporter: it is the bridge Temporal maintains and documents
// for Prometheus, a few hundred lines with no exporter pipeline, and it
// writes into the same client_golang registry as Rapport's metrics, so one
// endpoint serves both. The OpenTelemetry contrib would add the OTel SDK
// and its Prometheus exporter for the same result.
type Metrics struct {
	Registry *prometheus.Registry

	// Messages counts send outcomes by channel and status (sent,
	// suppressed, deferred, failed, error).
	Messages *prometheus.CounterVec
	// Enrollments counts enrollment events by playbook: started,
	// converted (the goal reached, whether the journey then ended or
	// went on), exited, completed, failed, rejected.
	Enrollments *prometheus.CounterVec
	// ActivityFailures counts failed activity attempts by activity and
	// kind (permanent, transient).
	ActivityFailures *prometheus.CounterVec
	// ScheduleLag is how late scans begin after their scheduled time.
	ScheduleLag *prometheus.HistogramVec
	// ScanCustomers counts customers scanned, matched and started.
	ScanCustomers *prometheus.CounterVec
	// Reconciled counts the enrollments the reconciler closed, by how
	// their workflow ended (reconcile.Ended*).
	Reconciled *prometheus.CounterVec
	// ReconcileSkipped counts the enrollments the reconciler left active
	// without judging them, by why (reconcile.Skip*).
	ReconcileSkipped *prometheus.CounterVec

	tallyCloser io.Closer
}

// NewMetrics creates the registry and Rapport's metrics.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rapport_messages_total", Help: "Messages by channel and outcome (sent, suppressed, deferred, failed, error).",
		}, []string{"channel", "status"}),
		Enrollments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rapport_enrollments_total", Help: "Enrollment events by playbook: started, converted, exited, completed, failed, rejected.",
		}, []string{"playbook", "event"}),
		ActivityFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rapport_activity_failures_total", Help: "Failed activity attempts by activity and kind (permanent or transient).",
		}, []string{"activity", "kind"}),
		ScheduleLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rapport_schedule_lag_seconds", Help: "Delay between a scan's scheduled time and its first page.",
			Buckets: []float64{0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"playbook"}),
		ScanCustomers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rapport_scan_customers_total", Help: "Customers seen by segment and date scans: scanned, matched, started.",
		}, []string{"playbook", "result"}),
		Reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rapport_reconciled_enrollments_total",
			Help: "Active enrollments closed by the reconciler because their workflow had ended, by how it ended (terminated, timed_out, failed, canceled, completed, not_found).",
		}, []string{"reason"}),
		ReconcileSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rapport_reconcile_skipped_total",
			Help: "Active enrollments the reconciler skipped, left active for the next pass, by why: invalid_id (Temporal rejects their IDs), not_found_recent (workflow not found within the retention), error (Temporal or the database answered an error about that one enrollment).",
		}, []string{"why"}),
	}
	reg.MustRegister(m.Messages, m.Enrollments, m.ActivityFailures, m.ScheduleLag, m.ScanCustomers, m.Reconciled, m.ReconcileSkipped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// TemporalHandler returns the SDK metrics handler that reports into the
// registry (temporal_* metrics, Prometheus naming). Call it once; Close
// flushes and stops it.
func (m *Metrics) TemporalHandler() client.MetricsHandler {
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:       m.Registry,
		DefaultTimerType: tallyprom.HistogramTimerType,
	})
	safe := tally.ValidCharacters{Ranges: tally.AlphanumericRange, Characters: []rune{'_'}}
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter: reporter,
		Separator:      tallyprom.DefaultSeparator,
		SanitizeOptions: &tally.SanitizeOptions{
			NameCharacters: safe, KeyCharacters: safe, ValueCharacters: safe,
			ReplacementCharacter: tally.DefaultReplacementCharacter,
		},
	}, time.Second)
	m.tallyCloser = closer
	return sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope))
}

// Close flushes the SDK metrics.
func (m *Metrics) Close() error {
	if m.tallyCloser != nil {
		return m.tallyCloser.Close()
	}
	return nil
}

// ScanHooks wires a scan's lag and page counts into the metrics.
func (m *Metrics) ScanHooks(a *scan.Activities) {
	a.OnLag = func(playbook string, lag time.Duration) {
		m.ScheduleLag.WithLabelValues(playbook).Observe(lag.Seconds())
	}
	a.OnPage = func(playbook string, r scan.PageResult) {
		m.ScanCustomers.WithLabelValues(playbook, "scanned").Add(float64(r.Scanned))
		m.ScanCustomers.WithLabelValues(playbook, "matched").Add(float64(r.Matched))
		m.ScanCustomers.WithLabelValues(playbook, "started").Add(float64(r.Started))
	}
}

// ReconcileHooks counts the enrollments the reconciler closes and skips.
func (m *Metrics) ReconcileHooks(a *reconcile.Activities) {
	a.OnClosed = func(c reconcile.Closed) {
		if !c.DryRun {
			m.Reconciled.WithLabelValues(c.Ended).Inc()
		}
	}
	a.OnSkipped = func(s reconcile.Skipped) {
		m.ReconcileSkipped.WithLabelValues(s.Why).Inc()
	}
}

// Check is one dependency /healthz probes.
type Check func(context.Context) error

// Handler serves /metrics and /healthz. /healthz answers 200 when every
// check passes within two seconds, 503 otherwise, with each check's result
// as JSON.
func (m *Metrics) Handler(checks map[string]Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, code := map[string]string{}, http.StatusOK
		for name, check := range checks {
			if err := check(ctx); err != nil {
				status[name], code = err.Error(), http.StatusServiceUnavailable
			} else {
				status[name] = "ok"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(status)
	})
	return mux
}
