// Package grafana holds the Grafana dashboard of the worker's Prometheus
// metrics (rapport.json); its test keeps the dashboard's metric names in
// step with the worker's.
package grafana

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rapport-crm/rapport/worker"
)

// rapportMetric finds Rapport metric names in PromQL, with the suffixes
// Prometheus adds to histograms.
var rapportMetric = regexp.MustCompile(`rapport_[a-z_]+`)

// TestDashboardMetricsExist checks that every rapport_* metric a panel
// queries is registered by worker.NewMetrics, and that every Rapport
// metric the worker registers is on the dashboard.
func TestDashboardMetricsExist(t *testing.T) {
	raw, err := os.ReadFile("rapport.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("rapport.json: %v", err)
	}
	registered := map[string]bool{}
	m := worker.NewMetrics()
	descs := make(chan *prometheus.Desc, 100)
	go func() {
		// Every metric field of worker.Metrics, so a new one is checked
		// without being listed here.
		v := reflect.ValueOf(m).Elem()
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			if _, all := v.Field(i).Interface().(*prometheus.Registry); all {
				continue
			}
			if c, ok := v.Field(i).Interface().(prometheus.Collector); ok {
				c.Describe(descs)
			}
		}
		close(descs)
	}()
	nameOf := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range descs {
		registered[nameOf.FindStringSubmatch(d.String())[1]] = true
	}
	used := map[string]bool{}
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			for _, name := range rapportMetric.FindAllString(target.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
				if !registered[base] {
					t.Errorf("panel %q queries %s, which the worker does not register (have %v)", p.Title, name, registered)
				}
				used[base] = true
			}
		}
	}
	for name := range registered {
		if !used[name] {
			t.Errorf("worker metric %s is on no panel", name)
		}
	}
}
