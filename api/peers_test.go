package api

// Segment's own client libraries as test peers: classic analytics-node 6
// and @segment/analytics-node 3 (npm, run by node from peers/) send the
// calls of peers/segment-calls.mjs to a real server over PostgreSQL, and
// the rows must be what the tracking spec says. analytics-go is in
// segment_go_test.go.
//
// Needs node and `npm ci --prefix peers`. Locally the tests skip without
// them; under CI=true (as .ci/run sets) they fail.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/store"
)

const peersDir = "../peers"

// inCI reports whether the tests run in CI, where a missing peer is a
// failure rather than a reason to skip.
func inCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "false" && v != "0"
}

// requirePeer returns the path of node, or skips (fails in CI) when node
// or the npm package pkg under peers/node_modules is missing.
func requirePeer(t *testing.T, pkg string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if inCI() {
			t.Fatalf("CI is set but node is not on PATH: the Segment client tests need node and `npm ci --prefix peers`")
		}
		t.Skip("node is not installed: install node, then run `npm ci --prefix peers`")
	}
	if _, err := os.Stat(filepath.Join(peersDir, "node_modules", pkg, "package.json")); err != nil {
		if inCI() {
			t.Fatalf("CI is set but peers/node_modules has no %s: .ci/run must run `npm ci --prefix peers` (%v)", pkg, err)
		}
		t.Skip("peers/node_modules is missing " + pkg + ": run `npm ci --prefix peers` (from the repository root)")
	}
	return node
}

// peerAnswer is one HTTP answer a peer script printed.
type peerAnswer struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// runPeer runs a peer script against srv and returns the answers it saw.
func runPeer(t *testing.T, node, script, url, prefix string, env ...string) []peerAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(peersDir, script), url, testKey, prefix)
	cmd.Env = append(os.Environ(), env...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node peers/%s: %v\n%s%s", script, err, out.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("peers/%s wrote to stderr: %s", script, stderr.String())
	}
	var answers []peerAnswer
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var a peerAnswer
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("peers/%s printed %q: %v", script, sc.Text(), err)
		}
		answers = append(answers, a)
	}
	return answers
}

func TestPeerClassicAnalyticsNode(t *testing.T) {
	node := requirePeer(t, "analytics-node")
	h, st := pgHarness(t)
	srv := httptest.NewServer(h.srv)
	defer srv.Close()
	answers := runPeer(t, node, "segment-classic.mjs", srv.URL, "classic")
	checkPeerAnswers(t, answers)
	checkPeerRows(t, st, "classic")
}

func TestPeerSegmentAnalyticsNode(t *testing.T) {
	node := requirePeer(t, "@segment/analytics-node")
	for _, gz := range []string{"0", "1"} {
		t.Run("gzip="+gz, func(t *testing.T) {
			h, st := pgHarness(t)
			var encodings sync.Map
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				encodings.Store(r.Header.Get("Content-Encoding"), true)
				h.srv.ServeHTTP(w, r)
			}))
			defer srv.Close()
			answers := runPeer(t, node, "segment-next.mjs", srv.URL, "next", "GZIP="+gz)
			if _, zipped := encodings.Load("gzip"); zipped != (gz == "1") {
				t.Errorf("GZIP=%s but a gzip body was seen: %v", gz, zipped)
			}
			checkPeerAnswers(t, answers)
			checkPeerRows(t, st, "next")
		})
	}
}

// checkPeerAnswers: every batch answered 200 (classic analytics-node
// sends its first call alone, then the rest), the bad identify listed and
// the seven other calls applied.
func checkPeerAnswers(t *testing.T, answers []peerAnswer) {
	t.Helper()
	calls, rejected := 0, 0
	for _, a := range answers {
		var got success
		if err := json.Unmarshal(a.Body, &got); err != nil || a.Status != 200 {
			t.Fatalf("answer %d %s, want 200 with a JSON body", a.Status, a.Body)
		}
		calls += got.Calls
		rejected += got.Rejected
		for _, e := range got.Errors {
			if e.Status != 400 || !strings.Contains(e.Error, "].traits.email: \"not-an-email\"") {
				t.Errorf("refused %+v, want only the bad e-mail", e)
			}
		}
	}
	if calls != 7 || rejected != 1 {
		t.Errorf("%d calls applied and %d refused in %d batches, want 7 and 1", calls, rejected, len(answers))
	}
}

// checkPeerRows checks what segment-calls.mjs must leave in PostgreSQL.
func checkPeerRows(t *testing.T, st *store.Store, p string) {
	t.Helper()
	var email string
	var orders int
	var ltv float64
	var events []string
	var groupPlan, tiedAnon, tiedOld string
	var bad int
	query(t, st, `SELECT c.email, c.order_count, c.lifetime_value::float8,
			ARRAY(SELECT name FROM events WHERE customer_id = c.id ORDER BY name),
			(SELECT traits->>'plan' FROM customer_groups WHERE customer_id = c.id AND group_id = '`+p+`-acme'),
			(SELECT customer_id FROM anonymous_ids WHERE anonymous_id = '`+p+`-anon'),
			(SELECT customer_id FROM anonymous_ids WHERE anonymous_id = '`+p+`-old'),
			(SELECT count(*) FROM customers WHERE id = '`+p+`-bad')
		FROM customers c WHERE c.id = '`+p+`-u1'`,
		&email, &orders, &ltv, &events, &groupPlan, &tiedAnon, &tiedOld, &bad)
	user := p + "-u1"
	if email != p+"@example.com" || orders != 1 || ltv != 30 {
		t.Errorf("customer: email %q orders %d ltv %v; want %s@example.com, 1 order of 30", email, orders, ltv, p)
	}
	if want := "order_completed page product_viewed screen"; strings.Join(events, " ") != want {
		t.Errorf("events %v, want %s (the anonymous visit merged in)", events, want)
	}
	if groupPlan != "pro" || tiedAnon != user || tiedOld != user || bad != 0 {
		t.Errorf("group plan %q, anonymousId tied to %q, previousId to %q, %d bad customers", groupPlan, tiedAnon, tiedOld, bad)
	}
	var skew time.Duration
	var maxAt time.Time
	query(t, st, `SELECT max(time) FROM events WHERE customer_id = '`+user+`'`, &maxAt)
	if skew = maxAt.Sub(testNow); skew < -time.Minute || skew > time.Minute {
		t.Errorf("latest event at %v, %v from the server's clock: the client's clock was not corrected from sentAt", maxAt, skew)
	}
}
