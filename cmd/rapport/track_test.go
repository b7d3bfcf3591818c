package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/temporalenv"
	"github.com/rapport-crm/rapport/workflows"
)

func TestParseKeyValues(t *testing.T) {
	got, err := parseKeyValues("--prop", []string{
		"amount=12.5", "count=3", "neg=-1e3", "vip=true", "gone=null",
		"zip=007", "phone=+8613800000000", `code="42"`, "note=a=b", "empty=",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"amount": 12.5, "count": 3.0, "neg": -1000.0, "vip": true, "gone": nil,
		"zip": "007", "phone": "+8613800000000", "code": "42", "note": "a=b", "empty": "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	for _, bad := range [][]string{{"novalue"}, {"=x"}, {"a=1", "a=2"}, {`q="unterminated\"`}} {
		if _, err := parseKeyValues("--prop", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// apiStub answers every call with status and body, and keeps the last request.
type apiStub struct {
	status int
	answer string
	path   string
	auth   string
	body   map[string]any
}

func (s *apiStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.path, s.auth = r.URL.Path, r.Header.Get("Authorization")
	raw, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(raw, &s.body)
	w.Header().Set("Retry-After", "5")
	w.WriteHeader(s.status)
	_, _ = io.WriteString(w, s.answer)
}

func runCmd(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestTrackCommand(t *testing.T) {
	stub := &apiStub{status: 200, answer: `{"success":true}`}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	t.Setenv("RAPPORT_API_KEY", "k1")

	out, err := runCmd(t, newTrackCmd(), "--api-url", srv.URL+"/", "--customer", "c1", "--event", "purchase",
		"--prop", "amount=99.5", "--prop", "currency=CNY", "--message-id", "m-1", "--time", "2026-03-10T10:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	if stub.path != "/v1/track" || stub.auth != "Bearer k1" {
		t.Errorf("sent to %s with %q", stub.path, stub.auth)
	}
	want := map[string]any{"userId": "c1", "event": "purchase", "messageId": "m-1", "timestamp": "2026-03-10T10:00:00Z",
		"properties": map[string]any{"amount": 99.5, "currency": "CNY"}}
	if !reflect.DeepEqual(stub.body, want) {
		t.Errorf("body %v\nwant %v", stub.body, want)
	}
	if !strings.Contains(out, "tracked purchase for c1 (message id m-1)") {
		t.Errorf("output %q", out)
	}

	// Without --message-id one is generated.
	if _, err := runCmd(t, newTrackCmd(), "--api-url", srv.URL, "--customer", "c1", "--event", "x"); err != nil {
		t.Fatal(err)
	}
	if id, _ := stub.body["messageId"].(string); !strings.HasPrefix(id, "cli-") || len(id) != 28 {
		t.Errorf("generated message id %q", id)
	}
}

func TestTrackCommandErrors(t *testing.T) {
	stub := &apiStub{}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	t.Setenv("RAPPORT_API_KEY", "k1")
	tests := []struct {
		status int
		answer string
		want   string
	}{
		{400, `{"error":"userId: customer id may only contain letters"}`, "400 Bad Request: userId: customer id may only contain letters"},
		{401, `{"error":"invalid API key"}`, "invalid API key"},
		{503, `{"error":"dispatch temporarily unavailable; retry the same call"}`, "retry with --message-id m-9"},
	}
	for _, tt := range tests {
		stub.status, stub.answer = tt.status, tt.answer
		_, err := runCmd(t, newTrackCmd(), "--api-url", srv.URL, "--customer", "c1", "--event", "x", "--message-id", "m-9")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%d: error %v, want %q", tt.status, err, tt.want)
		}
	}
	if _, err := runCmd(t, newTrackCmd(), "--api-url", srv.URL, "--event", "x"); err == nil || !strings.Contains(err.Error(), "--customer") {
		t.Errorf("missing --customer: %v", err)
	}
	t.Setenv("RAPPORT_API_KEY", "")
	if _, err := runCmd(t, newTrackCmd(), "--api-url", srv.URL, "--customer", "c1", "--event", "x"); err == nil || !strings.Contains(err.Error(), "RAPPORT_API_KEY") {
		t.Errorf("missing key: %v", err)
	}
}

func TestIdentifyCommand(t *testing.T) {
	stub := &apiStub{status: 200, answer: `{"success":true}`}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	t.Setenv("RAPPORT_API_KEY", "k1")
	out, err := runCmd(t, newIdentifyCmd(), "--api-url", srv.URL, "--customer", "c1",
		"--trait", "email=li@example.com", "--trait", "vip=true", "--trait", "industry=null")
	if err != nil {
		t.Fatal(err)
	}
	traits := map[string]any{"email": "li@example.com", "vip": true, "industry": nil}
	if stub.path != "/v1/identify" || !reflect.DeepEqual(stub.body["traits"], traits) || stub.body["userId"] != "c1" {
		t.Errorf("sent %s %v", stub.path, stub.body)
	}
	if !strings.Contains(out, "identified c1 (3 traits)") {
		t.Errorf("output %q", out)
	}
}

// TestServeConfig: RAPPORT_API_KEY is optional (scoped keys from the
// database authenticate without it), the rate limit is read and checked,
// and the intervals are checked.
func TestServeConfig(t *testing.T) {
	t.Setenv("RAPPORT_API_KEY", "")
	t.Setenv("RAPPORT_API_RATE", "")
	t.Setenv("RAPPORT_API_BURST", "")
	t.Setenv("RAPPORT_API_EVENT_STATEMENTS", "")
	cmd := &cobra.Command{}
	cmd.Flags().String("listen", ":0", "")
	cmd.Flags().String("database-url", "", "")
	cmd.Flags().String("temporal-address", "", "")
	cmd.Flags().String("temporal-namespace", "", "")
	cmd.Flags().Duration("reload", 0, "")
	cmd.Flags().Duration("redispatch-after", time.Minute, "")
	cmd.Flags().Duration("redispatch-window", 24*time.Hour, "")
	if err := cmd.Flags().Set("reload", "30s"); err != nil {
		t.Fatal(err)
	}
	if c, err := loadServeConfig(cmd); err != nil || c.APIKey != "" || c.Rate != DefaultAPIRate || c.Burst != 0 || c.EventStatements != 0 {
		t.Errorf("no key: %+v %v, want no legacy key, the default rate and the API's default statements", c, err)
	}
	for v, want := range map[string]int{"6": 6, " 1 ": 1, "off": -1} {
		t.Setenv("RAPPORT_API_EVENT_STATEMENTS", v)
		if c, err := loadServeConfig(cmd); err != nil || c.EventStatements != want {
			t.Errorf("RAPPORT_API_EVENT_STATEMENTS=%q: %d %v, want %d", v, c.EventStatements, err, want)
		}
	}
	for _, bad := range []string{"0", "-2", "many"} {
		t.Setenv("RAPPORT_API_EVENT_STATEMENTS", bad)
		if _, err := loadServeConfig(cmd); err == nil || !strings.Contains(err.Error(), "RAPPORT_API_EVENT_STATEMENTS") || !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("RAPPORT_API_EVENT_STATEMENTS=%q: %v, want an error naming the variable and the value", bad, err)
		}
	}
	t.Setenv("RAPPORT_API_EVENT_STATEMENTS", "")
	t.Setenv(workflows.EditionEnv, "2")
	if _, err := loadServeConfig(cmd); err == nil || !strings.Contains(err.Error(), workflows.EditionEnv) {
		t.Errorf("%s=2: %v, want an error naming the variable", workflows.EditionEnv, err)
	}
	t.Setenv(workflows.EditionEnv, "1")
	if _, err := loadServeConfig(cmd); err != nil {
		t.Errorf("%s=1: %v", workflows.EditionEnv, err)
	}
	t.Setenv("RAPPORT_API_KEY", "secret")
	t.Setenv("RAPPORT_API_RATE", "2.5")
	t.Setenv("RAPPORT_API_BURST", "7")
	c, err := loadServeConfig(cmd)
	if err != nil || c.APIKey != "secret" || c.Rate != 2.5 || c.Burst != 7 {
		t.Errorf("with key and rate: %+v %v", c, err)
	}
	t.Setenv("RAPPORT_API_RATE", "off")
	if c, err := loadServeConfig(cmd); err != nil || c.Rate != 0 {
		t.Errorf("rate off: %v %v", c.Rate, err)
	}
	for _, bad := range [][2]string{{"RAPPORT_API_RATE", "fast"}, {"RAPPORT_API_RATE", "-1"}, {"RAPPORT_API_BURST", "0"}} {
		t.Setenv("RAPPORT_API_RATE", "10")
		t.Setenv("RAPPORT_API_BURST", "")
		t.Setenv(bad[0], bad[1])
		if _, err := loadServeConfig(cmd); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%s=%s: %v, want an error naming the variable", bad[0], bad[1], err)
		}
	}
	t.Setenv("RAPPORT_API_BURST", "")
	_ = cmd.Flags().Set("redispatch-window", "30s")
	if _, err := loadServeConfig(cmd); err == nil || !strings.Contains(err.Error(), "--redispatch-after") {
		t.Errorf("a redispatch window shorter than its delay: %v", err)
	}
	_ = cmd.Flags().Set("redispatch-window", "24h")
	_ = cmd.Flags().Set("reload", "10ms")
	if _, err := loadServeConfig(cmd); err == nil {
		t.Error("a 10ms reload interval was accepted")
	}
}

// TestServeTemporalSettings: serve reads Temporal's standard settings
// (TEMPORAL_* over the config file) and its flags win over both.
func TestServeTemporalSettings(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("RAPPORT_API_KEY", "secret")
	t.Setenv("TEMPORAL_ADDRESS", "env.internal:7233")
	t.Setenv("TEMPORAL_NAMESPACE", "env-ns")
	t.Setenv("TEMPORAL_API_KEY", "temporal-key")
	cmd := &cobra.Command{}
	cmd.Flags().String("temporal-address", "", "")
	cmd.Flags().String("temporal-namespace", "", "")
	cmd.Flags().Duration("reload", 30*time.Second, "")
	cmd.Flags().Duration("redispatch-after", time.Minute, "")
	cmd.Flags().Duration("redispatch-window", 24*time.Hour, "")
	c, err := loadServeConfig(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if got := temporalenv.Describe(c.Temporal); got != "env.internal:7233, namespace env-ns, TLS, API key" {
		t.Errorf("from the environment: %s", got)
	}
	_ = cmd.Flags().Set("temporal-address", "flag.internal:7233")
	_ = cmd.Flags().Set("temporal-namespace", "flag-ns")
	if c, err = loadServeConfig(cmd); err != nil || c.Temporal.HostPort != "flag.internal:7233" || c.Temporal.Namespace != "flag-ns" {
		t.Errorf("flags: %s %v", temporalenv.Describe(c.Temporal), err)
	}
	t.Setenv("TEMPORAL_PROFILE", "missing")
	if _, err := loadServeConfig(cmd); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("unknown profile: %v", err)
	}
}

// TestServeSMSSettings: the inbound-SMS webhook is off without a token,
// and with one needs the https URL Twilio calls.
func TestServeSMSSettings(t *testing.T) {
	t.Setenv("RAPPORT_TWILIO_AUTH_TOKEN", "")
	if o, err := smsOptionsFromEnv(); err != nil || smsOptions(o, nil) != nil {
		t.Errorf("no token: %+v %v, want disabled", o, err)
	}
	t.Setenv("RAPPORT_TWILIO_AUTH_TOKEN", "tok-do-not-show")
	for _, public := range []string{"", "http://rapport.example"} {
		t.Setenv("RAPPORT_PUBLIC_URL", public)
		_, err := smsOptionsFromEnv()
		if err == nil || !strings.Contains(err.Error(), "RAPPORT_PUBLIC_URL") || strings.Contains(err.Error(), "tok-do-not-show") {
			t.Errorf("RAPPORT_PUBLIC_URL=%q: %v", public, err)
		}
	}
	t.Setenv("RAPPORT_PUBLIC_URL", "https://rapport.example")
	if o, err := smsOptionsFromEnv(); err != nil || o.AuthToken != "tok-do-not-show" {
		t.Errorf("token and https URL: %+v %v", o, err)
	}
}
