package payloadcrypt

import (
	"container/list"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rapport-crm/rapport/store"
)

// KeyStore keeps the customers' wrapped data keys: *store.Store, over
// the customer_keys table (migration 00013).
type KeyStore interface {
	// CustomerKey is an error wrapping store.ErrNotFound when the
	// customer has no key (none yet, or erased).
	CustomerKey(ctx context.Context, customerID string) (store.CustomerKey, error)
	// CreateCustomerKey returns the customer's key, storing k as it when
	// the customer has none.
	CreateCustomerKey(ctx context.Context, k store.CustomerKey) (store.CustomerKey, error)
}

// customerKeys unwraps customer data keys and keeps them in memory for a
// bounded time (Options.KeyTTL), least recently used evicted beyond
// Options.MaxCachedKeys. Only unwrapped keys are cached: an erased
// customer is looked up again every time.
type customerKeys struct {
	keys    *Keyring
	st      KeyStore
	ttl     time.Duration
	max     int
	timeout time.Duration
	now     func() time.Time

	mu    sync.Mutex
	byID  map[string]*list.Element // of *cachedKey
	order *list.List               // most recently used first
}

type cachedKey struct {
	customer string
	aead     cipher.AEAD
	expires  time.Time
}

func newCustomerKeys(keys *Keyring, st KeyStore, o Options) *customerKeys {
	return &customerKeys{keys: keys, st: st, ttl: o.KeyTTL, max: o.MaxCachedKeys, timeout: o.Timeout, now: o.now,
		byID: map[string]*list.Element{}, order: list.New()}
}

// get returns the customer's data key, from the cache or PostgreSQL. With
// create it makes one when the customer has none (encoding); without, a
// missing key is an *ErasedError (decoding: the payload was encrypted
// with a key that existed, so it has been deleted since).
func (k *customerKeys) get(customer string, create bool) (cipher.AEAD, error) {
	if aead := k.cached(customer); aead != nil {
		return aead, nil
	}
	if k.keys == nil {
		return nil, fmt.Errorf("data key of customer %q: %s is not set, so it cannot be unwrapped", customer, EnvKeys)
	}
	ctx, cancel := context.WithTimeout(context.Background(), k.timeout)
	defer cancel()
	var row store.CustomerKey
	var err error
	if create {
		// One round trip: the customer's key, or this new one.
		row, err = k.create(ctx, customer)
	} else {
		row, err = k.st.CustomerKey(ctx, customer)
		if errors.Is(err, store.ErrNotFound) {
			return nil, &ErasedError{CustomerID: customer}
		}
	}
	if err != nil {
		return nil, err
	}
	aead, err := k.unwrap(row)
	if err != nil {
		return nil, err
	}
	k.put(customer, aead)
	return aead, nil
}

// create returns the customer's stored data key, storing a new random one
// wrapped by the active master key when there is none.
func (k *customerKeys) create(ctx context.Context, customer string) (store.CustomerKey, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return store.CustomerKey{}, fmt.Errorf("generate data key of customer %q: %w", customer, err)
	}
	master, _ := k.keys.aead(k.keys.active)
	wrapped, err := seal(master, raw, wrapAAD(customer))
	if err != nil {
		return store.CustomerKey{}, err
	}
	return k.st.CreateCustomerKey(ctx, store.CustomerKey{CustomerID: customer, Wrapped: wrapped, MasterKeyID: k.keys.active})
}

// unwrap decrypts a stored data key with the master key that wrapped it.
func (k *customerKeys) unwrap(row store.CustomerKey) (cipher.AEAD, error) {
	raw, err := unwrapKey(k.keys, row)
	if err != nil {
		return nil, err
	}
	return newAEAD(raw)
}

