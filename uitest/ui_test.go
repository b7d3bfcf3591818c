//go:build uitest

package uitest

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/rapport-crm/rapport/api"
	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/payloadcrypt"
	"github.com/rapport-crm/rapport/report"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
	"github.com/rapport-crm/rapport/worker"
	"github.com/rapport-crm/rapport/workflows"
)

const namespace = "default"

// env is the running dev server, worker and store of one test.
type env struct {
	c     client.Client
	st    *store.Store
	uiURL string
	plan  *engine.Plan
}

func start(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	bin, err := devenv.TemporalBinary(ctx, false, os.Stderr)
	if err != nil {
		t.Skipf("uitest: %v", err)
	}
	port, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	uiPort, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// Payloads are encrypted, as with rapport dev: the UI reads them
	// through the codec endpoint, so every summary and result the page
	// shows below was decoded by it.
	st := storetest.New(t)
	spec, err := payloadcrypt.GenerateKeySpec("uitest")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := payloadcrypt.ParseKeys(spec)
	if err != nil {
		t.Fatal(err)
	}
	codec := payloadcrypt.New(keys, st, payloadcrypt.Options{})
	uiOrigins := []string{fmt.Sprintf("http://localhost:%d", uiPort), fmt.Sprintf("http://127.0.0.1:%d", uiPort)}
	codecSrv := httptest.NewServer(api.DevCodecHandler(api.CodecOptions{Handler: codec.Handler(), AllowedOrigins: uiOrigins}))
	t.Cleanup(codecSrv.Close)
	srv, err := devenv.StartTemporal(ctx, devenv.TemporalOptions{
		Binary: bin, HostPort: fmt.Sprintf("127.0.0.1:%d", port), UIPort: uiPort, UICodecEndpoint: codecSrv.URL + api.CodecPath,
		Namespace: namespace, SearchAttributes: workflows.SearchAttributes,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	c, err := devenv.DialTemporalWith(ctx, codec.ClientOptions(client.Options{HostPort: srv.HostPort, Namespace: namespace}), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	w := worker.New(worker.Options{Client: c, Store: st, Delivery: storetest.Delivery(), Codec: codec})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	src, err := os.ReadFile("testdata/winback.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := engine.Compile("testdata/winback.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	return &env{c: c, st: st, uiURL: srv.UIURL, plan: plan}
}

// enroll starts customer's journey and returns its run.
func (e *env) enroll(t *testing.T, c rules.Customer) client.WorkflowRun {
	t.Helper()
	ctx := context.Background()
	if err := e.st.UpsertCustomer(ctx, c); err != nil {
		t.Fatal(err)
	}
	run, started, err := workflows.Enroll(ctx, e.c, e.plan, c.ID, rules.Event{Name: "manual"})
	if err != nil || !started {
		t.Fatalf("enroll %s: started %v, %v", c.ID, started, err)
	}
	return run
}

// waitStatus waits until the visibility store lists the workflow with
// the RapportStatus search attribute at status.
func (e *env) waitStatus(t *testing.T, query string, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := e.c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, Query: query})
		if err == nil && len(resp.Executions) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("visibility query %q: %v executions (err %v), want %d", query, len(resp.GetExecutions()), err, want)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestTemporalUI(t *testing.T) {
	browser := chromiumBinary(t)
	e := start(t)
	ctx := context.Background()
	ada := rules.Customer{ID: "ada", Name: "Ada", Email: "ada@example.com", Locale: "zh", Timezone: "Asia/Shanghai"}
	bob := rules.Customer{ID: "bob", Name: "Bob", Email: "bob@example.com", Locale: "en", Timezone: "Europe/London"}
	adaRun := e.enroll(t, ada)
	e.enroll(t, bob)
	// Ada buys: the goal converts her journey. Bob stays waiting.
	e.waitStatus(t, `RapportCustomer = "ada" AND RapportStep = "wait_purchase"`, 1)
	if err := workflows.SignalEvent(ctx, e.c, "winback", "ada", rules.Event{ID: "o-1", Name: "purchase", Amount: 42, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var res workflows.JourneyResult
	// A goal measures (#11): the purchase converts her, and the journey
	// then ends at its last step, completed.
	if err := adaRun.Get(ctx, &res); err != nil || res.Status != "completed" || !res.Converted {
		t.Fatalf("ada's journey: %+v, %v", res, err)
	}
	converted := `RapportPlaybook = "winback" AND RapportStatus = "completed"`
	e.waitStatus(t, converted, 1)
	e.waitStatus(t, `RapportPlaybook = "winback" AND RapportStatus = "active"`, 1)

	docs := filepath.Join("..", "docs")
	// The list, filtered by the search attributes.
	listURL := e.uiURL + "/namespaces/" + namespace + "/workflows?query=" + url.QueryEscape(converted)
	dom := page(t, browser, listURL, filepath.Join(docs, "temporal-ui-list.png"), 1000)
	for _, want := range []string{"rapport/winback/ada", "Journey"} {
		if !strings.Contains(dom, want) {
			t.Errorf("filtered list page lacks %q", want)
		}
	}
	if strings.Contains(dom, "rapport/winback/bob") {
		t.Errorf("filtered list shows bob's active run")
	}
	// Ada's run: summary, activity summaries, outcome.
	runURL := report.TemporalRunURL(e.uiURL, namespace, adaRun.GetID(), adaRun.GetRunID())
	dom = page(t, browser, runURL, filepath.Join(docs, "temporal-ui-run.png"), 2100)
	text := visibleText(dom)
	for _, want := range []string{
		"Summary winback v" + e.plan.Version + " · customer ada · trigger manual",            // StaticSummary of the start
		"Activity Type SendMessage Summary send email winback_offer → a***@example.com (zh)", // local activity (marker) summaries, address masked
		"Activity Type IssueCoupon Summary coupon percent 15",
		"Activity Type LoadCustomer Summary load customer ada",
		"Summary wait_purchase: waiting for purchase until", // timer summary
		"Activity Type RecordOutcome Summary record outcome completed",
		`"status" : "completed"`, `"converted" : true`, // result
	} {
		if !strings.Contains(text, want) {
			t.Errorf("run page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("run page text:\n%s", text)
	}
}

// page loads url in headless Chromium, saves a screenshot to png and
// returns the rendered DOM. Chromium runs on virtual time, which waits for
// the page's requests; the page of a running workflow long-polls its
// history and never settles, so only closed runs can be captured this way.
func page(t *testing.T, browser, u, png string, height int) string {
	t.Helper()
	abs, err := filepath.Abs(png)
	if err != nil {
		t.Fatal(err)
	}
	size := fmt.Sprintf("--window-size=1600,%d", height)
	if out, err := chromium(t, browser, size, "--screenshot="+abs, u); err != nil {
		t.Fatalf("screenshot %s: %v\n%s", u, err, out)
	}
	out, err := chromium(t, browser, size, "--dump-dom", u)
	if err != nil {
		t.Fatalf("dump-dom %s: %v", u, err)
	}
	if dir := os.Getenv("UITEST_DUMP"); dir != "" { // for inspecting what a page shows
		name := strings.TrimSuffix(filepath.Base(png), ".png") + ".html"
		if err := os.WriteFile(filepath.Join(dir, name), out, 0o644); err != nil {
			t.Errorf("UITEST_DUMP: %v", err)
		}
	}
	return string(out)
}

// chromium runs one headless Chromium with a fresh profile.
func chromium(t *testing.T, browser string, args ...string) ([]byte, error) {
	t.Helper()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--hide-scrollbars",
		"--virtual-time-budget=20000", "--run-all-compositor-stages-before-draw"}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return stderr.Bytes(), err
	}
	return out, nil
}

func chromiumBinary(t *testing.T) string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("uitest: no chromium on PATH (apt-get install -y chromium, or set CHROMIUM)")
	return ""
}

// visibleText is the page's text without scripts, styles and tags, with
// runs of white space as one space.
func visibleText(html string) string {
	html = scriptOrStyle.ReplaceAllString(html, " ")
	html = tag.ReplaceAllString(html, " ")
	return strings.Join(strings.Fields(html), " ")
}

var (
	scriptOrStyle = regexp.MustCompile(`(?s)<script.*?</script>|<style.*?</style>`)
	tag           = regexp.MustCompile(`<[^>]+>`)
)
