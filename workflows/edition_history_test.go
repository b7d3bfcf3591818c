package workflows

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/workflows/historytest"
)

// editionRecording is the folder of the histories recorded with editions.
const editionRecording = "2026-11-26-edition1"

// historyCalls counts, over the histories recorded in dir, the version
// markers, the TemporalChangeVersion upserts and the local-activity
// markers of each activity type.
func historyCalls(t *testing.T, dir string) (versions, changeUpserts int, locals map[string]int) {
	t.Helper()
	locals = map[string]int{}
	files := historytest.Files(t, dir)
	if len(files) == 0 {
		t.Fatalf("no histories in %s", dir)
	}
	dc := converter.GetDefaultDataConverter()
	for _, f := range files {
		h := historytest.Read(t, f)
		for _, e := range h.Events {
			if m := e.GetMarkerRecordedEventAttributes(); m != nil {
				switch m.GetMarkerName() {
				case "Version":
					versions++
				case "LocalActivity":
					var la struct{ ActivityType string }
					if err := dc.FromPayloads(m.GetDetails()["data"], &la); err != nil {
						t.Fatalf("%s: local-activity marker %d: %v", f, e.GetEventId(), err)
					}
					locals[la.ActivityType]++
				}
			}
			if u := e.GetUpsertWorkflowSearchAttributesEventAttributes(); u != nil {
				if _, ok := u.GetSearchAttributes().GetIndexedFields()["TemporalChangeVersion"]; ok {
					changeUpserts++
				}
			}
		}
	}
	return versions, changeUpserts, locals
}

// The journeys recorded on a real server since editions (every sample and
// scenario) hold no version marker and no TemporalChangeVersion upsert,
// and read the customer apart less often than the same journeys recorded
// just before (2026-11-26-eager), which hold both.
func TestRecordedEditionHistoriesAskNoVersions(t *testing.T) {
	v0, u0, l0 := historyCalls(t, filepath.Join(historiesDir, "2026-11-26-eager"))
	v1, u1, l1 := historyCalls(t, filepath.Join(historiesDir, editionRecording))
	t.Logf("before editions: %d version markers, %d TemporalChangeVersion upserts, local activities %v", v0, u0, l0)
	t.Logf("edition 1:       %d version markers, %d TemporalChangeVersion upserts, local activities %v", v1, u1, l1)
	if v0 == 0 || u0 == 0 {
		t.Fatalf("the histories before editions hold %d version markers and %d TemporalChangeVersion upserts, want some of each", v0, u0)
	}
	if v1 != 0 || u1 != 0 {
		t.Errorf("the edition-1 histories hold %d version markers and %d TemporalChangeVersion upserts, want none", v1, u1)
	}
	// Per admission, as the two folders need not hold the same runs.
	perStart := func(l map[string]int) float64 {
		return float64(l[activities.ActLoadCustomer]) / float64(max(l[activities.ActRecordStart], 1))
	}
	if l1[activities.ActRecordStart] == 0 || perStart(l1) >= perStart(l0) {
		t.Errorf("local activities before editions %v, since %v: want fewer LoadCustomer per RecordStart", l0, l1)
	}
}

// A journey started with an edition by a worker of the release just before
// editions, which ignored the field, asked GetVersion and read the
// customer apart, replays on this release: the 2026-11-26-eager recording,
// made by that release, with "edition": 1 written into each run's input.
// (The other way round fails, which is why journeys start without an
// edition unless RAPPORT_JOURNEY_EDITION says otherwise.)
func TestEditionStartedByTheReleaseBeforeReplays(t *testing.T) {
	files := historytest.Files(t, filepath.Join(historiesDir, "2026-11-26-eager"))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			h := historytest.Read(t, f)
			p := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
			var in map[string]json.RawMessage
			if err := json.Unmarshal(p.GetData(), &in); err != nil {
				t.Fatalf("input of %s: %v", f, err)
			}
			in["edition"] = json.RawMessage("1")
			data, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			p.Data = data
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(Journey, workflowRegisterOptions())
			if err := r.ReplayWorkflowHistory(historytest.QuietLogger(), h); err != nil {
				t.Fatalf("replay %s with edition 1: %v", f, err)
			}
		})
	}
}

// Edition 1 follows each of its changes at the version the release before
// editions recorded for it (the newest then): every change in edition1
// appears in the version markers of the 2026-11-26-eager recording, always
// at edition1's version, and no other change does.
func TestEditionVersionsAreTheRecordedOnes(t *testing.T) {
	dc := converter.GetDefaultDataConverter()
	seen := map[string]bool{}
	for _, f := range historytest.Files(t, filepath.Join(historiesDir, "2026-11-26-eager")) {
		for _, e := range historytest.Read(t, f).GetEvents() {
			m := e.GetMarkerRecordedEventAttributes()
			if m.GetMarkerName() != "Version" {
				continue
			}
			var change string
			var v workflow.Version
			if err := dc.FromPayloads(m.GetDetails()["change-id"], &change); err != nil {
				t.Fatalf("%s: marker %d: %v", f, e.GetEventId(), err)
			}
			if err := dc.FromPayloads(m.GetDetails()["version"], &v); err != nil {
				t.Fatalf("%s: marker %d: %v", f, e.GetEventId(), err)
			}
			want, ok := edition1[change]
			if !ok || v != want {
				t.Errorf("%s: %s recorded at version %d; edition 1 has %d (%v)", filepath.Base(f), change, v, want, ok)
			}
			seen[change] = true
		}
	}
	for change := range edition1 {
		if !seen[change] {
			t.Errorf("edition 1 fixes %s, which no recorded history of the release before asked", change)
		}
	}
}