// unwrapKey is the data key in row, unwrapped with the master key named.
func unwrapKey(keys *Keyring, row store.CustomerKey) ([]byte, error) {
	master, ok := keys.aead(row.MasterKeyID)
	if !ok {
		return nil, fmt.Errorf("data key of customer %q is wrapped by master key %q, which is not in %s (it has %v)",
			row.CustomerID, row.MasterKeyID, EnvKeys, keys.ids)
	}
	raw, err := open(master, row.Wrapped, wrapAAD(row.CustomerID))
	if err != nil {
		return nil, fmt.Errorf("unwrap data key of customer %q with master key %q: %w", row.CustomerID, row.MasterKeyID, err)
	}
	if len(raw) != KeySize {
		return nil, fmt.Errorf("data key of customer %q: %d bytes, want %d", row.CustomerID, len(raw), KeySize)
	}
	return raw, nil
}

// wrapAAD binds a wrapped key to its customer: a row copied onto another
// customer does not unwrap.
func wrapAAD(customer string) []byte { return []byte("rapport customer data key\x00" + customer) }

func (k *customerKeys) cached(customer string) cipher.AEAD {
	k.mu.Lock()
	defer k.mu.Unlock()
	el, ok := k.byID[customer]
	if !ok {
		return nil
	}
	c := el.Value.(*cachedKey)
	if !k.now().Before(c.expires) {
		k.order.Remove(el)
		delete(k.byID, customer)
		return nil
	}
	k.order.MoveToFront(el)
	return c.aead
}

func (k *customerKeys) put(customer string, aead cipher.AEAD) {
	k.mu.Lock()
	defer k.mu.Unlock()
	expires := k.now().Add(k.ttl)
	if el, ok := k.byID[customer]; ok {
		c := el.Value.(*cachedKey)
		c.aead, c.expires = aead, expires
		k.order.MoveToFront(el)
		return
	}
	k.byID[customer] = k.order.PushFront(&cachedKey{customer: customer, aead: aead, expires: expires})
	for k.order.Len() > k.max {
		last := k.order.Back()
		k.order.Remove(last)
		delete(k.byID, last.Value.(*cachedKey).customer)
	}
}

func (k *customerKeys) forget(customer string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if el, ok := k.byID[customer]; ok {
		k.order.Remove(el)
		delete(k.byID, customer)
	}
}

// Rewrapper is what Rewrap needs: *store.Store.
type Rewrapper interface {
	CustomerKeysWrappedBy(ctx context.Context, masterKeyID, after string, limit int) ([]store.CustomerKey, error)
	RewrapCustomerKey(ctx context.Context, customerID, fromMasterKeyID string, wrapped []byte, toMasterKeyID string) (bool, error)
}

// Rewrap re-wraps under the active master key every customer data key
// wrapped by an older key of keys, and returns how many it re-wrapped.
// The data keys themselves do not change, so no payload needs re-encrypting;
// once it has run, a retired master key is still needed only for the
// payloads encrypted with it directly (workflows of no customer: scans,
// reconcile), until the namespace's retention has passed.
func Rewrap(ctx context.Context, keys *Keyring, st Rewrapper) (int, error) {
	if keys == nil {
		return 0, fmt.Errorf("re-wrap customer keys: %s is not set", EnvKeys)
	}
	active, _ := keys.aead(keys.active)
	n := 0
	for _, old := range keys.ids[1:] {
		after := ""
		for {
			page, err := st.CustomerKeysWrappedBy(ctx, old, after, 500)
			if err != nil {
				return n, err
			}
			if len(page) == 0 {
				break
			}
			for _, row := range page {
				raw, err := unwrapKey(keys, row)
				if err != nil {
					return n, err
				}
				wrapped, err := seal(active, raw, wrapAAD(row.CustomerID))
				if err != nil {
					return n, err
				}
				changed, err := st.RewrapCustomerKey(ctx, row.CustomerID, old, wrapped, keys.active)
				if err != nil {
					return n, err
				}
				if changed {
					n++
				}
			}
			after = page[len(page)-1].CustomerID
		}
	}
	return n, nil
}
