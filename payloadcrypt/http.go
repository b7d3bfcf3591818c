package payloadcrypt

import (
	"errors"
	"net/http"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// Handler serves Temporal's codec server protocol, which the Web UI and
// the CLI (--codec-endpoint) speak: POST <prefix>/encode and
// <prefix>/decode with a JSON body {"payloads":[...]} (the X-Namespace
// header is accepted and not needed: keys do not depend on the
// namespace). It authenticates nobody and sets no CORS headers: mount it
// behind the API's authentication (api.Options.Codec).
//
// Decoding answers a payload of an erased customer unchanged, still
// encrypted (binary/encrypted, key id customer:<id>), instead of failing
// the whole call: the UI then shows the other payloads decoded and that
// one as the opaque binary it is, and the CLI prints it encoded. Any
// other failure (unknown master key, tampered payload) is a 400 naming
// the key id.
func (c *Codec) Handler() http.Handler {
	return converter.NewPayloadCodecHTTPHandler(serverCodec{c.root})
}

// serverCodec is the codec as the codec server runs it: payloads sent to
// /encode carry no workflow, so they take the master key.
type serverCodec struct{ c *Codec }

func (s serverCodec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return s.c.Encode(payloads)
}

func (s serverCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		d, err := s.c.decodeOne(p)
		var erased *ErasedError
		switch {
		case errors.As(err, &erased):
			out[i] = p
		case err != nil:
			return nil, err
		default:
			out[i] = d
		}
	}
	return out, nil
}
