package payloadcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// EnvKeys is the environment variable that holds the master keys:
// comma-separated id:base64key entries, the first one active (it encrypts),
// all of them able to decrypt. Each key is 32 random bytes (AES-256) in
// standard or URL-safe base64, padded or not:
//
//	RAPPORT_PAYLOAD_KEYS="2026-11:q83v...Q=,2026-05:Mx0b...c="
const EnvKeys = "RAPPORT_PAYLOAD_KEYS"

// KeySize is the size of master and customer data keys: AES-256.
const KeySize = 32

// keyIDRe is what a master key id may be: short, printable, no ":" or ","
// (the separators of EnvKeys) and never the "customer:" prefix of data
// key ids.
var keyIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Keyring is the set of master keys: the active one encrypts new payloads
// and wraps new customer data keys, every one decrypts. Keys never leave
// it: nothing here prints, logs or returns key material.
type Keyring struct {
	active string
	ids    []string // in EnvKeys order, active first
	aeads  map[string]cipher.AEAD
}

// ActiveID is the id of the key that encrypts.
func (k *Keyring) ActiveID() string { return k.active }

// IDs are the ids of all keys, the active one first.
func (k *Keyring) IDs() []string { return slices.Clone(k.ids) }

func (k *Keyring) aead(id string) (cipher.AEAD, bool) {
	a, ok := k.aeads[id]
	return a, ok
}

// KeysFromEnv reads the master keys from EnvKeys. Unset or empty, it
// returns nil: payload encryption is off. A malformed value is an error
// naming the variable and the entry, never containing key material.
func KeysFromEnv() (*Keyring, error) {
	spec := strings.TrimSpace(os.Getenv(EnvKeys))
	if spec == "" {
		return nil, nil
	}
	return ParseKeys(spec)
}

// ParseKeys parses a key specification in the format of EnvKeys.
func ParseKeys(spec string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	entries := strings.Split(spec, ",")
	for i, e := range entries {
		e = strings.TrimSpace(e)
		where := fmt.Sprintf("%s: entry %d of %d", EnvKeys, i+1, len(entries))
		id, b64, ok := strings.Cut(e, ":")
		if !ok || id == "" || b64 == "" {
			return nil, fmt.Errorf("%s: want id:base64key (e.g. 2026-11:<32 random bytes in base64>)", where)
		}
		if !keyIDRe.MatchString(id) {
			return nil, fmt.Errorf("%s: key id %q: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", where, id)
		}
		where = fmt.Sprintf("%s (key id %q)", where, id)
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("%s: the id is used twice", where)
		}
		raw, err := decodeBase64(b64)
		if err != nil {
			return nil, fmt.Errorf("%s: the key is not base64", where)
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("%s: the key is %d bytes, want %d (AES-256); generate one with: openssl rand -base64 32", where, len(raw), KeySize)
		}
		a, err := newAEAD(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		k.aeads[id] = a
		k.ids = append(k.ids, id)
	}
	k.active = k.ids[0]
	return k, nil
}

// decodeBase64 accepts standard and URL-safe base64, padded or not. Its
// error says nothing about the input (which is key material).
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return nil, errors.New("not base64")
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("AES key: %w", err)
	}
	return cipher.NewGCM(block)
}

// GenerateKeySpec returns a new EnvKeys value with one random key named
// id, for `rapport dev` and tests. Keep it secret: it is key material.
func GenerateKeySpec(id string) (string, error) {
	if !keyIDRe.MatchString(id) {
		return "", fmt.Errorf("key id %q: use 1-64 letters, digits, '.', '_' or '-'", id)
	}
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(raw), nil
}
