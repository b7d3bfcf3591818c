package workflows

import (
	"os"
	"testing"

	"github.com/rapport-crm/rapport/engine"
)

func TestSmokeWinback(t *testing.T) {
	plan, err := engine.CompileFile("../playbooks/winback.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Simulate(plan, SimOptions{Customer: SampleCustomer()})
	if err != nil {
		t.Fatal(err)
	}
	res.Write(os.Stdout, false)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
}
