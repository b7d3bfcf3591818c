package devenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/rapport-crm/rapport/payloadcrypt"
)

func TestDevPayloadKeysAreKeptInTheStateDir(t *testing.T) {
	t.Setenv(payloadcrypt.EnvKeys, "")
	dir := filepath.Join(t.TempDir(), "state")
	first, from, err := DevPayloadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "payload-keys")
	if from != path {
		t.Errorf("keys from %q, want %s", from, path)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, fi.Mode())
	}
	// A restart reads the same key: what the first run encrypted, the
	// second decrypts.
	enc, err := payloadcrypt.New(first, nil, payloadcrypt.Options{}).Encode([]*commonpb.Payload{{Data: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := DevPayloadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := payloadcrypt.New(second, nil, payloadcrypt.Options{}).Decode(enc); err != nil {
		t.Errorf("the second run cannot read the first's payloads: %v", err)
	}

	// RAPPORT_PAYLOAD_KEYS wins over the file.
	spec, _ := payloadcrypt.GenerateKeySpec("ops")
	t.Setenv(payloadcrypt.EnvKeys, spec)
	keys, from, err := DevPayloadKeys(dir)
	if err != nil || keys.ActiveID() != "ops" || from != payloadcrypt.EnvKeys {
		t.Errorf("with the variable set: %v from %s, %v", keys.IDs(), from, err)
	}

	t.Setenv(payloadcrypt.EnvKeys, "")
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := DevPayloadKeys(dir); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a broken key file: %v, want an error naming it", err)
	}
}

func TestDevCodecOnlyOnLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:8080": true, "[::1]:8080": true,
		":8080": false, "0.0.0.0:8080": false, "192.168.1.5:8080": false, "127.0.0.1:0": false,
	} {
		if got := devCodecServed(addr); got != want {
			t.Errorf("devCodecServed(%q) = %v, want %v", addr, got, want)
		}
	}
}
