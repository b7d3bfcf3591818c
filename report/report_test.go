package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var gen = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func sampleInput() Input {
	return Input{
		GeneratedAt: gen, Since: 30 * 24 * time.Hour,
		Outcomes: []OutcomeRow{
			{Playbook: "winback", Version: "v2", Status: "converted", Count: 1, Converted: 1, ConvertSeconds: []float64{3600}},
			{Playbook: "winback", Version: "v2", Status: "exited", Count: 1, Converted: 1, ConvertSeconds: []float64{7200}},
			{Playbook: "winback", Version: "v1", Status: "completed", Count: 4, Converted: 1, ConvertSeconds: []float64{86400}},
			{Playbook: "winback", Version: "v1", Holdout: true, Status: "completed", Count: 2},
			{Playbook: "winback", Version: "v2", Status: "active", Count: 1},
			{Playbook: "birthday", Version: "b1", Status: "exited", Count: 1},
		},
		Steps: []StepRow{
			{Playbook: "winback", Step: "offer", Reached: 5, Sent: 3, Suppressed: map[string]int{"holdout": 2}, First: gen.Add(time.Hour)},
			{Playbook: "winback", Step: "ask_why", Reached: 9, Sent: 6, Suppressed: map[string]int{"consent": 1, "holdout": 2, "weird": 1},
				Deferred: map[string]int{"quiet_hours": 4}, Failed: 1, First: gen},
		},
		Variants: []VariantRow{
			{Playbook: "winback", Step: "ab", Variant: "b", Enrolled: 4, Converted: 1},
			{Playbook: "winback", Step: "ab", Variant: "a", Enrolled: 3, Converted: 2},
		},
		Engagement: []EngagementRow{{Playbook: "winback", Enrolled: 9, Messaged: 6, Responded: 3, Complained: 1}},
	}
}

func TestBuildAggregates(t *testing.T) {
	r := Build(sampleInput())
	if len(r.Playbooks) != 2 || r.Playbooks[0].Name != "birthday" || r.Playbooks[1].Name != "winback" {
		t.Fatalf("playbooks = %+v, want birthday, winback", r.Playbooks)
	}
	w := r.Playbooks[1]
	tot := w.Total
	// Three converted: one the goal ended (exit), one that went on and
	// exited, one that went on and completed.
	if tot.Enrolled != 9 || tot.Holdout != 2 || tot.Converted != 3 || tot.Completed != 6 || tot.Active != 1 ||
		tot.Exited != 1 || tot.EndedAtGoal != 1 {
		t.Errorf("total = %+v", tot)
	}
	near(t, "total rate", tot.ConversionRate, 3.0/9, 1e-12)
	near(t, "total median", tot.MedianTimeToConvertSeconds, 7200, 0) // of 3600, 7200, 86400
	if len(w.Versions) != 2 || w.Versions[0].Version != "v1" || w.Versions[0].Enrolled != 6 || w.Versions[1].Enrolled != 3 {
		t.Errorf("versions = %+v", w.Versions)
	}
	near(t, "v2 median", w.Versions[1].MedianTimeToConvertSeconds, 5400, 0)
	if w.Steps[0].Step != "ask_why" || w.Steps[1].Step != "offer" {
		t.Errorf("steps not in order of first record: %+v", w.Steps)
	}
	if w.Variants[0].Variant != "a" {
		t.Errorf("variants not sorted: %+v", w.Variants)
	}
	if w.Holdout.Treated.Enrolled != 7 || w.Holdout.Treated.Converted != 3 || w.Holdout.Control.Enrolled != 2 || w.Holdout.EnoughData {
		t.Errorf("holdout = %+v", w.Holdout)
	}
	near(t, "response rate", w.ResponseRate, 0.5, 0)
	near(t, "complaint rate", w.ComplaintRate, 1.0/9, 1e-12)
	if b := r.Playbooks[0]; b.Total.ConversionRate == nil || *b.Total.ConversionRate != 0 {
		t.Errorf("birthday conversion = %v, want 0", b.Total.ConversionRate)
	}
}

func TestWriteText(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteText(&buf, Build(sampleInput())); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"Rapport report — enrollments started in the last 30d (generated 2026-03-02T09:00:00Z)",
		"== winback ==",
		"VERSION  ENROLLED  HOLDOUT  ACTIVE  COMPLETED  EXITED  FAILED  ENDED AT GOAL  CONVERTED  CONV.RATE  MEDIAN TO CONVERT",
		"v1       6         2        0       6          0       0       0              1          16.7%      1d",
		"v2       3         0        1       0          1       0       1              2          66.7%      1h 30m",
		"(all)    9         2        1       6          1       0       1              3          33.3%      2h",
		"ask_why  9        6     1              0          2              1            4            0          1       0",
		"ab     a        3         2          66.7%",
		"holdout: treated 3/7 (42.9%) vs control 0/2 (0.0%): not enough data: treated group has 7 enrollments (need at least 30)",
		"engagement: response rate 50.0% (3 of 6 messaged), complaint rate 11.1% (1 of 9 enrolled)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	// A playbook with one version shows no (all) line.
	if strings.Count(out, "(all)") != 1 {
		t.Errorf("want exactly one (all) line:\n%s", out)
	}
}

// The JSON field names are a documented interface (docs/metrics.md).
func TestJSONFieldNames(t *testing.T) {
	b, err := json.Marshal(Build(sampleInput()))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"generated_at"`, `"since_seconds"`, `"playbooks"`, `"playbook"`, `"total"`, `"versions"`,
		`"enrolled"`, `"conversion_rate"`, `"median_time_to_convert_seconds"`, `"steps"`, `"reached"`, `"suppressed"`,
		`"deferred"`, `"variants"`, `"holdout"`, `"treated"`, `"control"`, `"enough_data"`, `"lift"`, `"ci_low"`,
		`"ci_high"`, `"p_value"`, `"response_rate"`, `"complaint_rate"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}
