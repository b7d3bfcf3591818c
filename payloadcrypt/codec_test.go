package payloadcrypt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/workflows"
)

// memKeys is an in-memory KeyStore that counts its calls.
type memKeys struct {
	mu      sync.Mutex
	rows    map[string]store.CustomerKey
	reads   int
	creates int
}

func newMemKeys() *memKeys { return &memKeys{rows: map[string]store.CustomerKey{}} }

func (m *memKeys) CustomerKey(_ context.Context, id string) (store.CustomerKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	k, ok := m.rows[id]
	if !ok {
		return store.CustomerKey{}, fmt.Errorf("data key of %q: %w", id, store.ErrNotFound)
	}
	return k, nil
}

func (m *memKeys) CreateCustomerKey(_ context.Context, k store.CustomerKey) (store.CustomerKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.creates++
	if have, ok := m.rows[k.CustomerID]; ok {
		return have, nil
	}
	m.rows[k.CustomerID] = k
	return k, nil
}

func (m *memKeys) delete(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.rows, id)
}

func (m *memKeys) CustomerKeysWrappedBy(_ context.Context, master, after string, limit int) ([]store.CustomerKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.CustomerKey
	for _, k := range m.rows {
		if k.MasterKeyID == master && k.CustomerID > after {
			out = append(out, k)
		}
	}
	// Sorted, as the SQL orders them.
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].CustomerID < out[i].CustomerID {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (m *memKeys) RewrapCustomerKey(_ context.Context, id, from string, wrapped []byte, to string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.rows[id]
	if !ok || k.MasterKeyID != from {
		return false, nil
	}
	k.Wrapped, k.MasterKeyID = wrapped, to
	m.rows[id] = k
	return true, nil
}

func mustKeys(t *testing.T, ids ...string) (*Keyring, []string) {
	t.Helper()
	var specs []string
	for _, id := range ids {
		s, err := GenerateKeySpec(id)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, s)
	}
	k, err := ParseKeys(strings.Join(specs, ","))
	if err != nil {
		t.Fatal(err)
	}
	return k, specs
}

// keysOf builds a keyring from specs generated earlier, in this order.
func keysOf(t *testing.T, specs ...string) *Keyring {
	t.Helper()
	k, err := ParseKeys(strings.Join(specs, ","))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// profile is a customer as a journey carries it: the personal data the
// codec must hide.
var profile = rules.Customer{ID: "c-1", Email: "ada@example.com", Phone: "+447700900123", Name: "Ada Lovelace", Locale: "en"}

func payloadOf(t *testing.T, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func journeyCodec(c *Codec, customer string) converter.PayloadCodec {
	return c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "default", WorkflowID: workflows.WorkflowID("welcome", customer)})
}

func TestRoundTripHidesTheData(t *testing.T) {
	keys, _ := mustKeys(t, "k1")
	c := New(keys, nil, Options{})
	in := []*commonpb.Payload{payloadOf(t, profile), payloadOf(t, "plain string"), payloadOf(t, nil)}
	enc, err := c.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range enc {
		if got := string(p.Metadata[converter.MetadataEncoding]); got != EncodingEncrypted {
			t.Errorf("payload %d: encoding %q, want %s", i, got, EncodingEncrypted)
		}
		if got := string(p.Metadata[MetadataKeyID]); got != "k1" {
			t.Errorf("payload %d: key id %q, want k1", i, got)
		}
		for _, secret := range []string{profile.Email, profile.Name, profile.Phone, "json/plain", "plain string"} {
			if bytes.Contains(p.Data, []byte(secret)) {
				t.Errorf("payload %d: encrypted data contains %q", i, secret)
			}
		}
	}
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !proto.Equal(dec[i], in[i]) {
			t.Errorf("payload %d: decoded %v, want %v", i, dec[i], in[i])
		}
	}
	again, err := c.Encode(in[:1])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again[0].Data, enc[0].Data) {
		t.Error("the same payload encrypted twice gave the same bytes: the nonce is not random")
	}
}

func TestEncryptedPayloadsAreNotEncryptedTwice(t *testing.T) {
	keys, _ := mustKeys(t, "k1")
	c := New(keys, nil, Options{})
	enc, err := c.Encode([]*commonpb.Payload{payloadOf(t, profile)})
	if err != nil {
		t.Fatal(err)
	}
	twice, err := c.Encode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if twice[0] != enc[0] {
		t.Error("an encrypted payload was encrypted again")
	}
}

