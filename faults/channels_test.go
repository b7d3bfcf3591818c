package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/rapport-crm/rapport/channels"
	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/workflows"
)

// secrets are configured on the worker and the API of the channel test;
// none may appear in a log, an error, a stored reason or a search
// attribute.
var secrets = map[string]string{
	"RAPPORT_SMTP_PASSWORD":      "smtp-pw-7f3a9c1e",
	"RAPPORT_SMS_TOKEN":          "sms-token-b82d4410",
	"RAPPORT_WEBHOOK_SECRET":     "hook-secret-5e6f0a2b",
	"RAPPORT_UNSUBSCRIBE_SECRET": "unsub-secret-c0ffee42",
	"RAPPORT_API_KEY":            "api-key-9d8e7f6a",
	"RAPPORT_ERASURE_SECRET":     "erasure-secret-3b7e1d09",
}

// TestChannelFaults runs a three-channel journey through the real worker
// process against providers that drop connections, time out, answer
// 4xx/5xx or are slow. Every message must end sent exactly once or failed
// with a reason, none queued; a permanent failure must not stop the rest of
// the journey. The same run checks that no configured secret leaks.
func TestChannelFaults(t *testing.T) {
	tbin, rbin, dbURL, st, plan := setUp(t, "testdata/channels.yaml")
	modes := []mode{modeOK, modeDrop, modeTemp, modeSlow, modePerm}
	const perMode = 4
	ids := seedCustomers(t, st, len(modes)*perMode)
	modeOf := map[string]mode{} // recipient (email, phone or id) → mode
	for i, id := range ids {
		m := modes[i%len(modes)]
		modeOf[id], modeOf[id+"@faults.test"], modeOf[fmt.Sprintf("+1555%07d", i)] = m, m, m
	}
	lookup := func(to string) mode { return modeOf[strings.Trim(to, "<>")] }

	att := newAttempts()
	smtpSrv := startFaultySMTP(t, "rapport", secrets["RAPPORT_SMTP_PASSWORD"], lookup, att)
	const httpTimeout = 10 * time.Second // the channels' default
	sms := faultyHTTP(t, "sms", http.StatusBadRequest, httpTimeout, lookup, att, func(r *http.Request) string {
		_ = r.ParseForm()
		return r.PostForm.Get("To")
	})
	var badSignatures int
	hook := faultyHTTP(t, "webhook", http.StatusGone, httpTimeout, lookup, att, func(r *http.Request) string {
		body, _ := io.ReadAll(r.Body)
		if channels.VerifyWebhook([]byte(secrets["RAPPORT_WEBHOOK_SECRET"]), r.Header.Get(channels.SignatureHeader), body, time.Now(), time.Minute) != nil {
			badSignatures++
		}
		var p channels.WebhookPayload
		_ = json.Unmarshal(body, &p)
		return p.CustomerID
	})

	tp := newTemporal(t, tbin, "faults")
	c := tp.dial()
	dir := t.TempDir()
	env := []string{
		"TEMPORAL_ADDRESS=" + tp.hostPort, "TEMPORAL_NAMESPACE=faults", "DATABASE_URL=" + dbURL,
		"RAPPORT_METRICS_ADDR=off", "RAPPORT_FREQUENCY_CAP=off", "RAPPORT_PUBLIC_URL=https://rapport.test",
		"RAPPORT_SMTP_ADDR=" + smtpSrv.addr, "RAPPORT_SMTP_FROM=Rapport <hello@rapport.test>", "RAPPORT_SMTP_TLS=none",
		"RAPPORT_SMTP_USER=rapport", "RAPPORT_SMS_URL=" + sms.URL + "/2010-04-01/Accounts/AC1/Messages.json",
		"RAPPORT_SMS_USER=AC1", "RAPPORT_SMS_FROM=+15550000000", "RAPPORT_WEBHOOK_URL=" + hook.URL + "/hook",
	}
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	w := &workerProc{t: t, bin: rbin, log: filepath.Join(dir, "worker.log"), env: env}
	w.start()
	t.Cleanup(w.stop)
	apiLog := filepath.Join(dir, "api.log")
	apiAddr := freeAddr(t)
	api := startProc(t, "api", append(env, "RAPPORT_LISTEN="+apiAddr), apiLog, rbin, "serve")
	t.Cleanup(api.kill)

	enrollAll(t, c, plan, ids)
	waitFinished(t, st, len(ids), 3*time.Minute)

	checkChannelOutcomes(t, st, ids, modeOf, att)
	if badSignatures > 0 {
		t.Errorf("%d webhook deliveries had no valid signature", badSignatures)
	}
	exerciseAPI(t, "http://"+apiAddr)
	w.stop()
	api.kill()
	// Both processes log their start-up (channels configured, addresses);
	// neither logs individual requests or retried deliveries, whose errors
	// travel in the workflow histories checked below.
	for f, minLines := range map[string]int{w.log: 1, apiLog: 1} {
		text := readFile(t, f)
		if n := strings.Count(text, "\n"); n < minLines {
			t.Errorf("%s has %d lines, want at least %d: the secrets check would prove nothing", f, n, minLines)
		}
		assertNoSecrets(t, f, text)
	}
	assertNoSecretsInDB(t, st)
	assertVisibilityHasNoContacts(t, c, ids)
	assertHistoriesHaveNoSecrets(t, c, ids)
}

// assertHistoriesHaveNoSecrets reads every journey's history, where the
// local activities' failures (a 451, a 500, a timeout) are recorded with
// their error messages.
func assertHistoriesHaveNoSecrets(t *testing.T, c client.Client, ids []string) {
	t.Helper()
	failures := 0
	for _, id := range ids {
		it := c.GetWorkflowHistory(context.Background(), workflows.WorkflowID("channel_faults", id), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		var b strings.Builder
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatalf("history of %s: %v", id, err)
			}
			b.WriteString(ev.String())
		}
		failures += strings.Count(b.String(), "provider answered") + strings.Count(b.String(), "smtp")
		assertNoSecrets(t, "history of "+id, b.String())
	}
	if failures == 0 {
		t.Error("no delivery failure reached any history: the secrets check there would prove nothing")
	}
}

