package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rapport-crm/rapport/payloadcrypt"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/workflows"
)

const uiOrigin = "https://temporal.example.com"

// memCustomerKeys keeps customer data keys in memory.
type memCustomerKeys map[string]store.CustomerKey

func (m memCustomerKeys) CustomerKey(_ context.Context, id string) (store.CustomerKey, error) {
	if k, ok := m[id]; ok {
		return k, nil
	}
	return store.CustomerKey{}, store.ErrNotFound
}

func (m memCustomerKeys) CreateCustomerKey(_ context.Context, k store.CustomerKey) (store.CustomerKey, error) {
	if have, ok := m[k.CustomerID]; ok {
		return have, nil
	}
	m[k.CustomerID] = k
	return k, nil
}

// codecHarness is the API with the codec endpoint over a codec with a
// fresh master key, and payloads of two customers encrypted with it.
func codecHarness(t *testing.T) (*harness, *payloadcrypt.Codec, memCustomerKeys) {
	t.Helper()
	spec, err := payloadcrypt.GenerateKeySpec("k1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := payloadcrypt.ParseKeys(spec)
	if err != nil {
		t.Fatal(err)
	}
	st := memCustomerKeys{}
	codec := payloadcrypt.New(keys, st, payloadcrypt.Options{})
	h := newHarness(t, func(o *Options) {
		o.Codec = &CodecOptions{Handler: codec.Handler(), AllowedOrigins: []string{uiOrigin}}
	})
	return h, codec, st
}

// encrypted is v encoded as a payload of customer's journey.
func encrypted(t *testing.T, c *payloadcrypt.Codec, customer string, v any) *commonpb.Payload {
	t.Helper()
	dc := converter.WithDataConverterSerializationContext(c.DataConverter(),
		converter.WorkflowSerializationContext{WorkflowID: workflows.WorkflowID("welcome", customer)})
	p, err := dc.ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func payloadsBody(t *testing.T, ps ...*commonpb.Payload) string {
	t.Helper()
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func payloadsOf(t *testing.T, body []byte) []*commonpb.Payload {
	t.Helper()
	var ps commonpb.Payloads
	if err := protojson.Unmarshal(body, &ps); err != nil {
		t.Fatalf("answer is not payloads: %v: %s", err, body)
	}
	return ps.Payloads
}

func valueOf(t *testing.T, p *commonpb.Payload) string {
	t.Helper()
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		t.Fatalf("payload %v: %v", p, err)
	}
	return s
}

func TestCodecEndpointNeedsTheKey(t *testing.T) {
	h, codec, _ := codecHarness(t)
	body := payloadsBody(t, encrypted(t, codec, "ada", "ada@example.com"))
	for _, auth := range []string{"", "Bearer wrong"} {
		for _, op := range []string{"decode", "encode"} {
			rec := h.do("POST", "/codec/"+op, body, "Authorization", auth, "Origin", uiOrigin, "X-Namespace", "default")
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("%s with Authorization %q: %d, want 401", op, auth, rec.Code)
			}
			if strings.Contains(rec.Body.String(), "ada@example.com") {
				t.Fatal("a refused call got the data")
			}
			if rec.Header().Get("Access-Control-Allow-Origin") != uiOrigin {
				t.Errorf("401 without CORS headers: the UI cannot tell it from a network error")
			}
		}
	}
}

func TestCodecPreflight(t *testing.T) {
	h, _, _ := codecHarness(t)
	rec := h.do("OPTIONS", "/codec/decode", "", "Authorization", "", "Origin", uiOrigin,
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,x-namespace,authorization")
	if rec.Code != http.StatusNoContent {
		t.Fatalf("preflight: %d %s, want 204 without a key", rec.Code, rec.Body)
	}
	hd := rec.Header()
	if hd.Get("Access-Control-Allow-Origin") != uiOrigin || hd.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("preflight headers %v", hd)
	}
	allowed := strings.ToLower(hd.Get("Access-Control-Allow-Headers"))
	for _, want := range []string{"content-type", "x-namespace", "authorization"} {
		if !strings.Contains(allowed, want) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", allowed, want)
		}
	}
	if !strings.Contains(hd.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("Access-Control-Allow-Methods %q", hd.Get("Access-Control-Allow-Methods"))
	}

	rec = h.do("OPTIONS", "/codec/decode", "", "Authorization", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if rec.Code != http.StatusForbidden || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d, ACAO %q; want 403 without CORS headers", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
	}
	rec = h.do("POST", "/codec/encode", payloadsBody(t), "Origin", "https://evil.example")
	if rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Error("a call from another origin got CORS headers")
	}
}

