package faults

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// mode is how every endpoint treats one customer's messages.
type mode string

const (
	modeOK   mode = "ok"   // delivered at once
	modeDrop mode = "drop" // first attempt: connection dropped (SMTP) or timed out (HTTP)
	modeTemp mode = "temp" // first two attempts: 451 (SMTP) or 500 (HTTP)
	modeSlow mode = "slow" // slow but within the channel's timeout
	modePerm mode = "perm" // always refused: 550 (SMTP), 400 (SMS), 410 (webhook)
)

// attempts counts delivery attempts and accepted deliveries per
// recipient, shared by the three fake providers.
type attempts struct {
	mu       sync.Mutex
	tries    map[string]int
	accepted map[string]int
}

func newAttempts() *attempts {
	return &attempts{tries: map[string]int{}, accepted: map[string]int{}}
}

// try records an attempt for key and returns its 1-based number.
func (a *attempts) try(key string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tries[key]++
	return a.tries[key]
}

func (a *attempts) accept(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.accepted[key]++
}

func (a *attempts) count(key string) (tries, accepted int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tries[key], a.accepted[key]
}

// faultySMTP is an SMTP server with AUTH PLAIN that misbehaves per
// recipient according to modes.
type faultySMTP struct {
	addr     string
	user     string
	password string
	modes    func(rcpt string) mode
	att      *attempts
}

func startFaultySMTP(t *testing.T, user, password string, modes func(string) mode, att *attempts) *faultySMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &faultySMTP{addr: ln.Addr().String(), user: user, password: password, modes: modes, att: att}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &faultySession{srv: f, conn: c}, nil
	}))
	srv.Domain = "faults.local"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

type faultySession struct {
	srv    *faultySMTP
	conn   *smtp.Conn
	authed bool
	rcpt   string
	try    int
}

func (s *faultySession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *faultySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.srv.user || pass != s.srv.password {
			return errors.New("bad credentials")
		}
		s.authed = true
		return nil
	}), nil
}

func (s *faultySession) Reset()        { s.rcpt = "" }
func (s *faultySession) Logout() error { return nil }

func (s *faultySession) Mail(string, *smtp.MailOptions) error {
	if !s.authed {
		return &smtp.SMTPError{Code: 530, Message: "authentication required"}
	}
	return nil
}

func (s *faultySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpt = to
	s.try = s.srv.att.try("email:" + to)
	switch m := s.srv.modes(to); {
	case m == modeDrop && s.try == 1:
		_ = s.conn.Conn().Close()
		return errors.New("dropped")
	case m == modeTemp && s.try <= 2:
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	case m == modePerm:
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	return nil
}

func (s *faultySession) Data(r io.Reader) error {
	if s.srv.modes(s.rcpt) == modeSlow {
		time.Sleep(300 * time.Millisecond)
	}
	if _, err := io.ReadAll(r); err != nil {
		return err
	}
	s.srv.att.accept("email:" + s.rcpt)
	return nil
}

// faultyHTTP is an SMS or webhook provider that misbehaves per recipient.
// recipient extracts the recipient from a request; perm is the status of a
// permanent refusal; a "drop" attempt sleeps past the client's timeout.
func faultyHTTP(t *testing.T, channel string, perm int, timeout time.Duration, modes func(string) mode, att *attempts, recipient func(*http.Request) string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		to := recipient(r)
		key := channel + ":" + to
		try := att.try(key)
		switch m := modes(to); {
		case m == modeDrop && try == 1:
			time.Sleep(timeout + 500*time.Millisecond)
			return // the client has given up
		case m == modeTemp && try <= 2:
			http.Error(w, "upstream hiccup", http.StatusInternalServerError)
			return
		case m == modePerm:
			http.Error(w, "refused", perm)
			return
		case m == modeSlow:
			time.Sleep(timeout / 3)
		}
		att.accept(key)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"sid":"`+channel+`-`+strings.ReplaceAll(to, "+", "")+`"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}
