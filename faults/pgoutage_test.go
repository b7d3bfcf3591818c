package faults

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
	"github.com/rapport-crm/rapport/workflows"
)

// pgOutageWait is the wait between the two emails of
// testdata/pgoutage.yaml.
const pgOutageWait = 25 * time.Second

// smtpReplyLatency delays each SMTP reply on the way to the worker, so a
// send takes about 350 ms as with a real relay rather than the catcher's
// microseconds: the stop then lands inside sends, between the outbox
// insert and the `sent` update, and exercises the at-least-once window.
const smtpReplyLatency = 50 * time.Millisecond

// outageFigures are what TestPostgresOutage measured, for
// docs/reliability.md.
type outageFigures struct {
	customers       int
	down            time.Duration // pg_ctl stop returned → pg_ctl start returned
	sentAtStop      int           // emails recorded sent just before the stop
	deliveredAtStop int           // emails the SMTP server had when it had stopped
	pendingAtStart  int           // emails not yet sent when it was back
	queuedAtStart   int           // of which in the outbox, queued: caught mid-send
	firstAfter      time.Duration // server back → first email after the outage
	lastAfter       time.Duration // server back → last email
	drain           time.Duration // server back → every enrollment ended
	duration        time.Duration // first enrollment → every enrollment ended
	smtpDeliveries  int
	smtpRepeats     int // second copies of a Message-ID (at-least-once window)
	failedWorkflows int
}

func (f outageFigures) String() string {
	return fmt.Sprintf("customers=%d pg_down=%s sent_at_stop=%d delivered_at_stop=%d pending_at_restart=%d queued_at_restart=%d first_send_after_restart=%s last_send_after_restart=%s drain_after_restart=%s duration=%s smtp_deliveries=%d smtp_repeats=%d failed_workflows=%d",
		f.customers, f.down.Round(time.Second), f.sentAtStop, f.deliveredAtStop, f.pendingAtStart, f.queuedAtStart, f.firstAfter.Round(100*time.Millisecond), f.lastAfter.Round(100*time.Millisecond),
		f.drain.Round(time.Second), f.duration.Round(time.Second), f.smtpDeliveries, f.smtpRepeats, f.failedWorkflows)
}

// pgDownTime is RAPPORT_FAULTS_PG_DOWN, default 2 minutes (5 in the full
// run).
func pgDownTime(t *testing.T) time.Duration {
	if v := os.Getenv("RAPPORT_FAULTS_PG_DOWN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("RAPPORT_FAULTS_PG_DOWN=%q: want a positive duration such as 2m", v)
		}
		return d
	}
	if full() {
		return 5 * time.Minute
	}
	return 2 * time.Minute
}

