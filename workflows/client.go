package workflows

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// Typed search attributes of a journey, so operators can list enrollments
// by playbook, version, customer, current step and status. All are
// Keywords; register them with the namespace (SearchAttributeFlags).
var (
	SAPlaybook = temporal.NewSearchAttributeKeyKeyword("RapportPlaybook")
	SAVersion  = temporal.NewSearchAttributeKeyKeyword("RapportVersion")
	SACustomer = temporal.NewSearchAttributeKeyKeyword("RapportCustomer")
	SAStep     = temporal.NewSearchAttributeKeyKeyword("RapportStep")
	SAStatus   = temporal.NewSearchAttributeKeyKeyword("RapportStatus")
)

// SearchAttributes maps each custom search attribute a journey uses to its
// type, as the Temporal CLI spells it.
var SearchAttributes = map[string]string{
	"RapportPlaybook": "Keyword",
	"RapportVersion":  "Keyword",
	"RapportCustomer": "Keyword",
	"RapportStep":     "Keyword",
	"RapportStatus":   "Keyword",
}

// SearchAttributeFlags are the arguments that register SearchAttributes
// with a dev server: temporal server start-dev <flags...>.
func SearchAttributeFlags() []string {
	names := make([]string, 0, len(SearchAttributes))
	for n := range SearchAttributes {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		out = append(out, "--search-attribute", n+"="+SearchAttributes[n])
	}
	return out
}

// WorkflowID is the ID of the enrollment of customer in playbook. One ID per
// pair means at most one enrollment runs at a time.
func WorkflowID(playbook, customer string) string {
	return "rapport/" + playbook + "/" + customer
}

// CustomerOf is the customer whose enrollment workflowID is (the inverse
// of WorkflowID), and false for any other workflow (scans, reconcile). A
// playbook name never holds a "/" (engine's name rule), so everything
// after the second "/" is the customer id, slashes included. Payload
// encryption keys a journey's payloads to this customer.
func CustomerOf(workflowID string) (string, bool) {
	rest, ok := strings.CutPrefix(workflowID, "rapport/")
	if !ok {
		return "", false
	}
	playbook, customer, ok := strings.Cut(rest, "/")
	if !ok || playbook == "" || customer == "" {
		return "", false
	}
	return customer, true
}

// Registry is what Register needs: a worker.Worker or the SDK's test
// environment.
type Registry interface {
	RegisterWorkflowWithOptions(w interface{}, options workflow.RegisterOptions)
	RegisterActivity(a interface{})
}

// Register registers the Journey workflow and all's activities (through
// the activities.Temporal adapter, under the names the journey calls).
func Register(r Registry, all activities.All) {
	r.RegisterWorkflowWithOptions(Journey, workflowRegisterOptions())
	r.RegisterActivity(activities.NewTemporal(all))
}

func workflowRegisterOptions() workflow.RegisterOptions {
	return workflow.RegisterOptions{Name: WorkflowName}
}

// StartOptions are the options Enroll starts a journey with. A second start
// while one runs fails (and Enroll reports started=false); once the run has
// closed, the ID may be used again, because re-entry is decided by
// RecordStart against the store: Temporal forgets closed runs.
//
// RapportStep starts at the plan's first step, the one the journey runs
// first: a journey whose first step is a wait then upserts nothing before
// it waits (upsertVisibility upserts only what changed).
func StartOptions(plan *engine.Plan, customerID string, trigger rules.Event) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                                       WorkflowID(plan.Name, customerID),
		TaskQueue:                                TaskQueue,
		WorkflowIDConflictPolicy:                 enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		EnableEagerStart:                         true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			SAPlaybook.ValueSet(plan.Name), SAVersion.ValueSet(plan.Version), SACustomer.ValueSet(customerID),
			SAStatus.ValueSet(string(activities.StatusActive)), SAStep.ValueSet(stepAt(plan, 0)),
		),
		StaticSummary: fmt.Sprintf("%s v%s · customer %s · trigger %s", plan.Name, plan.Version, customerID, triggerName(plan, trigger)),
	}
}