// checkChannelOutcomes reads every message row: sent exactly once for the
// recoverable modes, failed with the provider's reason for perm, never
// queued; and the points after the sends were awarded to everyone.
func checkChannelOutcomes(t *testing.T, st *store.Store, ids []string, modeOf map[string]mode, att *attempts) {
	t.Helper()
	wantFailed := map[string]string{"email": "smtp_550", "sms": "http_400", "webhook": "http_410"}
	rows, err := st.Pool().Query(context.Background(), `SELECT customer_id, channel, status, reason, recipient FROM messages ORDER BY customer_id, channel`)
	if err != nil {
		t.Fatal(err)
	}
	type msg struct{ status, reason, recipient string }
	got := map[string][]msg{}
	for rows.Next() {
		var id, ch string
		var m msg
		if err := rows.Scan(&id, &ch, &m.status, &m.reason, &m.recipient); err != nil {
			t.Fatal(err)
		}
		got[id+"/"+ch] = append(got[id+"/"+ch], m)
	}
	rows.Close()
	for _, id := range ids {
		m := modeOf[id]
		for _, ch := range []string{"email", "sms", "webhook"} {
			ms := got[id+"/"+ch]
			if len(ms) != 1 {
				t.Errorf("%s (%s) %s: %d message rows, want 1", id, m, ch, len(ms))
				continue
			}
			wantStatus, wantReason := "sent", ""
			if m == modePerm {
				wantStatus, wantReason = "failed", wantFailed[ch]
			}
			if ms[0].status != wantStatus || ms[0].reason != wantReason {
				t.Errorf("%s (%s) %s: %s %q, want %s %q", id, m, ch, ms[0].status, ms[0].reason, wantStatus, wantReason)
			}
			tries, accepted := att.count(ch + ":" + ms[0].recipient)
			if min := map[mode]int{modeDrop: 2, modeTemp: 3}[m]; tries < min {
				t.Errorf("%s (%s) %s: %d attempts: the fault was not injected", id, m, ch, tries)
			}
			if m != modePerm && accepted != 1 {
				t.Errorf("%s (%s) %s: provider accepted it %d times (after %d attempts), want once", id, m, ch, accepted, tries)
			}
		}
	}
	var completed, points int
	err = st.Pool().QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM enrollments WHERE status = 'completed'),
		       (SELECT count(*) FROM points_ledger WHERE reason = 'thanks')`).Scan(&completed, &points)
	if err != nil {
		t.Fatal(err)
	}
	if completed != len(ids) || points != len(ids) {
		t.Errorf("%d enrollments completed and %d awarded points after the sends, want %d each", completed, points, len(ids))
	}
}

// exerciseAPI makes the calls whose handling could echo a secret: wrong
// key, right key with bad bodies, a good call.
func exerciseAPI(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("API did not come up: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	calls := []struct {
		key, body string
		want      int
	}{
		{"wrong-" + secrets["RAPPORT_API_KEY"], `{"userId":"c00000","traits":{}}`, http.StatusUnauthorized},
		{secrets["RAPPORT_API_KEY"], `{"userId":`, http.StatusBadRequest},
		{secrets["RAPPORT_API_KEY"], `{"userId":"c00000","traits":{"name":"Ana"}}`, http.StatusOK},
	}
	for _, c := range calls {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/identify", strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+c.key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("identify %s: %d %s, want %d", c.body, res.StatusCode, body, c.want)
		}
		assertNoSecrets(t, "API answer", string(body))
	}
}

// assertNoSecrets fails when text contains any configured secret.
func assertNoSecrets(t *testing.T, where, text string) {
	t.Helper()
	for name, v := range secrets {
		if strings.Contains(text, v) {
			t.Errorf("%s contains the value of %s", where, name)
		}
	}
}

// assertNoSecretsInDB checks what the worker stored about failures.
func assertNoSecretsInDB(t *testing.T, st *store.Store) {
	t.Helper()
	var text string
	err := st.Pool().QueryRow(context.Background(), `
		SELECT coalesce(string_agg(reason, ' '), '') || ' ' ||
		       (SELECT coalesce(string_agg(detail || ' ' || branch, ' '), '') FROM enrollment_steps) || ' ' ||
		       (SELECT coalesce(string_agg(reason, ' '), '') FROM enrollments)
		FROM messages`).Scan(&text)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, "stored reasons and step details", text)
}

// assertVisibilityHasNoContacts: search attributes and the static summary
// are visible to every Temporal operator; they may name the customer id,
// never an email address or phone number.
func assertVisibilityHasNoContacts(t *testing.T, c client.Client, ids []string) {
	t.Helper()
	for i, id := range ids {
		d, err := c.DescribeWorkflow(context.Background(), workflows.WorkflowID("channel_faults", id), "")
		if err != nil {
			t.Fatalf("describe %s: %v", id, err)
		}
		summary, _ := d.GetStaticSummary()
		visible := fmt.Sprint(summary, " ", d.TypedSearchAttributes.GetUntypedValues())
		if !strings.Contains(visible, id) {
			t.Errorf("%s: visibility does not name the customer at all: %s", id, visible)
		}
		for _, contact := range []string{id + "@faults.test", fmt.Sprintf("1555%07d", i)} {
			if strings.Contains(visible, contact) {
				t.Errorf("%s: visibility shows %s: %s", id, contact, visible)
			}
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}