func TestCodecDecodesAndPassesErasedPayloadsThrough(t *testing.T) {
	h, codec, st := codecHarness(t)
	ada := encrypted(t, codec, "ada", "ada@example.com")
	bob := encrypted(t, codec, "bob", "bob@example.com")
	legacy, _ := converter.GetDefaultDataConverter().ToPayload("written before encryption")
	rec := h.do("POST", "/codec/decode", payloadsBody(t, ada, bob, legacy), "Origin", uiOrigin, "X-Namespace", "default")
	if rec.Code != http.StatusOK {
		t.Fatalf("decode: %d %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("Access-Control-Allow-Origin") != uiOrigin {
		t.Error("answer without Access-Control-Allow-Origin: the UI cannot read it")
	}
	got := payloadsOf(t, rec.Body.Bytes())
	if len(got) != 3 || valueOf(t, got[0]) != "ada@example.com" || valueOf(t, got[1]) != "bob@example.com" || valueOf(t, got[2]) != "written before encryption" {
		t.Fatalf("decoded %v", got)
	}

	// Ada is erased: her payload comes back as it went, still encrypted;
	// Bob's still decodes in the same call.
	delete(st, "ada")
	codec.Forget("ada")
	rec = h.do("POST", "/codec/decode", payloadsBody(t, ada, bob), "Origin", uiOrigin)
	if rec.Code != http.StatusOK {
		t.Fatalf("decode after erasure: %d %s", rec.Code, rec.Body)
	}
	got = payloadsOf(t, rec.Body.Bytes())
	if string(got[0].Metadata["encoding"]) != payloadcrypt.EncodingEncrypted || string(got[0].Metadata[payloadcrypt.MetadataKeyID]) != "customer:ada" {
		t.Errorf("erased payload answered as %v, want it unchanged", got[0].Metadata)
	}
	if strings.Contains(rec.Body.String(), "ada@example.com") {
		t.Error("an erased customer's data decoded")
	}
	if valueOf(t, got[1]) != "bob@example.com" {
		t.Error("another customer's payload no longer decodes")
	}
}

func TestCodecEncodeAndErrors(t *testing.T) {
	h, _, _ := codecHarness(t)
	plain, _ := converter.GetDefaultDataConverter().ToPayload("signal from the UI")
	rec := h.do("POST", "/codec/encode", payloadsBody(t, plain))
	if rec.Code != http.StatusOK {
		t.Fatalf("encode: %d %s", rec.Code, rec.Body)
	}
	enc := payloadsOf(t, rec.Body.Bytes())
	if string(enc[0].Metadata[payloadcrypt.MetadataKeyID]) != "k1" || strings.Contains(rec.Body.String(), "signal from the UI") {
		t.Fatalf("encoded %v", enc[0])
	}
	rec = h.do("POST", "/codec/decode", payloadsBody(t, enc...))
	if rec.Code != http.StatusOK || valueOf(t, payloadsOf(t, rec.Body.Bytes())[0]) != "signal from the UI" {
		t.Fatalf("decode of encode: %d %s", rec.Code, rec.Body)
	}

	enc[0].Data[len(enc[0].Data)-1] ^= 1
	rec = h.do("POST", "/codec/decode", payloadsBody(t, enc...))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `key "k1": authentication failed`) {
		t.Errorf("tampered payload: %d %s, want 400 naming the key", rec.Code, rec.Body)
	}
	if rec := h.do("POST", "/codec/decode", `{"payloads":`); rec.Code != http.StatusBadRequest {
		t.Errorf("bad JSON: %d", rec.Code)
	}
	if rec := h.do("POST", "/codec/decode", payloadsBody(t), "Content-Type", "text/plain"); rec.Code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: %d", rec.Code)
	}
	big := fmt.Sprintf(`{"payloads":[{"data":"%s"}]}`, strings.Repeat("A", MaxCodecBytes))
	if rec := h.do("POST", "/codec/decode", big); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "too large") {
		t.Errorf("body over MaxCodecBytes: %d %s", rec.Code, rec.Body)
	}
}

func TestCodecEndpointOffByDefault(t *testing.T) {
	h := newHarness(t)
	if rec := h.do("POST", "/codec/decode", `{"payloads":[]}`); rec.Code != http.StatusNotFound {
		t.Errorf("without Options.Codec: %d, want 404", rec.Code)
	}
}

func TestParseOrigins(t *testing.T) {
	got, err := ParseOrigins(" https://Temporal.example.com , http://localhost:8233/,")
	if err != nil || strings.Join(got, " ") != "https://temporal.example.com http://localhost:8233" {
		t.Errorf("ParseOrigins: %v, %v", got, err)
	}
	for _, bad := range []string{"*", "temporal.example.com", "ftp://x", "https://x/path", "https://user@x", "https://x?q=1"} {
		if _, err := ParseOrigins(bad); err == nil {
			t.Errorf("ParseOrigins(%q) accepted", bad)
		}
	}
}

func TestDevCodecHandlerNeedsNoKey(t *testing.T) {
	_, codec, _ := codecHarness(t)
	h := DevCodecHandler(CodecOptions{Handler: codec.Handler(), AllowedOrigins: []string{"http://localhost:8233"}})
	req := httptest.NewRequest("POST", "/codec/decode", strings.NewReader(payloadsBody(t, encrypted(t, codec, "ada", "ada@example.com"))))
	req.Header.Set("Origin", "http://localhost:8233")
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || valueOf(t, payloadsOf(t, rec.Body.Bytes())[0]) != "ada@example.com" {
		t.Fatalf("dev codec: %d %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("Access-Control-Allow-Origin") != "http://localhost:8233" {
		t.Error("dev codec answers the dev UI without CORS headers")
	}
}
