package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/devenv"
)

// pgServer is a private PostgreSQL server (initdb, pg_ctl) that a test may
// stop and start at will without touching the machine's shared server,
// which other packages' tests use at the same time. Its data directory,
// Unix socket and log live in one temporary directory owned by the
// server's user: PostgreSQL refuses to run as root, so under root (CI) the
// server programs run as the postgres OS user.
type pgServer struct {
	t      *testing.T
	bindir string              // initdb, pg_ctl, postgres
	dir    string              // data/, the socket, server.log
	cred   *syscall.Credential // the server's user when we are root
	port   int
}

// requirePostgresServer returns the directory of the PostgreSQL server
// programs (RAPPORT_PG_BINDIR, else the newest
// /usr/lib/postgresql/<version>/bin, else pg_ctl's on PATH). When they, or
// under root the postgres user, are missing the test is skipped, or fails
// under CI=true, which must run everything.
func requirePostgresServer(t *testing.T) string {
	t.Helper()
	dir, err := postgresBinDir()
	if err == nil {
		_, err = serverCredential()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true needs the PostgreSQL server programs: %v", err)
		}
		t.Skipf("needs the PostgreSQL server programs: %v", err)
	}
	return dir
}

func postgresBinDir() (string, error) {
	has := func(dir string) bool {
		for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, p)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv("RAPPORT_PG_BINDIR"); dir != "" {
		if !has(dir) {
			return "", fmt.Errorf("RAPPORT_PG_BINDIR=%s lacks initdb, pg_ctl or postgres", dir)
		}
		return dir, nil
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(versions, func(a, b string) int { // newest first
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, dir := range versions {
		if has(dir) {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
	}
	return "", fmt.Errorf("no initdb, pg_ctl and postgres in /usr/lib/postgresql/*/bin or on PATH (set RAPPORT_PG_BINDIR)")
}

// serverCredential is the postgres user's when we run as root, else nil
// (the server runs as us).
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, the server needs the postgres user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("postgres user: uid %q gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// newPGServer initialises a cluster (trust authentication, listening on a
// free port on 127.0.0.1 only), starts it and creates the database
// "rapport". The server is stopped and its directory removed in cleanup.
func newPGServer(t *testing.T, bindir string) *pgServer {
	t.Helper()
	cred, err := serverCredential()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "rapport-pg-")
	if err != nil {
		t.Fatal(err)
	}
	s := &pgServer{t: t, bindir: bindir, dir: dir, cred: cred}
	t.Cleanup(func() {
		if _, err := os.Stat(s.pidFile()); err == nil {
			if out, err := s.pgctl("stop", "-m", "immediate"); err != nil {
				t.Errorf("stop the private PostgreSQL: %v\n%s", err, out)
			}
		}
		if t.Failed() {
			t.Logf("private PostgreSQL log (%s):\n%s", s.logPath(), tail(s.log(), 3000))
		}
		_ = os.RemoveAll(dir)
	})
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := s.run("initdb", "-D", s.dataDir(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("\n# faults: private server\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n", dir)
	f, err := os.OpenFile(filepath.Join(s.dataDir(), "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	// A port taken between FreePort and the server's bind fails the start:
	// try again on another.
	for attempt := 1; ; attempt++ {
		if s.port, err = devenv.FreePort(); err != nil {
			t.Fatal(err)
		}
		if err = s.startOnce(); err == nil {
			break
		}
		if attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("private PostgreSQL start, attempt %d: %v", attempt, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE rapport"); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *pgServer) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *pgServer) logPath() string { return filepath.Join(s.dir, "server.log") }
func (s *pgServer) pidFile() string { return filepath.Join(s.dataDir(), "postmaster.pid") }

// URL is the database "rapport" over TCP.
func (s *pgServer) URL() string { return s.url("rapport") }

func (s *pgServer) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

func (s *pgServer) log() string {
	b, _ := os.ReadFile(s.logPath())
	return string(b)
}

// run runs a server program as the server's user.
func (s *pgServer) run(prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bindir, prog), args...)
	cmd.Dir = s.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd.CombinedOutput()
}

func (s *pgServer) pgctl(args ...string) ([]byte, error) {
	return s.run("pg_ctl", append([]string{"-D", s.dataDir(), "-w", "-t", "60"}, args...)...)
}

// startOnce starts the server on s.port and waits until it accepts
// connections.
func (s *pgServer) startOnce() error {
	out, err := s.pgctl("start", "-l", s.logPath(), "-o", "-p "+strconv.Itoa(s.port))
	if err != nil {
		return fmt.Errorf("pg_ctl start on port %d: %v\n%s\nserver log:\n%s", s.port, err, out, tail(s.log(), 1500))
	}
	return nil
}

// start starts the stopped server again on its port, retrying for up to
// a minute if something took the port meanwhile.
func (s *pgServer) start() {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := s.startOnce()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "in use") {
			s.t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
}

// stop shuts the server down with pg_ctl's mode ("fast": roll back open
// transactions and close every connection) and waits until it is gone.
func (s *pgServer) stop(mode string) {
	s.t.Helper()
	if out, err := s.pgctl("stop", "-m", mode); err != nil {
		s.t.Fatalf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
}