// Input is the workflow input of an enrollment in plan, with the plan
// pinned and the edition EditionEnv names (StartEdition).
func Input(plan *engine.Plan, customerID string, trigger rules.Event) (JourneyInput, error) {
	pinned, err := engine.Pin(plan)
	if err != nil {
		return JourneyInput{}, err
	}
	edition, err := StartEdition()
	if err != nil {
		return JourneyInput{}, err
	}
	return JourneyInput{
		Playbook: plan.Name, Version: plan.Version, Source: string(plan.Source), Plan: pinned,
		CustomerID: customerID, Trigger: trigger, Edition: edition,
	}, nil
}

// Enroll starts the journey of customerID in plan. When an enrollment of
// that customer in that playbook is already running it starts nothing and
// returns the running one with started=false.
func Enroll(ctx context.Context, c client.Client, plan *engine.Plan, customerID string, trigger rules.Event) (run client.WorkflowRun, started bool, err error) {
	opts := StartOptions(plan, customerID, trigger)
	in, err := Input(plan, customerID, trigger)
	if err != nil {
		return nil, false, err
	}
	run, err = c.ExecuteWorkflow(ctx, opts, WorkflowName, in)
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return c.GetWorkflow(ctx, opts.ID, ""), false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("enroll customer %s in %s: %w", customerID, plan.Name, err)
	}
	return run, true, nil
}

// SignalEvent delivers a customer event to the running enrollment of
// customer in playbook.
func SignalEvent(ctx context.Context, c client.Client, playbook, customer string, ev rules.Event) error {
	if err := c.SignalWorkflow(ctx, WorkflowID(playbook, customer), "", EventSignal, ev); err != nil {
		return fmt.Errorf("signal %s event to %s: %w", ev.Name, WorkflowID(playbook, customer), err)
	}
	return nil
}

// upsertVisibility brings the step and status search attributes up to
// date. It is called before blocking and at the end, not after every step,
// and only upserts what changed: each upsert is a history event.
func (j *journey) upsertVisibility() error {
	have := workflow.GetTypedSearchAttributes(j.ctx)
	want := []struct {
		key temporal.SearchAttributeKeyKeyword
		val string
	}{
		{SAPlaybook, j.plan.Name}, {SAVersion, j.plan.Version}, {SACustomer, j.in.CustomerID},
		{SAStep, j.stepID(j.pc)}, {SAStatus, string(j.status)},
	}
	var ups []temporal.SearchAttributeUpdate
	for _, w := range want {
		if v, ok := have.GetKeyword(w.key); !ok || v != w.val {
			ups = append(ups, w.key.ValueSet(w.val))
		}
	}
	if len(ups) == 0 {
		return nil
	}
	j.est++
	if err := workflow.UpsertTypedSearchAttributes(j.ctx, ups...); err != nil {
		return fmt.Errorf("upsert search attributes: %w", err)
	}
	return nil
}

// bucket hashes the parts (joined with "/") into 0–9999 with FNV-64a: a
// stable, version-independent draw for splits and holdouts.
func bucket(parts ...string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(strings.Join(parts, "/")))
	return h.Sum64() % 10000
}

// PickBranch is the index of the split branch customer goes down: the
// bucket of playbook/step/customer against the cumulative weights.
func PickBranch(playbook, stepID, customer string, branches []engine.SplitBranch) int {
	b := float64(bucket(playbook, stepID, customer))
	cum := 0.0
	for i, br := range branches {
		cum += br.Weight * 100
		if b < cum {
			return i
		}
	}
	return len(branches) - 1
}

// inHoldout says whether customer is in the playbook's control group.
func inHoldout(plan *engine.Plan, customer string) bool {
	return plan.Entry.Holdout > 0 && float64(bucket(plan.Name, "holdout", customer)) < plan.Entry.Holdout*100
}
