package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/payloadcrypt"
	"github.com/rapport-crm/rapport/workflows"
)

// person is a seeded customer and every spelling of their personal data
// that must not be readable without the codec.
type person struct {
	id, email, phone, name string
}

func (p person) secrets() []string {
	local, _, _ := strings.Cut(p.email, "@")
	last := p.name[strings.LastIndexByte(p.name, ' ')+1:]
	return []string{p.email, local, p.phone, strings.TrimPrefix(p.phone, "+"), p.phone[len(p.phone)-7:], p.name, last}
}

var (
	privAda = person{id: "p-1", email: "ada.lovelace@example.com", phone: "+447700900123", name: "Ada Lovelace"}
	privBob = person{id: "p-2", email: "bob.marchetti@example.org", phone: "+15550104477", name: "Bob Marchetti"}
)

// TestHistoriesHoldNoPersonalData runs journeys with payload encryption
// on, for customers with known email addresses, phone numbers and names,
// and reads everything Temporal holds about them the way an operator
// would, with the Temporal CLI: without the codec, no history, search
// attribute or summary, and no line the worker and the SDK logged,
// contains any of it; through rapport serve's codec endpoint the same
// history decodes and shows it. After Ada's data key is deleted her
// history no longer decodes through the endpoint, and Bob's still does.
func TestHistoriesHoldNoPersonalData(t *testing.T) {
	t.Parallel()
	spec, err := payloadcrypt.GenerateKeySpec("e2e")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := payloadcrypt.ParseKeys(spec)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnvWith(t, nsPrivacy, envOptions{payloadKeys: keys, log: log})
	e.deploy("private.yaml")
	people := []person{privAda, privBob}
	for _, p := range people {
		e.post("/v1/identify", fmt.Sprintf(`{"userId":%q,"traits":{"email":%q,"phone":%q,"name":%q,"locale":"en"}}`, p.id, p.email, p.phone, p.name))
		e.post("/v1/track", fmt.Sprintf(`{"userId":%q,"event":"signup","messageId":"signup-%s"}`, p.id, p.id))
	}
	ctx := context.Background()
	e.eventually(time.Minute, func() string {
		var n int
		if err := e.st.Pool().QueryRow(ctx, `SELECT count(*) FROM messages WHERE status = 'sent'`).Scan(&n); err != nil {
			return err.Error()
		}
		if n != 4 {
			return errorf("%d messages sent, want an email and a text to each customer", n)
		}
		return ""
	})
	// Ada asks to be called back, quoting her name and number: the
	// signal to her journey carries them.
	e.post("/v1/track", fmt.Sprintf(`{"userId":%q,"event":"callback_requested","messageId":"cb-1","properties":{"note":"call %s on %s"}}`, privAda.id, privAda.name, privAda.phone))
	e.eventually(time.Minute, func() string {
		if en := e.enrollments("e2e_private")[privAda.id]; en.Status != "completed" {
			return errorf("Ada's enrollment is %q, want completed", en.Status)
		}
		return ""
	})

	cli := newTemporalCLI(t, nsPrivacy)
	runs := cli.runs(t, 2)
	var all []string
	for _, r := range runs {
		all = append(all, cli.run(t, "workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "-o", "json"))
		all = append(all, cli.run(t, "workflow", "describe", "-w", r.WorkflowID, "-r", r.RunID, "-o", "json"))
	}
	all = append(all, cli.run(t, "workflow", "list", "-o", "json"))
	readable := readableText(all...)
	for _, p := range people {
		for _, s := range p.secrets() {
			if strings.Contains(readable, s) {
				t.Errorf("Temporal shows %q of customer %s without the codec", s, p.id)
			}
			if strings.Contains(logs.String(), s) {
				t.Errorf("the worker's log shows %q of customer %s", s, p.id)
			}
		}
	}
	if !strings.Contains(logs.String(), privAda.id) {
		t.Errorf("the log never names customer %s: the log check above checks nothing", privAda.id)
	}
	if !strings.Contains(readable, payloadcrypt.EncodingEncrypted) || !strings.Contains(readable, "customer:"+privAda.id) {
		t.Errorf("the histories hold no payload encrypted with Ada's key: is the codec on?")
	}
	if !strings.Contains(readable, privAda.id) {
		t.Errorf("the search attributes lost the customer id")
	}

	// Through the codec endpoint of the API (rapport serve's), with the
	// API key, the histories decode.
	ada, bob := workflows.WorkflowID("e2e_private", privAda.id), workflows.WorkflowID("e2e_private", privBob.id)
	decoded := readableText(cli.withCodec(t, e.api.URL, "workflow", "show", "-w", ada, "-o", "json"))
	for _, s := range []string{privAda.email, privAda.phone, privAda.name, "call " + privAda.name} {
		if !strings.Contains(decoded, s) {
			t.Errorf("Ada's history decoded through the codec lacks %q", s)
		}
	}
	if !strings.Contains(decoded, "→ a***@example.com") {
		t.Errorf("the send summary does not show the masked address a***@example.com")
	}
	if _, err := cli.try("workflow", "show", "-w", ada, "-o", "json", "--codec-endpoint", e.api.URL+"/codec"); err == nil {
		t.Errorf("the codec endpoint decoded without the API key")
	}

	// Crypto-shredding: Ada's key is deleted (the API process drops its
	// cached copy, as `rapport forget` run in it would).
	if err := e.st.DeleteCustomerKey(ctx, privAda.id); err != nil {
		t.Fatal(err)
	}
	e.codec.Forget(privAda.id)
	shredded := readableText(cli.withCodec(t, e.api.URL, "workflow", "show", "-w", ada, "-o", "json"))
	for _, s := range privAda.secrets() {
		if strings.Contains(shredded, s) {
			t.Errorf("after her key was deleted, Ada's history still shows %q through the codec", s)
		}
	}
	if !strings.Contains(shredded, "customer:"+privAda.id) {
		t.Errorf("Ada's erased payloads are not answered still encrypted")
	}
	other := readableText(cli.withCodec(t, e.api.URL, "workflow", "show", "-w", bob, "-o", "json"))
	if !strings.Contains(other, privBob.email) || !strings.Contains(other, privBob.name) {
		t.Errorf("Bob's history no longer decodes after Ada's key was deleted")
	}
}

// temporalCLI runs the temporal CLI against the test's dev server and
// namespace.
type temporalCLI struct {
	bin, namespace string
}

func newTemporalCLI(t *testing.T, namespace string) temporalCLI {
	t.Helper()
	bin, err := devenv.TemporalBinary(context.Background(), false, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return temporalCLI{bin: bin, namespace: namespace}
}

func (c temporalCLI) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args = append(args, "--address", frontend, "--namespace", c.namespace)
	cmd := exec.CommandContext(ctx, c.bin, args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("temporal %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out.String(), nil
}

func (c temporalCLI) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.try(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withCodec runs the CLI with the API's codec endpoint and key.
func (c temporalCLI) withCodec(t *testing.T, apiURL string, args ...string) string {
	t.Helper()
	return c.run(t, append(args, "--codec-endpoint", apiURL+"/codec", "--codec-auth", "Bearer "+apiKey)...)
}

type runRef struct {
	WorkflowID, RunID string
}

// runs lists every run in the namespace, waiting until visibility shows
// at least the journeys (it lags behind a little).
func (c temporalCLI) runs(t *testing.T, journeys int) []runRef {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out := c.run(t, "workflow", "list", "-o", "json")
		var list []struct {
			Execution struct {
				WorkflowID string `json:"workflowId"`
				RunID      string `json:"runId"`
			} `json:"execution"`
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("workflow list: %v: %s", err, out)
		}
		var refs []runRef
		n := 0
		for _, w := range list {
			refs = append(refs, runRef{w.Execution.WorkflowID, w.Execution.RunID})
			if _, ok := workflows.CustomerOf(w.Execution.WorkflowID); ok {
				n++
			}
		}
		if n >= journeys {
			return refs
		}
		if time.Now().After(deadline) {
			t.Fatalf("workflow list shows %d journeys, want %d: %s", n, journeys, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// readableText is the CLI's JSON output with every string in it also
// base64-decoded when it decodes (payload data and metadata are bytes):
// personal data must appear in neither form.
func readableText(outputs ...string) string {
	var b strings.Builder
	for _, out := range outputs {
		b.WriteString(out)
		dec := json.NewDecoder(strings.NewReader(out))
		for {
			var v any
			if err := dec.Decode(&v); err != nil {
				if !errors.Is(err, io.EOF) {
					b.WriteString("\n(not JSON: " + err.Error() + ")")
				}
				break
			}
			walkStrings(v, func(s string) {
				if raw, err := base64.StdEncoding.DecodeString(s); err == nil {
					b.WriteByte('\n')
					b.Write(raw)
				}
			})
		}
	}
	return b.String()
}

func walkStrings(v any, f func(string)) {
	switch v := v.(type) {
	case string:
		f(v)
	case []any:
		for _, x := range v {
			walkStrings(x, f)
		}
	case map[string]any:
		for _, x := range v {
			walkStrings(x, f)
		}
	}
}

// syncBuffer is a bytes.Buffer the worker's goroutines may log to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
