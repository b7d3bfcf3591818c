package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/workflows"
)

// TestForgetEndsTheJourneyAndNeverContactsAgain is issue #16's erasure
// on the real components: a customer is in a journey (welcome sent over
// SMTP, a reminder due seconds later) when POST
// /v1/customers/{id}/forget erases them. Their workflow is terminated, no
// table holds their id, name or address, the reminder never goes out, and
// when a later identify and signup create them anew with the address
// written differently, the new journey's welcome is suppressed (erased)
// and never reaches the SMTP server.
func TestForgetEndsTheJourneyAndNeverContactsAgain(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nsForget, envOptions{erasureSecret: []byte("e2e-erasure-secret-0123456789")})
	e.deploy("forget.yaml")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const id, email, name = "ada-lovelace-e2e", "ada.lovelace@example.com", "Ada Lovelace"

	e.post("/v1/identify", `{"userId":"`+id+`","traits":{"email":"`+email+`","name":"`+name+`","locale":"en"}}`)
	e.post("/v1/track", `{"userId":"`+id+`","event":"signup","messageId":"signup-ada-1"}`)
	if _, err := e.mail.WaitFor(ctx, func(m devenv.Mail) bool { return contains(m.To, email) }); err != nil {
		t.Fatal(err)
	}
	e.eventually(time.Minute, func() string {
		if en := e.enrollments("e2e_forget")[id]; en.Status != string(activities.StatusActive) {
			return errorf("enrollment %+v, want active (waiting for the reminder)", en)
		}
		return ""
	})

	res := e.call(http.MethodPost, "/v1/customers/"+id+"/forget")
	var got struct {
		Found bool     `json:"found"`
		Ended []string `json:"journeys_ended"`
	}
	if err := json.Unmarshal(res, &got); err != nil || !got.Found || len(got.Ended) != 1 || got.Ended[0] != "e2e_forget" {
		t.Fatalf("forget answered %s (%v), want found and the e2e_forget journey ended", res, err)
	}
	desc, err := e.c.DescribeWorkflowExecution(ctx, workflows.WorkflowID("e2e_forget", id), "")
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enums.WORKFLOW_EXECUTION_STATUS_TERMINATED {
		t.Errorf("workflow %s, want terminated", st)
	}
	if l := e.personalDataIn(id, email, name); len(l) > 0 {
		t.Errorf("personal data left after the erasure:\n  %s", strings.Join(l, "\n  "))
	}

	// The reminder was due 5s after the welcome; give it twice that.
	time.Sleep(10 * time.Second)
	if n := len(e.mail.Mails()); n != 1 {
		t.Fatalf("%d mails, want only the welcome sent before the erasure", n)
	}

	// Back again, through the API, the address in capitals.
	e.post("/v1/identify", `{"userId":"`+id+`","traits":{"email":"`+strings.ToUpper(email)+`","name":"`+name+`"}}`)
	e.post("/v1/track", `{"userId":"`+id+`","event":"signup","messageId":"signup-ada-2"}`)
	e.eventually(time.Minute, func() string {
		var status, reason string
		err := e.st.Pool().QueryRow(ctx, `SELECT status, reason FROM messages WHERE customer_id = $1`, id).Scan(&status, &reason)
		if err != nil {
			return "the new journey's welcome: " + err.Error()
		}
		if status != "suppressed" || reason != activities.ReasonErased {
			return errorf("the new journey's welcome is %s (%s), want suppressed (erased)", status, reason)
		}
		return ""
	})
	if n := len(e.mail.Mails()); n != 1 {
		t.Errorf("%d mails after the customer came back, want still only the first welcome", n)
	}
}

// call sends an authenticated API call without a body and returns the
// answer, failing the test unless it is 200.
func (e *env) call(method, path string) []byte {
	e.t.Helper()
	req, err := http.NewRequest(method, e.api.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return b
}

// personalDataIn scans every row of every table, as JSON text, for the
// needles and lists "table: needle" for each hit.
func (e *env) personalDataIn(needles ...string) []string {
	e.t.Helper()
	ctx := context.Background()
	rows, err := e.st.Pool().Query(ctx, `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`)
	if err != nil {
		e.t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			e.t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	var out []string
	for _, table := range tables {
		for _, needle := range needles {
			var n int
			q := fmt.Sprintf(`SELECT count(*) FROM %q t WHERE strpos(lower(row_to_json(t)::text), lower($1)) > 0`, table)
			if err := e.st.Pool().QueryRow(ctx, q, needle).Scan(&n); err != nil {
				e.t.Fatalf("scan %s: %v", table, err)
			}
			if n > 0 {
				out = append(out, fmt.Sprintf("%s: %q in %d rows", table, needle, n))
			}
		}
	}
	return out
}
