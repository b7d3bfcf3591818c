package temporalenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// testPKI is a throw-away CA with a server certificate for temporal.test
// and 127.0.0.1, and a client certificate for CN rapport-worker, as PEM
// files.
type testPKI struct {
	caCert, clientCert, clientKey string // paths
	server                        tls.Certificate
	pool                          *x509.CertPool
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, ca, caDER := issue(t, nil, nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: "rapport test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	})
	srvKey, _, srvDER := issue(t, ca, caKey, &x509.Certificate{
		Subject: pkix.Name{CommonName: "temporal.test"}, DNSNames: []string{"temporal.test"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	cliKey, _, cliDER := issue(t, ca, caKey, &x509.Certificate{
		Subject: pkix.Name{CommonName: "rapport-worker"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p := testPKI{
		caCert:     writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER),
		clientCert: writePEM(t, dir, "client.pem", "CERTIFICATE", cliDER),
		clientKey:  writePEM(t, dir, "client.key", "PRIVATE KEY", marshalKey(t, cliKey)),
		pool:       x509.NewCertPool(),
	}
	p.pool.AddCert(ca)
	p.server = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	return p
}

// issue creates a key and a certificate from tmpl, signed by parent
// (self-signed when parent is nil).
func issue(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, der
}

func marshalKey(t *testing.T, k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// frontend is a TLS gRPC server standing in for Temporal's frontend: it
// requires a client certificate from the test CA and records, for each
// GetSystemInfo call (the SDK's first call on dial), the client
// certificate's CN and the authorization header.
type frontend struct {
	workflowservice.UnimplementedWorkflowServiceServer
	mu    sync.Mutex
	calls []string // "CN|authorization"
}

func (f *frontend) GetSystemInfo(ctx context.Context, _ *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	cn := ""
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			cn = ti.State.PeerCertificates[0].Subject.CommonName
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.calls = append(f.calls, cn+"|"+strings.Join(md.Get("authorization"), ","))
	f.mu.Unlock()
	return &workflowservice.GetSystemInfoResponse{Capabilities: &workflowservice.GetSystemInfoResponse_Capabilities{}}, nil
}

func startFrontend(t *testing.T, pki testPKI) (*frontend, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	})
	srv := grpc.NewServer(grpc.Creds(creds))
	f := &frontend{}
	workflowservice.RegisterWorkflowServiceServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return f, ln.Addr().String()
}

// TestDialsAnMTLSFrontendWithTheLoadedSettings: the options Load builds
// from a config-file profile make the SDK complete an mTLS handshake with
// a server that trusts only the test CA, presenting the configured client
// certificate and sending the API key; with another CA configured the
// client refuses the server.
func TestDialsAnMTLSFrontendWithTheLoadedSettings(t *testing.T) {
	pki := newPKI(t)
	f, addr := startFrontend(t, pki)
	file := writeConfig(t, pki)
	env := fakeEnv{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "secured", "TEMPORAL_API_KEY": "dial-test-key"}
	opts, err := load(Overrides{Address: addr}, env)
	if err != nil {
		t.Fatal(err)
	}
	opts.Logger = quiet{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", Describe(opts), err)
	}
	c.Close()
	f.mu.Lock()
	calls := append([]string(nil), f.calls...)
	f.mu.Unlock()
	if len(calls) == 0 || calls[0] != "rapport-worker|Bearer dial-test-key" {
		t.Errorf("frontend saw %q, want the client certificate rapport-worker and Bearer dial-test-key", calls)
	}

	// The same settings with a CA that did not sign the server: refused.
	other := newPKI(t)
	env["TEMPORAL_TLS_SERVER_CA_CERT_PATH"] = other.caCert
	opts, err = load(Overrides{Address: addr}, env)
	if err != nil {
		t.Fatal(err)
	}
	opts.Logger = quiet{}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := client.DialContext(ctx, opts); err == nil {
		c.Close()
		t.Fatal("dial succeeded with a CA that did not sign the server's certificate")
	}
}

// quiet drops the SDK's logging.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
