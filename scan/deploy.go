package scan

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/store"
)

// Deployer is the part of the store a deploy writes. *store.Store
// implements it.
type Deployer interface {
	DeployPlaybook(ctx context.Context, name, version string, source []byte) (store.DeployResult, error)
	UndeployPlaybook(ctx context.Context, name string) (bool, error)
	DeployedPlaybooks(ctx context.Context) ([]store.DeployedPlaybook, error)
}

// Deployment is what deploying one plan did, for the command's output.
type Deployment struct {
	Plan     *engine.Plan
	Result   store.DeployResult
	Schedule string // "created", "updated", "paused" or "" (no schedule)
}

// String says what happened in one line, e.g.
// "winback 3f2a… deployed (was 9e1b…); schedule rapport-scan/winback created".
func (d Deployment) String() string {
	s := d.Plan.Name + "@" + d.Plan.Version
	switch {
	case !d.Result.Activated:
		s += " unchanged: already the active version"
	case d.Result.Previous != "":
		s += " deployed (was " + d.Result.Previous + ")"
	default:
		s += " deployed"
	}
	if d.Schedule != "" {
		s += "; schedule " + ScheduleID(d.Plan.Name) + " " + d.Schedule
	}
	return s
}

// Deploy stores each plan's version, makes it the active one, and
// creates or updates its scan schedule (segment and date triggers); a
// playbook whose trigger is no longer scheduled has its old schedule
// paused. Deploying what is already active stores nothing and says so,
// but still brings the schedule up to date, so re-running a deploy that
// failed half-way finishes it. Plans must already be valid (compiled).
func Deploy(ctx context.Context, st Deployer, c client.Client, plans []*engine.Plan) ([]Deployment, error) {
	var out []Deployment
	for _, p := range plans {
		res, err := st.DeployPlaybook(ctx, p.Name, p.Version, p.Source)
		if err != nil {
			return out, err
		}
		d := Deployment{Plan: p, Result: res}
		if Scheduled(p) {
			created, err := Ensure(ctx, c, p)
			if err != nil {
				return out, fmt.Errorf("%s is deployed but its schedule is not: %w (run the deploy again)", p.Name, err)
			}
			d.Schedule = map[bool]string{true: "created", false: "updated"}[created]
		} else if paused, err := Pause(ctx, c, p.Name, "trigger is "+string(p.Trigger.Kind)+" since "+p.Version); err != nil {
			return out, err
		} else if paused {
			d.Schedule = "paused"
		}
		out = append(out, d)
	}
	return out, nil
}

// Undeploy marks playbook inactive and pauses its schedule. Enrollments
// already running finish on the version they started with. It reports
// whether the playbook was deployed.
func Undeploy(ctx context.Context, st Deployer, c client.Client, playbook string) (bool, error) {
	was, err := st.UndeployPlaybook(ctx, playbook)
	if err != nil {
		return false, err
	}
	if _, err := Pause(ctx, c, playbook, "rapport undeploy "+playbook); err != nil {
		return was, err
	}
	return was, nil
}

// Prune undeploys every deployed playbook whose name is not in keep, and
// returns the names it undeployed.
func Prune(ctx context.Context, st Deployer, c client.Client, keep []*engine.Plan) ([]string, error) {
	deployed, err := st.DeployedPlaybooks(ctx)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, p := range keep {
		names[p.Name] = true
	}
	var pruned []string
	for _, d := range deployed {
		if names[d.Name] {
			continue
		}
		if _, err := Undeploy(ctx, st, c, d.Name); err != nil {
			return pruned, err
		}
		pruned = append(pruned, d.Name)
	}
	return pruned, nil
}