func TestRotationOldPayloadsStillDecode(t *testing.T) {
	_, oldSpec := mustKeys(t, "2026-05")
	_, newSpec := mustKeys(t, "2026-11")
	before := New(keysOf(t, oldSpec[0]), nil, Options{})
	written, err := before.Encode([]*commonpb.Payload{payloadOf(t, profile)})
	if err != nil {
		t.Fatal(err)
	}

	after := New(keysOf(t, newSpec[0], oldSpec[0]), nil, Options{})
	dec, err := after.Decode(written)
	if err != nil {
		t.Fatalf("a payload written under the old key does not decode after rotation: %v", err)
	}
	var got rules.Customer
	if err := converter.GetDefaultDataConverter().FromPayload(dec[0], &got); err != nil || got.Email != profile.Email {
		t.Fatalf("decoded %+v (%v), want the profile", got, err)
	}
	fresh, err := after.Encode([]*commonpb.Payload{payloadOf(t, profile)})
	if err != nil {
		t.Fatal(err)
	}
	if id := string(fresh[0].Metadata[MetadataKeyID]); id != "2026-11" {
		t.Errorf("after rotation new payloads use key %q, want the first (active) one 2026-11", id)
	}

	// Dropping the old key too early fails with an error naming it.
	dropped := New(keysOf(t, newSpec[0]), nil, Options{})
	_, err = dropped.Decode(written)
	if err == nil || !strings.Contains(err.Error(), `"2026-05"`) || !strings.Contains(err.Error(), EnvKeys) {
		t.Errorf("decode under a keyring without the old key: %v, want an error naming key 2026-05 and %s", err, EnvKeys)
	}
}

func TestDecodeErrorsSayWhy(t *testing.T) {
	keys, specs := mustKeys(t, "k1")
	c := New(keys, nil, Options{})
	enc, err := c.Encode([]*commonpb.Payload{payloadOf(t, profile)})
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func(p *commonpb.Payload)) []*commonpb.Payload {
		p := proto.Clone(enc[0]).(*commonpb.Payload)
		f(p)
		return []*commonpb.Payload{p}
	}
	_, other := mustKeys(t, "k1")
	cases := []struct {
		name    string
		codec   *Codec
		in      []*commonpb.Payload
		want    string
		erasure bool
	}{
		{"unknown key id", c, with(func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte("k9") }), `master key "k9" is not in RAPPORT_PAYLOAD_KEYS (it has k1)`, false},
		{"no key id", c, with(func(p *commonpb.Payload) { delete(p.Metadata, MetadataKeyID) }), "names no encryption-key-id", false},
		{"data tampered", c, with(func(p *commonpb.Payload) { p.Data[len(p.Data)-1] ^= 1 }), `key "k1": authentication failed`, false},
		{"nonce tampered", c, with(func(p *commonpb.Payload) { p.Data[0] ^= 1 }), `key "k1": authentication failed`, false},
		{"truncated", c, with(func(p *commonpb.Payload) { p.Data = p.Data[:10] }), "authentication failed", false},
		{"key id swapped", New(keysOf(t, specs[0], strings.Replace(other[0], "k1:", "k2:", 1)), nil, Options{}),
			with(func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte("k2") }), `key "k2": authentication failed`, false},
		{"a different key under the same id", New(keysOf(t, other[0]), nil, Options{}), enc, `key "k1": authentication failed`, false},
		{"encryption off", New(nil, nil, Options{}), enc, `encrypted (key "k1") but RAPPORT_PAYLOAD_KEYS is not set`, false},
		{"customer key without access to customer keys", c,
			with(func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte("customer:c-1") }), `customer "c-1", and this process has no access to customer keys`, false},
		{"customer key erased", New(keys, newMemKeys(), Options{}),
			with(func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte("customer:c-1") }), `customer "c-1" cannot be decrypted: the customer's data key was deleted`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.codec.Decode(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			var erased *ErasedError
			if errors.As(err, &erased) != tc.erasure {
				t.Errorf("errors.As(*ErasedError) = %v, want %v", !tc.erasure, tc.erasure)
			}
			if strings.Contains(err.Error(), strings.SplitN(specs[0], ":", 2)[1]) {
				t.Error("the error contains key material")
			}
		})
	}
}

