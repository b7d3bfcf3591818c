package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/rapport-crm/rapport/api"
	"github.com/rapport-crm/rapport/channels"
	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/payloadcrypt"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
	"github.com/rapport-crm/rapport/workflows"
)

const apiKey = "e2e-key"

// env is one test's Rapport: its own database and namespace, the worker
// and the API in process, the API over real HTTP, mail into a catcher.
type env struct {
	t     *testing.T
	st    *store.Store
	c     client.Client
	codec *payloadcrypt.Codec // nil: payloads in clear
	stack *devenv.Stack
	api   *httptest.Server
	mail  *devenv.MailCatcher
}

func newEnv(t *testing.T, namespace string) *env {
	t.Helper()
	return newEnvWith(t, namespace, envOptions{})
}

// envOptions turn on what only some tests need.
type envOptions struct {
	// trackingSecret signs tracked links at send time (the worker's
	// RAPPORT_TRACKING_SECRET).
	trackingSecret []byte
	// feedback enables the provider webhooks and tracking endpoints of
	// the API (`rapport serve`'s environment).
	feedback *api.FeedbackOptions
	// erasureSecret is RAPPORT_ERASURE_SECRET of the worker and the API.
	erasureSecret []byte
	// payloadKeys turns payload encryption on (RAPPORT_PAYLOAD_KEYS):
	// the client, the worker and the API's /codec use env.codec.
	payloadKeys *payloadcrypt.Keyring
	// log receives everything the worker, the API and the SDK log, at
	// every level; nil discards it.
	log *slog.Logger
}

func newEnvWith(t *testing.T, namespace string, o envOptions) *env {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	mail, err := devenv.StartMailCatcher("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mail.Close() })
	email, err := channels.NewEmail(channels.SMTPConfig{Addr: mail.Addr(), From: "Rapport <hello@rapport.test>", TLS: channels.TLSNone})
	if err != nil {
		t.Fatal(err)
	}
	send := storetest.Delivery()
	send.Channels["email"] = email
	send.TrackingSecret = o.trackingSecret
	cfg := storetest.Config()
	if o.erasureSecret != nil {
		cfg.ErasureSecrets = [][]byte{o.erasureSecret}
	}
	st := storetest.NewWithConfig(t, cfg)

	copts := client.Options{HostPort: frontend, Namespace: namespace, Logger: quiet{}}
	var codec *payloadcrypt.Codec
	if o.payloadKeys != nil {
		codec = payloadcrypt.New(o.payloadKeys, st, payloadcrypt.Options{})
		copts = codec.ClientOptions(copts)
	}
	if o.log != nil {
		copts.Logger = sdklog.NewStructuredLogger(o.log)
	}
	c, err := client.Dial(copts)
	if err != nil {
		t.Fatalf("connect to the dev server: %v", err)
	}
	t.Cleanup(c.Close)
	ctx := context.Background()
	stack, err := devenv.StartStack(ctx, devenv.StackOptions{Client: c, Store: st, APIKey: apiKey, Delivery: send,
		Feedback: o.feedback, Codec: codec, Logger: o.log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Stop) // runs before the client closes and the database is dropped
	srv := httptest.NewServer(stack.API)
	t.Cleanup(srv.Close)
	return &env{t: t, st: st, c: c, codec: codec, stack: stack, api: srv, mail: mail}
}

// post calls the event API and fails the test unless it answers 200.
func (e *env) post(path, body string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.api.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("POST %s %s: %d %s", path, body, res.StatusCode, b)
	}
}

// deploy compiles testdata files and deploys them as `rapport deploy` does.
func (e *env) deploy(files ...string) []*engine.Plan {
	e.t.Helper()
	var plans []*engine.Plan
	for _, f := range files {
		p, err := engine.CompileFile("testdata/" + f)
		if err != nil {
			e.t.Fatalf("compile %s: %v", f, err)
		}
		plans = append(plans, p)
	}
	if _, err := e.stack.Deploy(context.Background(), plans...); err != nil {
		e.t.Fatalf("deploy: %v", err)
	}
	return plans
}

// eventually polls cond every 100ms until it returns "" (done) or the
// timeout passes, then fails with cond's last complaint.
func (e *env) eventually(timeout time.Duration, cond func() string) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// enrollment is one row of the enrollments table.
type enrollment struct {
	ID, WorkflowID, Version, Status, Reason string
}

// enrollments lists the enrollments of playbook, by customer.
func (e *env) enrollments(playbook string) map[string]enrollment {
	e.t.Helper()
	rows, err := e.st.Pool().Query(context.Background(),
		`SELECT customer_id, id, workflow_id, version, status, reason FROM enrollments WHERE playbook = $1`, playbook)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]enrollment{}
	for rows.Next() {
		var cust string
		var en enrollment
		if err := rows.Scan(&cust, &en.ID, &en.WorkflowID, &en.Version, &en.Status, &en.Reason); err != nil {
			e.t.Fatal(err)
		}
		out[cust] = en
	}
	return out
}

// state queries the journey of customer in playbook.
func (e *env) state(playbook, customer string) workflows.State {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := e.c.QueryWorkflow(ctx, workflows.WorkflowID(playbook, customer), "", workflows.StateQuery)
	if err != nil {
		e.t.Fatalf("query %s: %v", workflows.WorkflowID(playbook, customer), err)
	}
	var s workflows.State
	if err := v.Get(&s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) customerTags(id string) []string {
	e.t.Helper()
	c, err := e.st.Customer(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c.Tags
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func errorf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
