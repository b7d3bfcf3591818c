package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/scan"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// The scale of TestTwoWorkers: customers seeded (every one has bought),
// of whom one in lapsedEvery lapsed, and signups ingested per phase.
const (
	workersCustomers   = 600
	workersLapsedEvery = 3
	workersSignups     = 80
	workersPartitions  = 8
)

// TestTwoWorkers runs two `rapport worker` processes and `rapport serve`,
// built from this tree and configured only through the environment the
// real commands read, against one dev server namespace and one database.
//
// Phase 1: a batch of signups ingested through the API and a segment scan
// over 600 customers, split into 8 partitions. Both workers take part (each
// one's /metrics counts sent messages and scanned customers, and the two
// add up to the totals), every enrollment and every message exists once,
// and the SMTP server receives each message once.
//
// Phase 2: a scan enrolling every customer and another batch of signups;
// once a tenth of it is sent, worker A is SIGKILLed. Worker B finishes all
// of it: the killed worker's scan pages are retried, its journeys'
// workflow tasks and local activities run again on B, and still every
// enrollment and outbox row exists once and is sent. A second copy of a
// Message-ID at the SMTP server is allowed only across the kill (SMTP has
// no idempotency: a send accepted by the server but not yet recorded when
// the worker died is delivered again under the same Message-ID).
func TestTwoWorkers(t *testing.T) {
	t.Parallel()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	ctx := context.Background()
	bin := buildRapport(t)
	dbURL := storetest.NewDB(t)
	st, err := store.Open(ctx, dbURL, storetest.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	mail, err := devenv.StartMailCatcher("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mail.Close() })
	c, err := client.Dial(client.Options{HostPort: frontend, Namespace: nsWorkers, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e := &env{t: t, st: st, c: c}

	lapsed := map[string]bool{}
	for i := range workersCustomers {
		id := fmt.Sprintf("w%04d", i)
		cu := rules.Customer{ID: id, Email: id + "@example.com", Name: "Customer " + id, Locale: "en",
			OrderCount: 2, LastPurchaseAt: time.Now().AddDate(0, 0, -10)}
		if i%workersLapsedEvery == 0 {
			cu.LastPurchaseAt = time.Now().AddDate(0, 0, -120)
			lapsed[id] = true
		}
		if err := st.UpsertCustomer(ctx, cu); err != nil {
			t.Fatal(err)
		}
	}
	var plans []*engine.Plan
	for _, f := range []string{"workers_signup.yaml", "workers_lapsed.yaml", "workers_everyone.yaml"} {
		p, err := engine.CompileFile("testdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		plans = append(plans, p)
	}
	if _, err := scan.Deploy(ctx, st, c, plans); err != nil {
		t.Fatal(err)
	}

	// What `rapport worker` and `rapport serve` read; each process gets
	// its own ports. Small pools: two workers, serve and the parallel
	// tests share the server's 100 connections.
	common := []string{
		"DATABASE_URL=" + dbURL, "TEMPORAL_ADDRESS=" + frontend, "TEMPORAL_NAMESPACE=" + nsWorkers,
		"RAPPORT_UNSUBSCRIBE_SECRET=e2e-workers-secret", "RAPPORT_PUBLIC_URL=https://rapport.test",
	}
	workerEnv := append([]string{
		"RAPPORT_SMTP_ADDR=" + mail.Addr(), "RAPPORT_SMTP_FROM=Rapport <hello@rapport.test>", "RAPPORT_SMTP_TLS=none",
		"RAPPORT_FREQUENCY_CAP=off", "RAPPORT_DB_MAX_CONNS=8", "RAPPORT_ACTIVITY_SLOTS=2",
		"RAPPORT_SCAN_PARTITIONS=" + strconv.Itoa(workersPartitions),
	}, common...)
	a := startRapport(t, bin, "worker-a", append(workerEnv, "RAPPORT_METRICS_ADDR="+freeAddr(t)), "worker")
	b := startRapport(t, bin, "worker-b", append(workerEnv, "RAPPORT_METRICS_ADDR="+freeAddr(t)), "worker")
	apiAddr := freeAddr(t)
	startRapport(t, bin, "serve", append([]string{"RAPPORT_API_KEY=" + apiKey, "RAPPORT_LISTEN=" + apiAddr, "RAPPORT_METRICS_ADDR=off"}, common...), "serve")
	apiURL := "http://" + apiAddr
	for _, p := range []*rapportProc{a, b} {
		p.waitHealthy(t, 60*time.Second)
	}
	waitHTTP(t, apiURL+"/healthz", 60*time.Second)

	// Phase 1.
	signups1 := ids(0, workersSignups)
	if err := postSignups(apiURL, signups1); err != nil {
		t.Fatal(err)
	}
	first := e.triggerScanWithin("e2e_workers_lapsed", "", 2*time.Minute)
	// The lapsed rule compiles to an exact SQL predicate (package
	// pushdown), so the partitions read only the lapsed customers: the
	// candidates scanned are the matches.
	if first.Partitions != workersPartitions || first.Scanned != len(lapsed) || first.Matched != len(lapsed) || first.Started != len(lapsed) {
		t.Errorf("lapsed scan %+v, want %d candidates scanned in %d partitions, all matched and started",
			first.Result, len(lapsed), workersPartitions)
	}
	want1 := map[string][]string{"e2e_workers_signup": signups1, "e2e_workers_lapsed": keys(lapsed)}
	waitSent(t, st, c, want1, 3*time.Minute)
	checkOnce(t, st, want1)
	if total, repeats := mailCopies(t, st, mail, time.Time{}); total != workersSignups+len(lapsed) || repeats != 0 {
		t.Errorf("SMTP received %d mails with %d second copies, want %d, each once", total, repeats, workersSignups+len(lapsed))
	}
	sentA, sentB := a.metric(t, "rapport_messages_total", `channel="email"`, `status="sent"`), b.metric(t, "rapport_messages_total", `channel="email"`, `status="sent"`)
	if sentA == 0 || sentB == 0 || sentA+sentB != float64(workersSignups+len(lapsed)) {
		t.Errorf("messages sent by worker A %v and B %v, want both some, adding up to %d", sentA, sentB, workersSignups+len(lapsed))
	}
	scannedA := a.metric(t, "rapport_scan_customers_total", `playbook="e2e_workers_lapsed"`, `result="scanned"`)
	scannedB := b.metric(t, "rapport_scan_customers_total", `playbook="e2e_workers_lapsed"`, `result="scanned"`)
	if scannedA == 0 || scannedB == 0 || scannedA+scannedB != float64(len(lapsed)) {
		t.Errorf("candidates scanned by worker A %v and B %v, want both some, adding up to %d", scannedA, scannedB, len(lapsed))
	}
	t.Logf("phase 1: worker A sent %v and scanned %v, worker B sent %v and scanned %v", sentA, scannedA, sentB, scannedB)

	// Phase 2: kill A once part of the work is done.
	signups2 := ids(workersSignups, 2*workersSignups)
	everyone := ids(0, workersCustomers)
	want2 := map[string][]string{"e2e_workers_signup": append(signups1, signups2...), "e2e_workers_lapsed": keys(lapsed), "e2e_workers_everyone": everyone}
	scanDone := make(chan scanRun, 1)
	go func() {
		// Not e.triggerScanWithin: it fails the test from this goroutine.
		r, err := runScan(c, "e2e_workers_everyone", "", 6*time.Minute)
		if err != nil {
			t.Error(err)
		}
		scanDone <- r
	}()
	posted := make(chan error, 1)
	go func() { posted <- postSignups(apiURL, signups2) }()
	total2 := len(signups2) + len(everyone)
	sentAOfPhase1 := sentA
	var killedAt time.Time
	var sentBAtKill float64
	var killedSent int // phase 2's messages sent when A was killed
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		n := count(t, st, `SELECT count(*) FROM messages WHERE status = 'sent' AND (playbook = 'e2e_workers_everyone' OR customer_id = ANY($1) AND playbook = 'e2e_workers_signup')`, signups2)
		if n == total2 {
			t.Fatalf("all %d of phase 2's messages were sent before the kill (%v of them by worker A): make the phase larger", total2, sentA-sentAOfPhase1)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 minutes %d of phase 2's %d messages sent, %v of them by worker A", n, total2, sentA-sentAOfPhase1)
		}
		if n < total2/10 {
			continue
		}
		// A kill proves something only when A had sent part of phase 2:
		// with two activity slots A may be busy scanning partitions while
		// B sends the first tenth.
		if sentA = a.metric(t, "rapport_messages_total", `channel="email"`, `status="sent"`); sentA > sentAOfPhase1 {
			killedAt = time.Now()
			a.kill()
			// B's count first: what B sends between the two readings is
			// then in both, and the check below stays a lower bound.
			sentBAtKill = b.metric(t, "rapport_messages_total", `channel="email"`, `status="sent"`)
			killedSent = count(t, st, `SELECT count(*) FROM messages WHERE status = 'sent' AND (playbook = 'e2e_workers_everyone' OR customer_id = ANY($1) AND playbook = 'e2e_workers_signup')`, signups2)
			t.Logf("killed worker A with %d of phase 2's %d messages sent (%v of them by A)", n, total2, sentA-sentAOfPhase1)
			break
		}
	}
	if err := <-posted; err != nil {
		t.Fatal(err)
	}

	res := <-scanDone
	if res.Partitions != workersPartitions || res.Scanned != workersCustomers || res.Matched != workersCustomers ||
		res.Started+res.Running+res.Skipped != workersCustomers {
		t.Errorf("everyone scan %+v, want %d scanned and matched in %d partitions, each started once (started + running + skipped)",
			res.Result, workersCustomers, workersPartitions)
	}
	waitSent(t, st, c, want2, 4*time.Minute)
	checkOnce(t, st, want2)
	total, repeats := mailCopies(t, st, mail, killedAt)
	if total-repeats != workersSignups*2+len(lapsed)+workersCustomers {
		t.Errorf("SMTP received %d distinct messages, want %d", total-repeats, workersSignups*2+len(lapsed)+workersCustomers)
	}
	// Everything not sent when A died was sent by B: B's own count grew
	// by at least the rest (more when it re-ran a send of A's that had
	// not been recorded).
	if after := b.metric(t, "rapport_messages_total", `channel="email"`, `status="sent"`); after-sentBAtKill < float64(total2-killedSent) {
		t.Errorf("worker B sent %v messages after A was killed, want at least the %d not yet sent then", after-sentBAtKill, total2-killedSent)
	}
	t.Logf("phase 2: worker B sent %v messages after the kill; %d second copies at the SMTP server across it", b.metric(t, "rapport_messages_total", `channel="email"`, `status="sent"`)-sentBAtKill, repeats)
}

// ids are the customer ids w<from>…w<to-1>.
func ids(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("w%04d", i))
	}
	return out
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// postSignups ingests a signup per customer through /v1/batch, 20 to a
// call. A call answered 5xx is sent again, as Segment's libraries do (the
// messageIds make it idempotent): on a loaded machine the API answers 503
// "store temporarily unavailable; retry the same call" now and then.
func postSignups(apiURL string, customers []string) error {
	for i := 0; i < len(customers); i += 20 {
		var evs []string
		for _, id := range customers[i:min(i+20, len(customers))] {
			evs = append(evs, fmt.Sprintf(`{"type":"track","userId":%q,"event":"signup","messageId":"signup-%s"}`, id, id))
		}
		body := `{"batch":[` + strings.Join(evs, ",") + `]}`
		for attempt := 1; ; attempt++ {
			req, _ := http.NewRequest(http.MethodPost, apiURL+"/v1/batch", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+apiKey)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			answer, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
			if res.StatusCode < 500 || attempt == 30 {
				return fmt.Errorf("POST /v1/batch (attempt %d): %d %s", attempt, res.StatusCode, answer)
			}
			time.Sleep(time.Second)
		}
	}
	return nil
}

// waitSent waits until each playbook's customers have their message
// sent; on timeout it says which are missing and where their workflows
// are.
func waitSent(t *testing.T, st *store.Store, c client.Client, want map[string][]string, timeout time.Duration) {
	t.Helper()
	total := 0
	for _, cs := range want {
		total += len(cs)
	}
	deadline := time.Now().Add(timeout)
	for {
		n := count(t, st, `SELECT count(*) FROM messages WHERE status = 'sent'`)
		if n >= total {
			return
		}
		if time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for playbook, customers := range want {
			var missing []string
			for _, id := range customers {
				if count(t, st, `SELECT count(*) FROM messages WHERE status = 'sent' AND playbook = $1 AND customer_id = $2`, playbook, id) == 0 {
					missing = append(missing, id)
				}
			}
			if len(missing) == 0 {
				continue
			}
			t.Errorf("%s: %d customers have no sent message, e.g. %v", playbook, len(missing), missing[:min(5, len(missing))])
			for _, id := range missing[:min(3, len(missing))] {
				d, err := c.DescribeWorkflowExecution(context.Background(), "rapport/"+playbook+"/"+id, "")
				if err != nil {
					t.Logf("  %s: %v", id, err)
					continue
				}
				t.Logf("  %s: %s, history %d events, pending activities %v, pending workflow task %v", id,
					d.WorkflowExecutionInfo.Status, d.WorkflowExecutionInfo.HistoryLength, d.PendingActivities, d.PendingWorkflowTask)
			}
		}
		t.Fatalf("after %s: %d of %d messages sent", timeout, n, total)
	}
}

// checkOnce: each playbook enrolled exactly its customers, once each, and
// each enrollment has exactly one message, sent; nothing else is in the
// outbox.
func checkOnce(t *testing.T, st *store.Store, want map[string][]string) {
	t.Helper()
	ctx := context.Background()
	total := 0
	for playbook, customers := range want {
		total += len(customers)
		rows, err := st.Pool().Query(ctx, `
			SELECT e.customer_id, count(DISTINCT e.id), count(m.id), count(m.id) FILTER (WHERE m.status = 'sent'), min(e.status)
			FROM enrollments e LEFT JOIN messages m ON m.enrollment_id = e.id
			WHERE e.playbook = $1 GROUP BY e.customer_id`, playbook)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for rows.Next() {
			var id, status string
			var enrollments, messages, sent int
			if err := rows.Scan(&id, &enrollments, &messages, &sent, &status); err != nil {
				t.Fatal(err)
			}
			got[id] = true
			if enrollments != 1 || messages != 1 || sent != 1 || status == "rejected" || status == "failed" {
				t.Errorf("%s %s: %d enrollments (%s), %d messages, %d sent; want one enrollment with one message, sent", playbook, id, enrollments, status, messages, sent)
			}
		}
		rows.Close()
		for _, id := range customers {
			if !got[id] {
				t.Errorf("%s: %s was not enrolled", playbook, id)
			}
			delete(got, id)
		}
		if len(got) != 0 {
			t.Errorf("%s enrolled customers it should not have: %v", playbook, keys(got))
		}
	}
	if n := count(t, st, `SELECT count(*) FROM messages`); n != total {
		t.Errorf("%d messages in the outbox, want %d", n, total)
	}
}

// mailCopies compares the SMTP server with the outbox: every outbox row
// arrived under its Message-ID, and nothing else did. A second copy of a
// Message-ID is allowed only across killedAt (zero: never): the first
// copy before it, the second after. It returns the mails received and the
// second copies.
func mailCopies(t *testing.T, st *store.Store, m *devenv.MailCatcher, killedAt time.Time) (total, repeats int) {
	t.Helper()
	outbox := map[string]string{} // Message-ID → recipient
	rows, err := st.Pool().Query(context.Background(), `SELECT provider_id, recipient FROM messages`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, to string
		if err := rows.Scan(&id, &to); err != nil {
			t.Fatal(err)
		}
		outbox[id] = to
	}
	rows.Close()
	copies := map[string][]time.Time{}
	for _, mail := range m.Mails() {
		total++
		id := strings.Trim(mail.Header.Get("Message-Id"), "<> ")
		if to, ok := outbox[id]; !ok || len(mail.To) != 1 || strings.Trim(mail.To[0], "<>") != to {
			t.Errorf("SMTP received %q for %v with Message-ID %q, which the outbox does not record for them", mail.Subject, mail.To, id)
		}
		copies[id] = append(copies[id], mail.Received)
	}
	for id := range outbox {
		at := copies[id]
		switch {
		case len(at) == 0:
			t.Errorf("outbox row %s never reached the SMTP server", id)
		case len(at) == 1:
		case len(at) == 2 && !killedAt.IsZero() && at[0].Before(killedAt) && at[1].After(killedAt):
			repeats++
			t.Logf("at-least-once: Message-ID %s reached the SMTP server at %s and, after the kill, at %s", id, at[0].Format("15:04:05.000"), at[1].Format("15:04:05.000"))
		default:
			repeats += len(at) - 1
			t.Errorf("Message-ID %s reached the SMTP server %d times (%v), outside a kill", id, len(at), at)
		}
	}
	return total, repeats
}

// rapportProc is a `rapport` command run as its own process (group).
type rapportProc struct {
	name, log, metricsAddr string
	cmd                    *exec.Cmd
	done                   chan struct{}
}

// startRapport starts bin with args and env (over this process's
// environment), logging to a file that a failing test prints; the test's
// clean-up stops it (SIGTERM, then SIGKILL).
func startRapport(t *testing.T, bin, name string, env []string, args ...string) *rapportProc {
	t.Helper()
	p := &rapportProc{name: name, log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "RAPPORT_METRICS_ADDR="); ok && v != "off" {
			p.metricsAddr = v
		}
	}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("%s log (last 3000 bytes):\n%s", name, tailBytes(b, 3000))
		}
	})
	return p
}

