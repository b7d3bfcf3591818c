package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/rapport-crm/rapport/engine"
)

// TestReportMermaidFromPostgreSQL: `rapport report winback --format
// mermaid` reads the deployed version and the live counts from PostgreSQL
// and draws them on the journey: enrolled on the trigger, reached and sent
// on the steps that have records, converted on the goal.
func TestReportMermaidFromPostgreSQL(t *testing.T) {
	st := testDatabase(t)
	ctx := context.Background()
	src, err := os.ReadFile("../../playbooks/winback.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeployPlaybook(ctx, "winback", engine.VersionOf(src), src); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`INSERT INTO customers (id, email) VALUES ('c1', 'c1@example.com'), ('c2', 'c2@example.com'), ('c3', 'c3@example.com')`,
		`INSERT INTO enrollments (id, workflow_id, playbook, version, customer_id, status, holdout, started_at, ended_at, converted_at) VALUES
			('e1', 'wf1', 'winback', 'v', 'c1', 'exited', false, now() - interval '3 days', now(), now() - interval '1 day'),
			('e2', 'wf2', 'winback', 'v', 'c2', 'active', false, now() - interval '2 days', NULL, NULL),
			('e3', 'wf3', 'winback', 'v', 'c3', 'active', false, now() - interval '1 day', NULL, NULL)`,
		`INSERT INTO messages (key, enrollment_id, customer_id, playbook, step_id, channel, status, reason, created_at) VALUES
			('e1/ask_why/1', 'e1', 'c1', 'winback', 'ask_why', 'email', 'sent', '', now() - interval '3 days'),
			('e2/ask_why/1', 'e2', 'c2', 'winback', 'ask_why', 'email', 'sent', '', now() - interval '2 days'),
			('e3/ask_why/1', 'e3', 'c3', 'winback', 'ask_why', 'email', 'suppressed', 'consent', now() - interval '1 day'),
			('e1/offer/1', 'e1', 'c1', 'winback', 'offer', 'email', 'sent', '', now() - interval '2 days')`,
	} {
		if _, err := st.Pool().Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	out, err := runRapport(t, "report", "winback", "--format", "mermaid")
	if err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	for _, want := range []string{
		"flowchart TD",
		`ask_why["ask_why<br/>send email miss_you<br/>reached 3, sent 2"]`,
		`offer["offer<br/>send email winback_offer<br/>reached 1, sent 1"]`,
		"enrolled 3",
		"converted 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diagram lacks %q:\n%s", want, out)
		}
	}
	if _, err := runRapport(t, "report", "nurture", "--format", "mermaid"); err == nil || !strings.Contains(err.Error(), "playbook nurture is not deployed") {
		t.Errorf("undeployed playbook: err = %v", err)
	}
}

// TestSimulateHTMLFlag: --html DIR writes each sent message's HTML body to
// a file named after its order, step, template and locale.
func TestSimulateHTMLFlag(t *testing.T) {
	dir := t.TempDir()
	customer := dir + "/lena.json"
	if err := os.WriteFile(customer, []byte(`{"id": "lena", "email": "lena@example.com", "name": "Lena", "locale": "en",
		"timezone": "Europe/Berlin", "tier": "gold", "order_count": 3, "purchase_gap_days": 30, "last_purchase_at": "2025-06-01"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runRapport(t, "simulate", "--customer", customer, "--html", dir+"/html", "../../playbooks/winback.yaml")
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	files, err := os.ReadDir(dir + "/html")
	if err != nil {
		t.Fatal(err)
	}
	// Only winback_offer has an HTML body; it is the second message sent.
	if len(files) != 1 || files[0].Name() != "002-offer-winback_offer.en.html" {
		t.Fatalf("html files %v, want 002-offer-winback_offer.en.html\n%s", files, out)
	}
	body, err := os.ReadFile(dir + "/html/" + files[0].Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "<b>WB-") {
		t.Errorf("html body %q lacks the coupon code", body)
	}
}