// TestPostgresOutage stops PostgreSQL for minutes (RAPPORT_FAULTS_PG_DOWN,
// default 2m) while journeys run, then starts it again: no journey may
// fail, the worker process must stay up throughout, and when the server is
// back every journey completes with each of its two emails recorded sent
// exactly once. The server is a private one (pgServer), so the shared
// server other packages' tests use is never touched and the test runs in
// CI. Customers are enrolled in three batches: the first waits between its
// emails when the server stops (its second send falls in the outage), the
// second is stopped in its first sends, the third is enrolled while the
// server is down (its first activity fails). Emails reach an SMTP catcher
// through a link that makes each send take about 350 ms, so the stop
// catches sends between their outbox insert and their `sent` update: a
// second copy of a Message-ID is allowed only for such an email, accepted
// by the time the server stopped and redelivered after the restart
// (at-least-once, docs/reliability.md), and the outbox must still hold
// one row per email. Nothing may arrive while the server is down.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	down := pgDownTime(t)
	customers := 100
	if full() {
		customers = 300
	}
	tbin := requireIntegration(t)
	pg := newPGServer(t, requirePostgresServer(t))
	rbin := rapportBinary(t)
	if out, err := runWithEnv(rbin, []string{"DATABASE_URL=" + pg.URL()}, "migrate", "up"); err != nil {
		t.Fatalf("rapport migrate up: %v\n%s", err, out)
	}
	st, err := store.Open(context.Background(), pg.URL(), storetest.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	plan, err := engine.CompileFile("testdata/pgoutage.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ids := seedCustomers(t, st, customers)

	mail, err := devenv.StartMailCatcher("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mail.Close() })
	smtpAddr := slowLink(t, mail.Addr(), smtpReplyLatency)
	tp := newTemporal(t, tbin, "faults")
	c := tp.dial()
	w := &workerProc{t: t, bin: rbin, log: filepath.Join(t.TempDir(), "worker.log"), env: []string{
		"TEMPORAL_ADDRESS=" + tp.hostPort, "TEMPORAL_NAMESPACE=faults", "DATABASE_URL=" + pg.URL(),
		"RAPPORT_METRICS_ADDR=off", "RAPPORT_FREQUENCY_CAP=off",
		"RAPPORT_SMTP_ADDR=" + smtpAddr, "RAPPORT_SMTP_FROM=Rapport <hello@rapport.test>", "RAPPORT_SMTP_TLS=none",
		"RAPPORT_UNSUBSCRIBE_SECRET=faults-secret", "RAPPORT_PUBLIC_URL=https://rapport.test",
	}}
	w.start()
	t.Cleanup(w.stop)
	up := &liveness{t: t, w: w}

	nA, nB := customers*2/5, customers*3/10
	start := time.Now()
	enrollAll(t, c, plan, ids[:nA])
	up.sleep(6*time.Second, "before the outage") // batch A sent its first email and waits
	enrollAll(t, c, plan, ids[nA:nA+nB])
	// Stop while batch B sends: once a third of its first emails arrived.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	_, err = mail.WaitFor(ctx, func(m devenv.Mail) bool { return m.N >= nA+nB/3 })
	cancel()
	if err != nil {
		t.Fatalf("batch B's first emails: %v", err)
	}
	f := outageFigures{customers: customers}
	f.sentAtStop = countMessages(st, "sent")

	stopCalled := time.Now()
	pg.stop("fast")
	stopped := time.Now()
	f.deliveredAtStop = len(mail.Mails())
	t.Logf("%s: PostgreSQL stopped (%s after the first enrollment; %d of %d emails recorded sent, %d delivered); down for %s",
		stopped.Format("15:04:05.000"), stopped.Sub(start).Round(time.Millisecond), f.sentAtStop, 2*customers, f.deliveredAtStop, down)
	up.sleep(min(10*time.Second, down/3), "while PostgreSQL is down")
	enrollAll(t, c, plan, ids[nA+nB:]) // batch C: starts while the database is down
	up.sleep(time.Until(stopped.Add(down)), "while PostgreSQL is down")

	restartCalled := time.Now()
	pg.start()
	restarted := time.Now()
	f.down = restarted.Sub(stopped)
	f.pendingAtStart, f.queuedAtStart = 2*customers-countMessages(st, "sent"), countMessages(st, "queued")
	t.Logf("%s: PostgreSQL started again after %s; %d emails pending, %d of them queued in the outbox",
		restarted.Format("15:04:05.000"), f.down.Round(time.Millisecond), f.pendingAtStart, f.queuedAtStart)
	if f.queuedAtStart == 0 {
		t.Log("note: the stop caught no send in flight; the at-least-once window was not exercised this run")
	}

	// Every send that failed in the outage waits at most as long again as
	// it has failed for (its backoff doubles), then the wait and the
	// second email: twice the outage plus a margin is ample.
	up.waitEnded(st, customers, 2*down+pgOutageWait+2*time.Minute)
	f.drain = time.Since(restarted)
	f.duration = time.Since(start)
	up.check("after the journeys ended")
	for _, m := range mail.Mails() {
		if m.Received.After(restartCalled) {
			if d := max(0, m.Received.Sub(restarted)); f.firstAfter == 0 || d < f.firstAfter {
				f.firstAfter = d
			}
			f.lastAfter = max(f.lastAfter, m.Received.Sub(restarted))
		}
	}

	checkOutageOutcomes(t, st, ids)
	f.failedWorkflows = checkJourneysCompleted(t, c, plan.Name, customers)
	f.smtpDeliveries, f.smtpRepeats = checkOutageMail(t, st, mail, stopCalled, stopped, restartCalled)
	t.Logf("figures: %s", f)
	recordFigures(t, f)
}

// liveness fails the test, with the log's tail, as soon as the worker
// process is found to have exited: it must ride out the outage.
type liveness struct {
	t *testing.T
	w *workerProc
}

func (l *liveness) check(when string) {
	l.t.Helper()
	l.w.mu.Lock()
	p := l.w.p
	l.w.mu.Unlock()
	select {
	case <-p.done:
		out, _ := os.ReadFile(l.w.log)
		l.t.Fatalf("the worker process exited %s (%v); its log ends:\n%s", when, p.cmd.ProcessState, tail(string(out), 4000))
	default:
	}
}

// sleep waits d, checking the worker every second.
func (l *liveness) sleep(d time.Duration, when string) {
	l.t.Helper()
	deadline := time.Now().Add(d)
	for {
		l.check(when)
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		time.Sleep(min(left, time.Second))
	}
}

// waitEnded polls PostgreSQL until n enrollments have ended, checking the
// worker every second.
func (l *liveness) waitEnded(st *store.Store, n int, timeout time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	var ended, total, sent int
	for {
		l.check("while the journeys drained")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := st.Pool().QueryRow(ctx, `
			SELECT (SELECT count(*) FILTER (WHERE status <> 'active') FROM enrollments),
			       (SELECT count(*) FROM enrollments),
			       (SELECT count(*) FROM messages WHERE status = 'sent')`).Scan(&ended, &total, &sent)
		cancel()
		if err == nil && ended >= n {
			return
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(l.w.log)
			l.t.Fatalf("after %s: %d of %d enrollments ended (%d recorded, %d emails sent; last error %v); worker log ends:\n%s",
				timeout, ended, n, total, sent, err, tail(string(out), 4000))
		}
		time.Sleep(time.Second)
	}
}

// countMessages counts the outbox rows with status, -1 when PostgreSQL
// does not answer.
func countMessages(st *store.Store, status string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM messages WHERE status = $1`, status).Scan(&n); err != nil {
		return -1
	}
	return n
}

// checkOutageOutcomes: one enrollment per customer, completed; exactly
// one outbox row per email of the playbook (hello, again), sent, and no
// other row.
func checkOutageOutcomes(t *testing.T, st *store.Store, ids []string) {
	t.Helper()
	rows, err := st.Pool().Query(context.Background(), `
		SELECT c.id,
			(SELECT count(*) FROM enrollments e WHERE e.customer_id = c.id),
			(SELECT count(*) FROM enrollments e WHERE e.customer_id = c.id AND e.status = 'completed'),
			(SELECT coalesce(string_agg(e.status || ' ' || e.reason, '; '), '') FROM enrollments e WHERE e.customer_id = c.id AND e.status <> 'completed'),
			(SELECT coalesce(string_agg(m.step_id || ':' || m.channel || ':' || m.status, ',' ORDER BY m.step_id), '') FROM messages m WHERE m.customer_id = c.id)
		FROM customers c ORDER BY c.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen, bad := 0, 0
	for rows.Next() {
		var id, other, msgs string
		var enrolled, completed int
		if err := rows.Scan(&id, &enrolled, &completed, &other, &msgs); err != nil {
			t.Fatal(err)
		}
		seen++
		if enrolled != 1 || completed != 1 || msgs != "again:email:sent,hello:email:sent" {
			if bad++; bad <= 20 {
				t.Errorf("customer %s: %d enrollments, %d completed (%s); messages %q, want again:email:sent,hello:email:sent", id, enrolled, completed, other, msgs)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if bad > 20 {
		t.Errorf("... %d customers in all with wrong outcomes", bad)
	}
	if seen != len(ids) {
		t.Errorf("checked %d customers, want %d", seen, len(ids))
	}
}

// checkJourneysCompleted asks Temporal's visibility for the journeys of
// playbook: none failed, terminated or timed out, all n completed. It
// returns the number that failed.
func checkJourneysCompleted(t *testing.T, c client.Client, playbook string, n int) int {
	t.Helper()
	prefix := workflows.WorkflowID(playbook, "")
	count := func(status string) (int, []string) {
		q := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = '%s'", workflows.WorkflowName, status)
		var ids []string
		var token []byte
		for {
			res, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: q, NextPageToken: token, PageSize: 1000})
			if err != nil {
				t.Fatalf("list %s journeys: %v", status, err)
			}
			for _, e := range res.Executions {
				if strings.HasPrefix(e.Execution.WorkflowId, prefix) {
					ids = append(ids, e.Execution.WorkflowId)
				}
			}
			if token = res.NextPageToken; len(token) == 0 {
				return len(ids), ids
			}
		}
	}
	failed := 0
	for _, status := range []string{"Failed", "Terminated", "TimedOut"} {
		k, ids := count(status)
		if k > 0 {
			sort.Strings(ids)
			t.Errorf("%d journeys %s in Temporal: %s", k, status, strings.Join(ids[:min(len(ids), 10)], ", "))
		}
		if status == "Failed" {
			failed = k
		}
	}
	// Visibility trails the database by a moment.
	deadline := time.Now().Add(time.Minute)
	for {
		k, _ := count("Completed")
		if k == n {
			return failed
		}
		if time.Now().After(deadline) {
			t.Errorf("%d journeys completed in Temporal, want %d", k, n)
			return failed
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkOutageMail compares the SMTP catcher with the outbox: every email
// arrived, under the Message-ID recorded as its provider id, each
// customer got exactly its two Message-IDs, and nothing arrived while
// the database was down (a send must not deliver without its outbox row).
// A second copy of a Message-ID is the at-least-once window: it is only
// allowed when the first copy arrived by the time the server had stopped
// (accepted, but the `sent` update lost) and the copy after the restart.
// It returns the deliveries and the second copies.
func checkOutageMail(t *testing.T, st *store.Store, m *devenv.MailCatcher, stopCalled, stopped, restartCalled time.Time) (total, repeats int) {
	t.Helper()
	type row struct{ customer, step, recipient string }
	outbox := map[string]row{} // Message-ID → its outbox row
	rows, err := st.Pool().Query(context.Background(), `SELECT provider_id, customer_id, step_id, recipient FROM messages`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var r row
		if err := rows.Scan(&id, &r.customer, &r.step, &r.recipient); err != nil {
			t.Fatal(err)
		}
		if _, dup := outbox[id]; dup || id == "" {
			t.Errorf("outbox: provider id %q recorded twice or empty (%s %s)", id, r.customer, r.step)
		}
		outbox[id] = r
	}
	rows.Close()

	copies := map[string][]devenv.Mail{}
	for _, mail := range m.Mails() {
		total++
		id := strings.Trim(mail.Header.Get("Message-Id"), "<> ")
		r, ok := outbox[id]
		switch {
		case !ok:
			t.Errorf("SMTP received %q for %v with Message-ID %q, which no outbox row records", mail.Subject, mail.To, id)
		case len(mail.To) != 1 || strings.Trim(mail.To[0], "<>") != r.recipient:
			t.Errorf("SMTP received Message-ID %s for %v, the outbox says %s", id, mail.To, r.recipient)
		}
		if mail.Received.After(stopped.Add(5*time.Second)) && mail.Received.Before(restartCalled) {
			t.Errorf("SMTP received %s (%s %s) at %s, while PostgreSQL was down (%s–%s)", id, r.customer, r.step,
				mail.Received.Format("15:04:05.000"), stopped.Format("15:04:05.000"), restartCalled.Format("15:04:05.000"))
		}
		copies[id] = append(copies[id], mail)
	}
	for id, r := range outbox {
		ms := copies[id]
		if len(ms) == 0 {
			t.Errorf("outbox row %s %s (Message-ID %s) never reached the SMTP server", r.customer, r.step, id)
			continue
		}
		if len(ms) == 1 {
			continue
		}
		repeats += len(ms) - 1
		var at []string
		for _, mail := range ms {
			at = append(at, mail.Received.Format("15:04:05.000"))
		}
		t.Logf("at-least-once: %s %s (Message-ID %s) reached the SMTP server %d times, at %s; the outbox holds one row",
			r.customer, r.step, id, len(ms), strings.Join(at, ", "))
		if len(ms) > 2 || ms[0].Received.After(stopped.Add(5*time.Second)) || ms[0].Received.Before(stopCalled.Add(-30*time.Second)) || ms[1].Received.Before(restartCalled) {
			t.Errorf("%s %s: repeated outside the outage's at-least-once window (stop %s–%s, restart %s)", r.customer, r.step,
				stopCalled.Format("15:04:05.000"), stopped.Format("15:04:05.000"), restartCalled.Format("15:04:05.000"))
		}
	}
	return total, repeats
}

// slowLink forwards TCP connections to target, holding every chunk the
// target sends for latency before passing it on. It returns its address.
func slowLink(t *testing.T, target string, latency time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer client.Close()
				server, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer server.Close()
				go func() { _, _ = io.Copy(server, client); _ = server.(*net.TCPConn).CloseWrite() }()
				buf := make([]byte, 32<<10)
				for {
					n, err := server.Read(buf)
					if n > 0 {
						time.Sleep(latency)
						if _, werr := client.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func runWithEnv(bin string, env []string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd.CombinedOutput()
}
