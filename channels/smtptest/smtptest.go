// Package smtptest runs a real SMTP server in-process for tests: it
// records every message it accepts, and can be told to refuse recipients
// with a chosen reply code to exercise error handling.
package smtptest

import (
	"bytes"
	"encoding/base64"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one accepted message.
type Message struct {
	From string
	To   []string
	Raw  []byte
}

// Parse parses the message headers and body.
func (m Message) Parse() (*mail.Message, error) {
	return mail.ReadMessage(bytes.NewReader(m.Raw))
}

// Server is a running test SMTP server.
type Server struct {
	Addr string // host:port to dial

	mu       sync.Mutex
	messages []Message
	reject   func(rcpt string) error
}

// Start listens on a free local port and serves until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s := &Server{Addr: ln.Addr().String()}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{srv: s}, nil
	}))
	srv.Domain = "smtptest.local"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Reject makes the server answer RCPT TO with the error fn returns (nil
// accepts), e.g. &smtp.SMTPError{Code: 550, Message: "no such user"}.
func (s *Server) Reject(fn func(rcpt string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = fn
}

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

type session struct {
	srv  *Server
	from string
	to   []string
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.srv.mu.Lock()
	reject := ss.srv.reject
	ss.srv.mu.Unlock()
	if reject != nil {
		if err := reject(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.srv.mu.Lock()
	defer ss.srv.mu.Unlock()
	ss.srv.messages = append(ss.srv.messages, Message{From: ss.from, To: append([]string(nil), ss.to...), Raw: raw})
	return nil
}

// Parsed is a message split into headers and its text and HTML bodies,
// transfer-decoded.
type Parsed struct {
	Header mail.Header
	Text   string
	HTML   string
}

// Decode parses m, walking multipart bodies and undoing quoted-printable
// and base64 transfer encodings.
func (m Message) Decode() (Parsed, error) {
	msg, err := m.Parse()
	if err != nil {
		return Parsed{}, err
	}
	p := Parsed{Header: msg.Header}
	err = walk(textproto.MIMEHeader(msg.Header), msg.Body, &p)
	return p, err
}

func walk(h textproto.MIMEHeader, body io.Reader, p *Parsed) error {
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mediaType = "text/plain"
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := walk(part.Header, part, p); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	switch mediaType {
	case "text/plain":
		p.Text = string(b)
	case "text/html":
		p.HTML = string(b)
	}
	return nil
}
