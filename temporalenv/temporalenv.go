// Package temporalenv loads how Rapport connects to Temporal the way the
// Temporal CLI and SDKs do (go.temporal.io/sdk/contrib/envconfig): a
// profile of the TOML client configuration file, then the TEMPORAL_*
// environment variables over it, then Rapport's command-line flags over
// both. One loader serves `rapport worker`, `serve`, `deploy` and `dev`,
// so a cluster that needs TLS, mTLS or an API key (Temporal Cloud, a
// secured self-hosted cluster) is configured once, in the standard way,
// for all of them.
//
// Read, lowest precedence first:
//
//	the config file            TEMPORAL_CONFIG_FILE, default ~/.config/temporalio/temporal.toml
//	                           ([profile.<name>]: address, namespace, api_key, [profile.<name>.tls])
//	its profile                TEMPORAL_PROFILE, default "default"
//	TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS,
//	TEMPORAL_TLS_CLIENT_CERT_PATH/_DATA, TEMPORAL_TLS_CLIENT_KEY_PATH/_DATA,
//	TEMPORAL_TLS_SERVER_CA_CERT_PATH/_DATA, TEMPORAL_TLS_SERVER_NAME,
//	TEMPORAL_TLS_DISABLE_HOST_VERIFICATION, TEMPORAL_GRPC_META_*
//	flags                      --temporal-address, --temporal-namespace
//
// An API key turns TLS on, as in the SDKs. Nothing here logs; Describe
// summarises the settings without secrets for the callers' logs. The
// payload codec is not configured here but by package payloadcrypt
// (RAPPORT_PAYLOAD_KEYS), whose Codec.ClientOptions every caller applies
// to the options Load returns; a codec endpoint in the profile
// (codec.endpoint, for the CLI) is ignored.
package temporalenv

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
)

// Defaults when neither file, environment nor flag sets a value.
const (
	DefaultAddress   = "localhost:7233"
	DefaultNamespace = "default"
)

// Overrides are command-line flags; empty fields keep the loaded value.
type Overrides struct {
	Address   string
	Namespace string
	// DefaultAddress replaces DefaultAddress when nothing sets an address
	// (`rapport dev` uses 127.0.0.1, where it may start a dev server).
	DefaultAddress string
}

// Load returns client options for the profile in the configuration file
// and the environment, with o over them. The caller adds its Logger and
// MetricsHandler. Errors name the setting at fault and never contain an
// API key or key material.
func Load(o Overrides) (client.Options, error) {
	return load(o, envconfig.EnvLookupOS)
}

func load(o Overrides, env envconfig.EnvLookup) (client.Options, error) {
	if err := checkConfigFile(env); err != nil {
		return client.Options{}, err
	}
	prof, err := envconfig.LoadClientConfigProfile(envconfig.LoadClientConfigProfileOptions{EnvLookup: env})
	if err != nil {
		return client.Options{}, fmt.Errorf("temporal client configuration (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE, TEMPORAL_*): %w", err)
	}
	prof.Address = first(o.Address, prof.Address, o.DefaultAddress, DefaultAddress)
	prof.Namespace = first(o.Namespace, prof.Namespace, DefaultNamespace)
	opts, err := prof.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		return client.Options{}, fmt.Errorf("temporal client configuration (TEMPORAL_TLS_*, [profile.tls]): %w", err)
	}
	return opts, nil
}

// checkConfigFile refuses a TEMPORAL_CONFIG_FILE that does not exist:
// envconfig treats a missing file as an empty one, so a typo in the path
// would silently connect to localhost without TLS.
func checkConfigFile(env envconfig.EnvLookup) error {
	path, _ := env.LookupEnv("TEMPORAL_CONFIG_FILE")
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("TEMPORAL_CONFIG_FILE: %w", err)
	}
	return nil
}

func first(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// Describe summarises opts for logs and errors: address, namespace, and
// whether TLS, a client certificate and an API key are in use (never the
// key or certificate itself).
func Describe(opts client.Options) string {
	var parts []string
	parts = append(parts, opts.HostPort, "namespace "+opts.Namespace)
	switch tls := opts.ConnectionOptions.TLS; {
	case tls == nil || opts.ConnectionOptions.TLSDisabled:
		parts = append(parts, "no TLS")
	case len(tls.Certificates) > 0:
		parts = append(parts, "mTLS")
	default:
		parts = append(parts, "TLS")
	}
	if opts.Credentials != nil {
		parts = append(parts, "API key")
	}
	return strings.Join(parts, ", ")
}

// ErrNoDevServer is returned by callers that would start a local dev
// server for settings that name a secured cluster.
var ErrNoDevServer = errors.New("the Temporal settings use TLS or an API key: not starting a local dev server for them")

// Secured reports whether opts use TLS or credentials: a remote cluster,
// never one `rapport dev` should start.
func Secured(opts client.Options) bool {
	return (opts.ConnectionOptions.TLS != nil && !opts.ConnectionOptions.TLSDisabled) || opts.Credentials != nil
}
