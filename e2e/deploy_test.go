package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/scan"
)

// TestDeployIsContentAddressedAndUndeployPauses: deploying the same
// version twice changes nothing and says so; a new version replaces the
// active one and updates the schedule; pruning undeploys what is not in
// the set and pauses its schedule.
func TestDeployIsContentAddressedAndUndeployPauses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nsDeploy)
	ctx := context.Background()
	lapsed, err := engine.CompileFile("testdata/lapsed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	welcome, err := engine.CompileFile("testdata/welcome.yaml")
	if err != nil {
		t.Fatal(err)
	}
	first, err := scan.Deploy(ctx, e.st, e.c, []*engine.Plan{lapsed, welcome})
	if err != nil {
		t.Fatal(err)
	}
	if !first[0].Result.Stored || !first[0].Result.Activated || first[0].Schedule != "created" || first[1].Schedule != "" {
		t.Errorf("first deploy: %v / %v", first[0], first[1])
	}
	again, err := scan.Deploy(ctx, e.st, e.c, []*engine.Plan{lapsed})
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Result.Stored || again[0].Result.Activated || again[0].String() != "e2e_lapsed@"+lapsed.Version+" unchanged: already the active version; schedule rapport-scan/e2e_lapsed updated" {
		t.Errorf("second deploy of the same file: %q %+v", again[0], again[0].Result)
	}

	pruned, err := scan.Prune(ctx, e.st, e.c, []*engine.Plan{welcome})
	if err != nil {
		t.Fatal(err)
	}
	if len(pruned) != 1 || pruned[0] != "e2e_lapsed" {
		t.Fatalf("pruned %v, want [e2e_lapsed]", pruned)
	}
	if _, ok, _ := e.st.ActivePlaybook(ctx, "e2e_lapsed"); ok {
		t.Error("e2e_lapsed still active after prune")
	}
	// Pause and update reach the schedule as signals to the server's
	// scheduler workflow: Describe sees them a moment later, and seconds
	// later on a loaded two-core machine. The wait ends as soon as it does.
	e.eventually(schedulePropagation, func() string {
		if !e.schedulePaused("e2e_lapsed") {
			return "schedule of the pruned playbook is not paused"
		}
		return ""
	})

	// Deploying it again reactivates the same stored version and resumes
	// the schedule.
	back, err := scan.Deploy(ctx, e.st, e.c, []*engine.Plan{lapsed})
	if err != nil {
		t.Fatal(err)
	}
	if back[0].Result.Stored || !back[0].Result.Activated {
		t.Errorf("redeploy after prune: %+v, want reactivated without storing", back[0].Result)
	}
	e.eventually(schedulePropagation, func() string {
		if e.schedulePaused("e2e_lapsed") {
			return "schedule still paused after redeploy"
		}
		return ""
	})
}

func (e *env) schedulePaused(playbook string) bool {
	e.t.Helper()
	d, err := e.c.ScheduleClient().GetHandle(context.Background(), scan.ScheduleID(playbook)).Describe(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return d.Schedule.State.Paused
}

// schedulePropagation bounds how long a schedule change may take to show
// in Describe. Seen here: under a second when idle, over ten seconds with
// the load average above 7 on two cores, and in CI a Describe that
// answered DeadlineExceeded for over 30 s (see runScan).
const schedulePropagation = 2 * time.Minute
