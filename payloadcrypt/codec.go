package payloadcrypt

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"

	"github.com/rapport-crm/rapport/workflows"
)

// Metadata of an encrypted payload. The names follow Temporal's
// encryption sample, so tools that know it recognise Rapport's payloads.
const (
	EncodingEncrypted = "binary/encrypted"
	MetadataKeyID     = "encryption-key-id"
)

// customerKeyPrefix starts the key id of a customer's data key; master key
// ids cannot contain ":".
const customerKeyPrefix = "customer:"

// CustomerKeyID is the key id a payload encrypted with customerID's data
// key carries in its metadata. The customer id is an identifier, not
// personal data the way an address or a name is; it is what the search
// attribute RapportCustomer already shows.
func CustomerKeyID(customerID string) string { return customerKeyPrefix + customerID }

// ErasedError is the error of a payload whose customer's data key was
// deleted (store.DeleteCustomerKey): it can never be decrypted again.
type ErasedError struct{ CustomerID string }

func (e *ErasedError) Error() string {
	return fmt.Sprintf("payload of customer %q cannot be decrypted: the customer's data key was deleted (erased)", e.CustomerID)
}

// Codec is a Temporal PayloadCodec that encrypts every payload with
// AES-256-GCM (random 96-bit nonce; the key id is authenticated data, so
// it cannot be swapped). A payload of a customer's journey (the workflow
// ID is workflows.WorkflowID(playbook, customer)) is encrypted with that
// customer's data key, any other with the active master key. The SDK
// tells the codec which workflow a payload belongs to through its
// serialization context (WithSerializationContext), on the client side
// (ExecuteWorkflow, SignalWorkflow, SignalWithStart, queries) as in the
// worker (workflow input and results, activities and local activities,
// markers, signals, timers' and activities' summaries, continue-as-new).
//
// Decoding needs only the payload's metadata: a payload without the
// binary/encrypted encoding is passed through unchanged, so histories
// written before encryption was turned on still replay. Build one with New
// and hand it to every client with ClientOptions.
type Codec struct {
	keys  *Keyring      // nil: encryption off
	custs *customerKeys // nil: no per-customer keys (customer payloads use the master key)
	root  *Codec        // the unbound codec
	dc    converter.DataConverter
	fc    converter.FailureConverter

	customer string // the customer whose payloads this codec encrypts; "" for the master key
}

// Options tune New; zero values take the defaults.
type Options struct {
	// KeyTTL is how long an unwrapped customer data key stays cached in
	// memory; default DefaultKeyTTL. It bounds how long a process that
	// used a key before DeleteCustomerKey can still decrypt with it.
	KeyTTL time.Duration
	// MaxCachedKeys bounds the cache (least recently used evicted
	// first); default DefaultMaxCachedKeys.
	MaxCachedKeys int
	// Timeout bounds each PostgreSQL call for a customer key; default
	// 10s. The SDK's codec interface carries no context.
	Timeout time.Duration

	now func() time.Time // tests
}

// Defaults of Options.
const (
	DefaultKeyTTL        = time.Minute
	DefaultMaxCachedKeys = 10000
	defaultTimeout       = 10 * time.Second
)

