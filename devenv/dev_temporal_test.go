package devenv

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/rapport-crm/rapport/temporalenv"
)

// TestDevDoesNotStartADevServerForSecuredSettings: with an API key in
// the Temporal settings and nothing answering, rapport dev reports it
// instead of starting `temporal server start-dev` on the address (which
// names a remote cluster, not this machine).
func TestDevDoesNotStartADevServerForSecuredSettings(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("TEMPORAL_API_KEY", "dev-test-key-do-not-show")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	o := DefaultDevOptions()
	o.TemporalAddress, o.StateDir = closed, t.TempDir()
	d, err := StartDev(context.Background(), o)
	if d != nil {
		defer d.Close()
	}
	if !errors.Is(err, temporalenv.ErrNoDevServer) {
		t.Fatalf("StartDev = %v, want the no-dev-server error", err)
	}
	if strings.Contains(err.Error(), "dev-test-key-do-not-show") {
		t.Errorf("error shows the API key: %v", err)
	}
}
