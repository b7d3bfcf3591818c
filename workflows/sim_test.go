package workflows_test

import (
	"testing"

	sim "github.com/rapport-crm/rapport/simulate"
	"github.com/rapport-crm/rapport/workflows"
)

// The journey tests that run the workflow through the simulator (package
// simulate, which imports workflows) live in the external test package;
// these names keep them reading as the internal tests do.
type (
	SimOptions = sim.Options
	SimEvent   = sim.Event
	SimResult  = sim.Result
)

var (
	Simulate        = sim.Run
	DefaultSimStart = sim.DefaultStart

	playbook            = workflows.TestPlaybook
	input               = workflows.TestInput
	customer            = workflows.TestCustomer
	newTestEnv          = workflows.TestNewTestEnv
	maxStepsWithoutWait = workflows.TestMaxStepsWithoutWait
	continuedAs         = workflows.TestContinuedAs
	inHoldout           = workflows.TestInHoldout
)

// The internal tests' start time is the simulator's.
func TestStartsAgree(t *testing.T) {
	if !workflows.TestStart.Equal(sim.DefaultStart) {
		t.Fatalf("workflows tests start at %s, the simulator at %s", workflows.TestStart, sim.DefaultStart)
	}
}
