package payloadcrypt

import (
	"fmt"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
)

// benchSizes are the payload sizes of the recorded journey histories: a
// signal or summary (median 28 B, up to 133), a loaded profile or send
// result (median 240 B, up to 575), the journey input with its pinned plan
// (median 5 KB, up to 17 KB).
var benchSizes = []struct {
	name string
	size int
}{{"signal-128B", 128}, {"profile-512B", 512}, {"input-5KiB", 5 << 10}, {"input-16KiB", 16 << 10}}

// benchPayload is a json/plain payload of about size bytes.
func benchPayload(size int) *commonpb.Payload {
	return &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte("json/plain")},
		Data:     []byte(`"` + strings.Repeat("x", max(size-2, 0)) + `"`),
	}
}

// BenchmarkEncode is the cost of encrypting one payload with a journey's
// customer key (cached, as it is after the journey's first payload).
func BenchmarkEncode(b *testing.B) {
	keys, _ := mustKeys(&testing.T{}, "m1")
	c := journeyCodec(New(keys, newMemKeys(), Options{}), "c-1")
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			in := []*commonpb.Payload{benchPayload(sz.size)}
			if _, err := c.Encode(in); err != nil { // creates and caches the key
				b.Fatal(err)
			}
			b.SetBytes(int64(sz.size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Encode(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode is the cost of decrypting one such payload.
func BenchmarkDecode(b *testing.B) {
	keys, _ := mustKeys(&testing.T{}, "m1")
	root := New(keys, newMemKeys(), Options{})
	c := journeyCodec(root, "c-1")
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			enc, err := c.Encode([]*commonpb.Payload{benchPayload(sz.size)})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(sz.size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := root.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeMasterKey is Encode for a workflow of no customer.
func BenchmarkEncodeMasterKey(b *testing.B) {
	keys, _ := mustKeys(&testing.T{}, "m1")
	c := New(keys, nil, Options{})
	in := []*commonpb.Payload{benchPayload(512)}
	b.SetBytes(512)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Encode(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeNewCustomer is Encode when the customer's key is not
// cached: one store read; here the store is in memory, so it is the cost
// of unwrapping (PostgreSQL adds a round trip, about 0.2 ms on loopback).
func BenchmarkEncodeNewCustomer(b *testing.B) {
	keys, _ := mustKeys(&testing.T{}, "m1")
	root := New(keys, newMemKeys(), Options{MaxCachedKeys: 1})
	in := []*commonpb.Payload{benchPayload(512)}
	for i := range 2 {
		if _, err := journeyCodec(root, fmt.Sprint(i)).Encode(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := journeyCodec(root, fmt.Sprint(i%2)).Encode(in); err != nil { // the other one was evicted
			b.Fatal(err)
		}
	}
}
