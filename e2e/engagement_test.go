package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/devenv"
)

// TestWaitOnMessageOpenedTakesTheRightBranch: the welcome mail goes out;
// an open of another enrollment's message, tracked through the API, does
// not end the wait for the welcome's open, and the open of this
// enrollment's welcome does: the journey tags the customer and ends,
// with no second mail.
func TestWaitOnMessageOpenedTakesTheRightBranch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nsAPI)
	e.deploy("engagement.yaml")

	e.post("/v1/identify", `{"userId":"ana","traits":{"email":"ana@example.com","name":"Ana","locale":"en","timezone":"Europe/Lisbon"}}`)
	e.post("/v1/track", `{"userId":"ana","event":"signup","messageId":"signup-ana"}`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.mail.WaitFor(ctx, func(m devenv.Mail) bool { return contains(m.To, "ana@example.com") }); err != nil {
		t.Fatal(err)
	}
	en := e.enrollments("e2e_engagement")["ana"]
	opened := `{"userId":"ana","event":"message_opened","messageId":"%s","properties":{"enrollment_id":"%s","step_id":"welcome","playbook":"e2e_engagement","template":"welcome","channel":"email","provider":"smtp"}}`
	e.post("/v1/track", fmt.Sprintf(opened, "open-other", "another-enrollment"))
	e.eventually(time.Minute, func() string {
		if s := e.state("e2e_engagement", "ana"); s.Counters.Events < 1 || s.CurrentStep != "await_open" {
			return errorf("state %s at %s after %d events, want waiting at await_open after the other open", s.Status, s.CurrentStep, s.Counters.Events)
		}
		return ""
	})

	e.post("/v1/track", fmt.Sprintf(opened, "open-welcome", en.ID))
	e.eventually(time.Minute, func() string {
		if got := e.enrollments("e2e_engagement")["ana"]; got.Status != string(activities.StatusCompleted) {
			return errorf("enrollment %s, want completed", got.Status)
		}
		return ""
	})
	if !contains(e.customerTags("ana"), "welcome_opened") {
		t.Errorf("tags %v, want welcome_opened", e.customerTags("ana"))
	}
	if n := len(e.mail.Mails()); n != 1 {
		t.Errorf("%d mails, want only the welcome", n)
	}
}
