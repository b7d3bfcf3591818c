package temporalenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeEnv is an environment for envconfig.EnvLookup.
type fakeEnv map[string]string

func (e fakeEnv) Environ() []string {
	var out []string
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

func (e fakeEnv) LookupEnv(k string) (string, bool) { v, ok := e[k]; return v, ok }

// writeConfig writes a Temporal client configuration file with three
// profiles: the default (a plain local server), cloud (API key) and
// secured (mTLS with the test CA), and returns its path.
func writeConfig(t *testing.T, pki testPKI) string {
	t.Helper()
	toml := `
[profile.default]
address = "temporal.internal:7233"
namespace = "rapport-prod"

[profile.cloud]
address = "rapport.a1b2c.tmprl.cloud:7233"
namespace = "rapport.a1b2c"
api_key = "profile-api-key-do-not-log"

[profile.secured]
address = "127.0.0.1:7233"
namespace = "rapport"
[profile.secured.tls]
client_cert_path = "` + pki.clientCert + `"
client_key_path = "` + pki.clientKey + `"
server_ca_cert_path = "` + pki.caCert + `"
server_name = "temporal.test"
`
	path := filepath.Join(t.TempDir(), "temporal.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadProfilesFromTheConfigFile(t *testing.T) {
	pki := newPKI(t)
	file := writeConfig(t, pki)
	tests := []struct {
		profile, address, namespace, describe string
	}{
		{"", "temporal.internal:7233", "rapport-prod", "temporal.internal:7233, namespace rapport-prod, no TLS"},
		{"cloud", "rapport.a1b2c.tmprl.cloud:7233", "rapport.a1b2c", "rapport.a1b2c.tmprl.cloud:7233, namespace rapport.a1b2c, TLS, API key"},
		{"secured", "127.0.0.1:7233", "rapport", "127.0.0.1:7233, namespace rapport, mTLS"},
	}
	for _, tt := range tests {
		env := fakeEnv{"TEMPORAL_CONFIG_FILE": file}
		if tt.profile != "" {
			env["TEMPORAL_PROFILE"] = tt.profile
		}
		opts, err := load(Overrides{}, env)
		if err != nil {
			t.Fatalf("profile %q: %v", tt.profile, err)
		}
		if opts.HostPort != tt.address || opts.Namespace != tt.namespace {
			t.Errorf("profile %q: %s / %s, want %s / %s", tt.profile, opts.HostPort, opts.Namespace, tt.address, tt.namespace)
		}
		if got := Describe(opts); got != tt.describe {
			t.Errorf("profile %q: Describe = %q, want %q", tt.profile, got, tt.describe)
		}
	}
	env := fakeEnv{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "secured"}
	opts, err := load(Overrides{}, env)
	if err != nil {
		t.Fatal(err)
	}
	tls := opts.ConnectionOptions.TLS
	if tls == nil || len(tls.Certificates) != 1 || tls.RootCAs == nil || tls.ServerName != "temporal.test" {
		t.Errorf("secured profile TLS = %+v, want the client certificate, the CA and server name temporal.test", tls)
	}
}

func TestEnvironmentAndFlagsOverrideTheFile(t *testing.T) {
	pki := newPKI(t)
	file := writeConfig(t, pki)
	env := fakeEnv{
		"TEMPORAL_CONFIG_FILE": file,
		"TEMPORAL_ADDRESS":     "env.internal:7233",
		"TEMPORAL_NAMESPACE":   "env-ns",
	}
	opts, err := load(Overrides{}, env)
	if err != nil {
		t.Fatal(err)
	}
	if opts.HostPort != "env.internal:7233" || opts.Namespace != "env-ns" {
		t.Errorf("env over file: %s / %s", opts.HostPort, opts.Namespace)
	}
	opts, err = load(Overrides{Address: "flag.internal:7233", Namespace: "flag-ns"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if opts.HostPort != "flag.internal:7233" || opts.Namespace != "flag-ns" {
		t.Errorf("flags over env: %s / %s", opts.HostPort, opts.Namespace)
	}

	// TLS and an API key from the environment alone, over the plain
	// default profile.
	env["TEMPORAL_API_KEY"] = "env-api-key"
	env["TEMPORAL_TLS_CLIENT_CERT_PATH"] = pki.clientCert
	env["TEMPORAL_TLS_CLIENT_KEY_PATH"] = pki.clientKey
	env["TEMPORAL_TLS_SERVER_CA_CERT_PATH"] = pki.caCert
	env["TEMPORAL_TLS_SERVER_NAME"] = "temporal.test"
	opts, err = load(Overrides{}, env)
	if err != nil {
		t.Fatal(err)
	}
	if got := Describe(opts); got != "env.internal:7233, namespace env-ns, mTLS, API key" {
		t.Errorf("Describe = %q", got)
	}
	if !Secured(opts) {
		t.Error("Secured = false for mTLS with an API key")
	}
	// TEMPORAL_TLS=false turns TLS off even with a key configured.
	env = fakeEnv{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_TLS": "false"}
	if opts, err = load(Overrides{}, env); err != nil || Secured(opts) {
		t.Errorf("TEMPORAL_TLS=false: secured=%v err=%v", Secured(opts), err)
	}
}

func TestDefaultsWithoutFileOrEnvironment(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no ~/.config/temporalio/temporal.toml
	t.Setenv("HOME", t.TempDir())
	opts, err := load(Overrides{}, fakeEnv{})
	if err != nil {
		t.Fatal(err)
	}
	if opts.HostPort != DefaultAddress || opts.Namespace != DefaultNamespace || Secured(opts) {
		t.Errorf("defaults: %s", Describe(opts))
	}
	if opts, _ = load(Overrides{DefaultAddress: "127.0.0.1:7233"}, fakeEnv{}); opts.HostPort != "127.0.0.1:7233" {
		t.Errorf("DefaultAddress: %s", Describe(opts))
	}
	if opts, _ = load(Overrides{DefaultAddress: "127.0.0.1:7233"}, fakeEnv{"TEMPORAL_ADDRESS": "set:7233"}); opts.HostPort != "set:7233" {
		t.Errorf("DefaultAddress over a set address: %s", Describe(opts))
	}
}

func TestLoadErrorsNameTheSettingAndHideSecrets(t *testing.T) {
	pki := newPKI(t)
	file := writeConfig(t, pki)
	const key = "profile-api-key-do-not-log"
	tests := []struct {
		name string
		env  fakeEnv
		want string
	}{
		{"missing file", fakeEnv{"TEMPORAL_CONFIG_FILE": filepath.Join(t.TempDir(), "nope.toml")}, "TEMPORAL_CONFIG_FILE"},
		{"unknown profile", fakeEnv{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "staging"}, "staging"},
		{"cert without key", fakeEnv{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "cloud", "TEMPORAL_TLS_CLIENT_CERT_PATH": pki.clientCert}, "TEMPORAL_TLS_"},
		{"bad key data", fakeEnv{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "cloud",
			"TEMPORAL_TLS_CLIENT_CERT_DATA": "-----BEGIN CERTIFICATE-----\nsecret-cert-bytes\n-----END CERTIFICATE-----",
			"TEMPORAL_TLS_CLIENT_KEY_DATA":  "-----BEGIN PRIVATE KEY-----\nsecret-key-bytes\n-----END PRIVATE KEY-----"}, "TEMPORAL_TLS_"},
		{"unreadable CA", fakeEnv{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_TLS_SERVER_CA_CERT_PATH": filepath.Join(t.TempDir(), "ca.pem")}, "TEMPORAL_TLS_"},
	}
	for _, tt := range tests {
		_, err := load(Overrides{}, tt.env)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one naming %s", tt.name, err, tt.want)
			continue
		}
		for _, secret := range []string{key, "secret-key-bytes", "secret-cert-bytes"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error shows a secret: %v", tt.name, err)
			}
		}
	}
}