func TestUnencryptedPayloadsPassThrough(t *testing.T) {
	keys, _ := mustKeys(t, "k1")
	for name, c := range map[string]*Codec{"keys": New(keys, newMemKeys(), Options{}), "off": New(nil, nil, Options{})} {
		t.Run(name, func(t *testing.T) {
			legacy := []*commonpb.Payload{payloadOf(t, profile), {Metadata: map[string][]byte{"encoding": []byte("binary/zlib")}, Data: []byte{1, 2}}}
			dec, err := journeyCodec(c, "c-1").Decode(legacy)
			if err != nil {
				t.Fatal(err)
			}
			for i := range legacy {
				if dec[i] != legacy[i] {
					t.Errorf("payload %d changed", i)
				}
			}
		})
	}
	off := New(nil, nil, Options{})
	in := []*commonpb.Payload{payloadOf(t, profile)}
	out, err := off.Encode(in)
	if err != nil || out[0] != in[0] {
		t.Errorf("encryption off: Encode changed the payload (%v)", err)
	}
}

func TestJourneyPayloadsUseTheCustomersKey(t *testing.T) {
	keys, _ := mustKeys(t, "m1")
	st := newMemKeys()
	c := New(keys, st, Options{})
	contexts := map[string]converter.SerializationContext{
		"workflow":       converter.WorkflowSerializationContext{WorkflowID: workflows.WorkflowID("welcome", "c/1")},
		"activity":       converter.ActivitySerializationContext{WorkflowID: workflows.WorkflowID("winback", "c/1"), ActivityType: "SendMessage"},
		"local activity": converter.ActivitySerializationContext{WorkflowID: workflows.WorkflowID("winback", "c/1"), IsLocal: true},
	}
	for name, sc := range contexts {
		enc, err := c.WithSerializationContext(sc).Encode([]*commonpb.Payload{payloadOf(t, profile)})
		if err != nil {
			t.Fatal(err)
		}
		if id := string(enc[0].Metadata[MetadataKeyID]); id != "customer:c/1" {
			t.Errorf("%s: key id %q, want customer:c/1", name, id)
		}
		// Any codec of the process decodes it: the metadata says whose.
		if _, err := c.Decode(enc); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(st.rows) != 1 || st.rows["c/1"].MasterKeyID != "m1" {
		t.Fatalf("stored keys %+v, want one for c/1 wrapped by m1", st.rows)
	}
	if len(st.rows["c/1"].Wrapped) != 12+KeySize+16 {
		t.Errorf("wrapped key is %d bytes, want nonce + 32 + tag", len(st.rows["c/1"].Wrapped))
	}
	if st.creates != 1 {
		t.Errorf("%d key creations, want 1 (then cached)", st.creates)
	}

	for name, sc := range map[string]converter.SerializationContext{
		"scan":      converter.WorkflowSerializationContext{WorkflowID: "rapport-scan-run/winback"},
		"reconcile": converter.WorkflowSerializationContext{WorkflowID: "rapport-reconcile-run"},
		"nexus":     converter.NexusSerializationContext{Operation: "x"},
		"none":      nil,
	} {
		codec := converter.PayloadCodec(c)
		if sc != nil {
			codec = c.WithSerializationContext(sc)
		}
		enc, err := codec.Encode([]*commonpb.Payload{payloadOf(t, "x")})
		if err != nil {
			t.Fatal(err)
		}
		if id := string(enc[0].Metadata[MetadataKeyID]); id != "m1" {
			t.Errorf("%s: key id %q, want the master key m1", name, id)
		}
	}
}

func TestErasedCustomerNoLongerDecodes(t *testing.T) {
	keys, _ := mustKeys(t, "m1")
	st := newMemKeys()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	c := New(keys, st, Options{now: func() time.Time { return now }, KeyTTL: time.Minute})
	ada, err := journeyCodec(c, "ada").Encode([]*commonpb.Payload{payloadOf(t, profile)})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := journeyCodec(c, "bob").Encode([]*commonpb.Payload{payloadOf(t, "bob@example.com")})
	if err != nil {
		t.Fatal(err)
	}

	st.delete("ada")
	// Cached, ada's key outlives the deletion in this process for at most
	// KeyTTL...
	if _, err := c.Decode(ada); err != nil {
		t.Fatalf("within the TTL: %v", err)
	}
	now = now.Add(time.Minute)
	_, err = c.Decode(ada)
	var erased *ErasedError
	if !errors.As(err, &erased) || erased.CustomerID != "ada" {
		t.Fatalf("after the TTL: %v, want an ErasedError for ada", err)
	}
	if _, err := c.Decode(bob); err != nil {
		t.Errorf("another customer's payload: %v", err)
	}

	// ... and Forget ends it at once.
	c2 := New(keys, st, Options{})
	if _, err := c2.Decode(bob); err != nil {
		t.Fatal(err)
	}
	st.delete("bob")
	c2.Forget("bob")
	if _, err := c2.Decode(bob); !errors.As(err, &erased) {
		t.Errorf("after Forget: %v, want an ErasedError", err)
	}

	// A customer who comes back gets a new key, which does not open what
	// was erased.
	if _, err := journeyCodec(c2, "bob").Encode([]*commonpb.Payload{payloadOf(t, "x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Decode(bob); err == nil || !strings.Contains(err.Error(), "erased and created anew") {
		t.Errorf("an erased payload under the new key: %v", err)
	}
}

func TestKeyCacheIsBounded(t *testing.T) {
	keys, _ := mustKeys(t, "m1")
	st := newMemKeys()
	c := New(keys, st, Options{MaxCachedKeys: 2})
	enc := map[string][]*commonpb.Payload{}
	for _, id := range []string{"a", "b", "c"} {
		p, err := journeyCodec(c, id).Encode([]*commonpb.Payload{payloadOf(t, id)})
		if err != nil {
			t.Fatal(err)
		}
		enc[id] = p
	}
	if n := c.custs.order.Len(); n != 2 {
		t.Fatalf("%d keys cached, want 2", n)
	}
	reads := st.reads
	if _, err := c.Decode(enc["c"]); err != nil { // most recent: cached
		t.Fatal(err)
	}
	if st.reads != reads {
		t.Error("decoding with a cached key read the store")
	}
	if _, err := c.Decode(enc["a"]); err != nil { // least recent: evicted
		t.Fatal(err)
	}
	if st.reads != reads+1 {
		t.Errorf("%d store reads for an evicted key, want 1", st.reads-reads)
	}
}

func TestCustomerKeyOfAnUnknownMasterKey(t *testing.T) {
	_, oldSpec := mustKeys(t, "old")
	_, newSpec := mustKeys(t, "new")
	st := newMemKeys()
	enc, err := journeyCodec(New(keysOf(t, oldSpec[0]), st, Options{}), "ada").Encode([]*commonpb.Payload{payloadOf(t, profile)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(keysOf(t, newSpec[0]), st, Options{}).Decode(enc)
	if err == nil || !strings.Contains(err.Error(), `data key of customer "ada" is wrapped by master key "old", which is not in RAPPORT_PAYLOAD_KEYS`) {
		t.Errorf("error %v", err)
	}
	// A row moved onto another customer does not unwrap.
	row := st.rows["ada"]
	row.CustomerID = "bob"
	st.rows["bob"] = row
	_, err = journeyCodec(New(keysOf(t, oldSpec[0]), st, Options{}), "bob").Encode([]*commonpb.Payload{payloadOf(t, "x")})
	if err == nil || !strings.Contains(err.Error(), `unwrap data key of customer "bob"`) {
		t.Errorf("a wrapped key copied to another customer: %v", err)
	}
}

func TestRewrapMovesCustomerKeysToTheActiveKey(t *testing.T) {
	_, oldSpec := mustKeys(t, "old")
	_, newSpec := mustKeys(t, "new")
	st := newMemKeys()
	before := New(keysOf(t, oldSpec[0]), st, Options{})
	var written [][]*commonpb.Payload
	for _, id := range []string{"a", "b", "c"} {
		p, err := journeyCodec(before, id).Encode([]*commonpb.Payload{payloadOf(t, id)})
		if err != nil {
			t.Fatal(err)
		}
		written = append(written, p)
	}
	rotated := keysOf(t, newSpec[0], oldSpec[0])
	n, err := Rewrap(context.Background(), rotated, st)
	if err != nil || n != 3 {
		t.Fatalf("Rewrap: %d, %v; want 3", n, err)
	}
	for id, row := range st.rows {
		if row.MasterKeyID != "new" {
			t.Errorf("%s still wrapped by %s", id, row.MasterKeyID)
		}
	}
	// The old master key is no longer needed for customer payloads.
	onlyNew := New(keysOf(t, newSpec[0]), st, Options{})
	for _, p := range written {
		if _, err := onlyNew.Decode(p); err != nil {
			t.Errorf("after Rewrap: %v", err)
		}
	}
	if n, err := Rewrap(context.Background(), rotated, st); err != nil || n != 0 {
		t.Errorf("second Rewrap: %d, %v; want 0", n, err)
	}
}

func TestDataAndFailureConverters(t *testing.T) {
	keys, _ := mustKeys(t, "m1")
	st := newMemKeys()
	c := New(keys, st, Options{})
	sc := converter.WorkflowSerializationContext{WorkflowID: workflows.WorkflowID("welcome", "ada")}
	dc := converter.WithDataConverterSerializationContext(c.DataConverter(), sc)
	p, err := dc.ToPayload(profile)
	if err != nil {
		t.Fatal(err)
	}
	if id := string(p.Metadata[MetadataKeyID]); id != "customer:ada" {
		t.Errorf("data converter in a journey's context: key id %q", id)
	}
	var back rules.Customer
	if err := c.DataConverter().FromPayload(p, &back); err != nil || back.Email != profile.Email {
		t.Errorf("FromPayload: %+v, %v", back, err)
	}

	fc := converter.WithFailureConverterSerializationContext(c.FailureConverter(), sc)
	f := fc.ErrorToFailure(temporal.NewApplicationError("550 mailbox unavailable: ada@example.com", "Permanent"))
	if strings.Contains(f.GetMessage(), "ada@example.com") || strings.Contains(f.GetStackTrace(), "ada") {
		t.Errorf("failure message %q stays in clear", f.GetMessage())
	}
	if id := string(f.GetEncodedAttributes().GetMetadata()[MetadataKeyID]); id != "customer:ada" {
		t.Errorf("failure attributes key id %q, want customer:ada", id)
	}
	if err := c.FailureConverter().FailureToError(f); !strings.Contains(err.Error(), "ada@example.com") {
		t.Errorf("decoded failure %q lost its message", err)
	}

	// With encryption off, failures keep their messages in clear, as
	// before.
	off := New(nil, nil, Options{})
	if f := off.FailureConverter().ErrorToFailure(errors.New("boom")); f.GetMessage() != "boom" {
		t.Errorf("encryption off: failure message %q", f.GetMessage())
	}
}

func TestParseKeys(t *testing.T) {
	good, err := GenerateKeySpec("k1")
	if err != nil {
		t.Fatal(err)
	}
	key := strings.SplitN(good, ":", 2)[1]
	short := "dG9vIHNob3J0" // "too short"
	cases := []struct{ spec, want string }{
		{"k1", "entry 1 of 1: want id:base64key"},
		{":" + key, "entry 1 of 1: want id:base64key"},
		{good + ",k2:", "entry 2 of 2: want id:base64key"},
		{"bad id:" + key, `key id "bad id": use 1-64 letters`},
		{good + "," + good, `entry 2 of 2 (key id "k1"): the id is used twice`},
		{"k1:%%%notbase64", `entry 1 of 1 (key id "k1"): the key is not base64`},
		{"k1:" + short, `the key is 9 bytes, want 32 (AES-256)`},
	}
	for _, tc := range cases {
		_, err := ParseKeys(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), EnvKeys) {
			t.Errorf("ParseKeys(%q): %v, want an error naming %s and containing %q", tc.spec, err, EnvKeys, tc.want)
			continue
		}
		if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), short) {
			t.Errorf("ParseKeys(%q): the error %q contains key material", tc.spec, err)
		}
	}

	// URL-safe and unpadded base64 are accepted; spaces around entries too.
	urlKey := strings.NewReplacer("+", "-", "/", "_").Replace(strings.TrimRight(key, "="))
	k, err := ParseKeys(" a:" + urlKey + " , " + strings.Replace(good, "k1:", "b:", 1))
	if err != nil {
		t.Fatal(err)
	}
	if k.ActiveID() != "a" || strings.Join(k.IDs(), ",") != "a,b" {
		t.Errorf("active %s, ids %v; want a first", k.ActiveID(), k.IDs())
	}

	t.Setenv(EnvKeys, "")
	if k, err := KeysFromEnv(); k != nil || err != nil {
		t.Errorf("unset: %v, %v; want encryption off", k, err)
	}
	t.Setenv(EnvKeys, "k1:"+short)
	if _, err := KeysFromEnv(); err == nil || !strings.HasPrefix(err.Error(), EnvKeys+": ") {
		t.Errorf("KeysFromEnv: %v, want an error starting with the variable's name", err)
	}
}