// New returns the codec for keys (nil: encryption off) with customer data
// keys kept in st (nil: customer payloads are encrypted with the master
// key, and cannot be crypto-shredded). Every Temporal client Rapport dials
// takes its converters from here (ClientOptions), so that what one process
// writes, every other reads.
func New(keys *Keyring, st KeyStore, o Options) *Codec {
	if o.KeyTTL <= 0 {
		o.KeyTTL = DefaultKeyTTL
	}
	if o.MaxCachedKeys <= 0 {
		o.MaxCachedKeys = DefaultMaxCachedKeys
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.now == nil {
		o.now = time.Now
	}
	c := &Codec{keys: keys}
	if st != nil {
		c.custs = newCustomerKeys(keys, st, o)
	}
	c.root = c
	c.dc = converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
	c.fc = newFailureConverter(c.dc, keys != nil)
	return c
}

// FromEnv is New with the master keys of EnvKeys and default options: the
// constructor of `rapport worker`, `serve`, `deploy` and `reconcile`.
func FromEnv(st KeyStore) (*Codec, error) {
	keys, err := KeysFromEnv()
	if err != nil {
		return nil, err
	}
	return New(keys, st, Options{}), nil
}

// Enabled says whether the codec encrypts (master keys are configured).
func (c *Codec) Enabled() bool { return c.keys != nil }

// ClientOptions returns opts with the codec's data converter and failure
// converter; a worker built on the client uses them too. With encryption
// on, the failure converter also moves failure messages and stack traces
// into an encrypted payload (they may quote an address a provider
// rejected).
func (c *Codec) ClientOptions(opts client.Options) client.Options {
	opts.DataConverter, opts.FailureConverter = c.root.dc, c.root.fc
	return opts
}

// DataConverter is the SDK's default data converter with this codec.
func (c *Codec) DataConverter() converter.DataConverter { return c.root.dc }

// FailureConverter is the failure converter ClientOptions sets.
func (c *Codec) FailureConverter() converter.FailureConverter { return c.root.fc }

// Forget drops customerID's data key from this process's cache, so that
// after DeleteCustomerKey this process stops decrypting the customer's
// payloads at once rather than after KeyTTL.
func (c *Codec) Forget(customerID string) {
	if c.custs != nil {
		c.custs.forget(customerID)
	}
}

// WithSerializationContext implements
// converter.PayloadCodecWithSerializationContext: payloads of a journey
// workflow (or of its activities) are bound to its customer's key.
func (c *Codec) WithSerializationContext(sc converter.SerializationContext) converter.PayloadCodec {
	var workflowID string
	switch s := sc.(type) {
	case converter.WorkflowSerializationContext:
		workflowID = s.WorkflowID
	case converter.ActivitySerializationContext:
		workflowID = s.WorkflowID
	}
	customer, ok := workflows.CustomerOf(workflowID)
	switch {
	case !ok:
		return c.root
	case customer == c.customer:
		return c
	}
	return &Codec{keys: c.keys, custs: c.custs, root: c.root, dc: c.root.dc, fc: c.root.fc, customer: customer}
}

// Encode implements converter.PayloadCodec: each payload, metadata and
// data, is serialized and encrypted with the key this codec is bound to.
// Payloads already encrypted are left alone. With encryption off it
// changes nothing.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if c.keys == nil {
		return payloads, nil
	}
	keyID, aead, err := c.encryptionKey()
	if err != nil {
		return payloads, err
	}
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if isEncrypted(p) {
			out[i] = p
			continue
		}
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("encrypt payload: %w", err)
		}
		data, err := seal(aead, plain, []byte(keyID))
		if err != nil {
			return payloads, err
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(EncodingEncrypted), MetadataKeyID: []byte(keyID)},
			Data:     data,
		}
	}
	return out, nil
}

// encryptionKey is the key id and cipher this codec encrypts with: the
// bound customer's data key (created on first use), else the active
// master key.
func (c *Codec) encryptionKey() (string, cipher.AEAD, error) {
	if c.customer != "" && c.custs != nil {
		aead, err := c.custs.get(c.customer, true)
		if err != nil {
			return "", nil, err
		}
		return CustomerKeyID(c.customer), aead, nil
	}
	aead, _ := c.keys.aead(c.keys.active)
	return c.keys.active, aead, nil
}

// Decode implements converter.PayloadCodec: encrypted payloads are
// decrypted with the key their metadata names, others passed through.
// A payload of an erased customer is an *ErasedError.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		d, err := c.decodeOne(p)
		if err != nil {
			return payloads, err
		}
		out[i] = d
	}
	return out, nil
}