// kill SIGKILLs the process group and waits for the exit.
func (p *rapportProc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// stop asks the process to stop (SIGTERM) and kills it after 40 s.
func (p *rapportProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		p.kill()
	}
}

// waitHealthy waits for the worker's /healthz to answer 200.
func (p *rapportProc) waitHealthy(t *testing.T, timeout time.Duration) {
	t.Helper()
	waitHTTP(t, "http://"+p.metricsAddr+"/healthz", timeout)
}

// metric is the value of the sample of name whose labels include every
// one of labels (`key="value"`), summed over matching samples; 0 when none.
func (p *rapportProc) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	res, err := http.Get("http://" + p.metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("%s /metrics: %v", p.name, err)
	}
	defer res.Body.Close()
	var sum float64
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("%s /metrics: %q: %v", p.name, line, err)
		}
		sum += v
	}
	return sum
}

func waitHTTP(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	(&env{t: t}).eventually(timeout, func() string {
		res, err := http.Get(url)
		if err != nil {
			return err.Error()
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return errorf("%s: %d", url, res.StatusCode)
		}
		return ""
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

func count(t *testing.T, st *store.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := st.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func tailBytes(b []byte, n int) string {
	if len(b) > n {
		return "…" + string(b[len(b)-n:])
	}
	return string(b)
}
