package workflows_test

import (
	"strings"
	"testing"

	"github.com/rapport-crm/rapport/activities"
)

// TestMissingAttrFailsWithPlainReason: a rule reading an attribute the
// customer does not have fails the enrollment with a reason that names
// it, not expr's "invalid operation: <nil> > int".
func TestMissingAttrFailsWithPlainReason(t *testing.T) {
	plan := playbook(t, "", "  - if: customer.attrs.balance > 100000\n    then: [ { send: { channel: email, template: hi } } ]\n")
	r := simulate(t, plan, SimOptions{})
	if r.Final.Status != activities.StatusFailed || !strings.HasSuffix(r.Final.Reason, "customer.attrs.balance has no value for this customer") {
		t.Fatalf("outcome %s (%s), want failed naming the missing attr\n%s", r.Final.Status, r.Final.Reason, trace(r))
	}
	if got := r.Memory.Enrollments()[0].Reason; got != r.Final.Reason {
		t.Errorf("recorded reason %q, want %q", got, r.Final.Reason)
	}
}