func (c *Codec) decodeOne(p *commonpb.Payload) (*commonpb.Payload, error) {
	if !isEncrypted(p) {
		return p, nil
	}
	keyID := string(p.GetMetadata()[MetadataKeyID])
	if keyID == "" {
		return nil, fmt.Errorf("decrypt payload: its metadata names no %s", MetadataKeyID)
	}
	aead, err := c.decryptionKey(keyID)
	if err != nil {
		return nil, err
	}
	plain, err := open(aead, p.GetData(), []byte(keyID))
	if err != nil {
		if customer, ok := strings.CutPrefix(keyID, customerKeyPrefix); ok {
			// A key created anew after an erasure opens only the
			// payloads written since.
			return nil, fmt.Errorf("decrypt payload with key %q: %w (tampered, or written under a data key of customer %q that was erased and created anew)", keyID, err, customer)
		}
		return nil, fmt.Errorf("decrypt payload with key %q: %w (tampered, or a different key under the same id)", keyID, err)
	}
	var out commonpb.Payload
	if err := proto.Unmarshal(plain, &out); err != nil {
		return nil, fmt.Errorf("decrypt payload with key %q: %w", keyID, err)
	}
	return &out, nil
}

// decryptionKey finds the key keyID names: a customer's data key (never
// created here), or a master key.
func (c *Codec) decryptionKey(keyID string) (cipher.AEAD, error) {
	if c.keys == nil {
		return nil, fmt.Errorf("decrypt payload: it is encrypted (key %q) but %s is not set", keyID, EnvKeys)
	}
	if customer, ok := strings.CutPrefix(keyID, customerKeyPrefix); ok {
		if c.custs == nil {
			return nil, fmt.Errorf("decrypt payload: it is encrypted with the data key of customer %q, and this process has no access to customer keys", customer)
		}
		return c.custs.get(customer, false)
	}
	aead, ok := c.keys.aead(keyID)
	if !ok {
		return nil, fmt.Errorf("decrypt payload: master key %q is not in %s (it has %s)", keyID, EnvKeys, strings.Join(c.keys.ids, ", "))
	}
	return aead, nil
}

func isEncrypted(p *commonpb.Payload) bool {
	return string(p.GetMetadata()[converter.MetadataEncoding]) == EncodingEncrypted
}

// errOpen is the error of a ciphertext that does not authenticate; it
// says nothing about the data.
var errOpen = errors.New("authentication failed")

// seal encrypts plain with a fresh random nonce: nonce ‖ ciphertext ‖ tag.
func seal(aead cipher.AEAD, plain, aad []byte) ([]byte, error) {
	ns := aead.NonceSize()
	buf := make([]byte, ns, ns+len(plain)+aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return nil, fmt.Errorf("encrypt: nonce: %w", err)
	}
	return aead.Seal(buf, buf, plain, aad), nil
}

// open reverses seal.
func open(aead cipher.AEAD, data, aad []byte) ([]byte, error) {
	ns := aead.NonceSize()
	if len(data) < ns+aead.Overhead() {
		return nil, errOpen
	}
	plain, err := aead.Open(nil, data[:ns], data[ns:], aad)
	if err != nil {
		return nil, errOpen
	}
	return plain, nil
}

// failureConverter is the SDK's default failure converter over the
// codec's data converter, bound to the serialization context like the
// data converter, so a journey's failures are encrypted with its
// customer's key.
type failureConverter struct {
	*temporal.DefaultFailureConverter
	dc     converter.DataConverter
	encode bool
}

func newFailureConverter(dc converter.DataConverter, encode bool) *failureConverter {
	return &failureConverter{
		DefaultFailureConverter: temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc, EncodeCommonAttributes: encode}),
		dc:                      dc, encode: encode,
	}
}

// WithSerializationContext implements
// converter.FailureConverterWithSerializationContext.
func (f *failureConverter) WithSerializationContext(sc converter.SerializationContext) converter.FailureConverter {
	return newFailureConverter(converter.WithDataConverterSerializationContext(f.dc, sc), f.encode)
}

var (
	_ converter.PayloadCodec                             = (*Codec)(nil)
	_ converter.PayloadCodecWithSerializationContext     = (*Codec)(nil)
	_ converter.FailureConverterWithSerializationContext = (*failureConverter)(nil)
)
