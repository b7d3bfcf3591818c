package devenv

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is one message the catcher received, parsed enough to show and to
// assert on in tests.
type Mail struct {
	N        int         `json:"n"` // 1-based arrival number
	From     string      `json:"from"`
	To       []string    `json:"to"`
	Subject  string      `json:"subject"` // RFC 2047 decoded
	Text     string      `json:"text"`    // text/plain part, transfer-decoded
	HTML     string      `json:"html,omitempty"`
	Header   mail.Header `json:"-"`
	Raw      []byte      `json:"-"`
	Received time.Time   `json:"received"`
}

// MailCatcher is an SMTP server that accepts every message and keeps it in
// memory, so the dev environment and the end-to-end tests exercise the real
// email channel (go-mail over SMTP) without delivering anything.
type MailCatcher struct {
	smtp *smtp.Server
	ln   net.Listener

	mu     sync.Mutex
	mails  []Mail
	notify chan struct{} // closed and replaced on every arrival
}

// maxCaught bounds the mails kept, oldest dropped first, so a long dev
// session or a benchmark cannot grow the catcher without limit.
const maxCaught = 10000

// StartMailCatcher listens for SMTP on addr ("127.0.0.1:0" for a free port).
func StartMailCatcher(addr string) (*MailCatcher, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mail catcher: listen on %s: %w", addr, err)
	}
	c := &MailCatcher{ln: ln, notify: make(chan struct{})}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &catcherSession{c: c}, nil
	}))
	s.Domain = "localhost"
	s.MaxMessageBytes = 10 << 20
	s.ReadTimeout = time.Minute
	s.WriteTimeout = time.Minute
	s.AllowInsecureAuth = true
	c.smtp = s
	go func() { _ = s.Serve(ln) }()
	return c, nil
}

// Addr is the host:port the catcher listens on.
func (c *MailCatcher) Addr() string { return c.ln.Addr().String() }

// Close stops the SMTP server.
func (c *MailCatcher) Close() error { return c.smtp.Close() }

// Mails returns a copy of the messages received so far, oldest first.
func (c *MailCatcher) Mails() []Mail {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Mail(nil), c.mails...)
}

// WaitFor blocks until a received mail satisfies match, or ctx ends.
func (c *MailCatcher) WaitFor(ctx context.Context, match func(Mail) bool) (Mail, error) {
	for {
		c.mu.Lock()
		for _, m := range c.mails {
			if match(m) {
				c.mu.Unlock()
				return m, nil
			}
		}
		ch := c.notify
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Mail{}, fmt.Errorf("mail catcher: no matching mail among %d received: %w", len(c.Mails()), ctx.Err())
		}
	}
}

func (c *MailCatcher) add(m Mail) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 1
	if len(c.mails) > 0 {
		n = c.mails[len(c.mails)-1].N + 1
	}
	m.N = n
	c.mails = append(c.mails, m)
	if len(c.mails) > maxCaught {
		c.mails = c.mails[len(c.mails)-maxCaught:]
	}
	close(c.notify)
	c.notify = make(chan struct{})
}

// catcherSession collects one SMTP transaction.
type catcherSession struct {
	c    *MailCatcher
	from string
	to   []string
}

func (s *catcherSession) Reset()        { s.from, s.to = "", nil }
func (s *catcherSession) Logout() error { return nil }

func (s *catcherSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *catcherSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *catcherSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := ParseMail(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, Message: "cannot parse message: " + err.Error()}
	}
	m.From, m.To, m.Received = s.from, append([]string(nil), s.to...), time.Now()
	s.c.add(m)
	return nil
}

// ParseMail parses an RFC 5322 message: decoded subject, and the text and
// HTML bodies of a (possibly nested) multipart message.
func ParseMail(raw []byte) (Mail, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Mail{}, fmt.Errorf("read message: %w", err)
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = msg.Header.Get("Subject")
	}
	m := Mail{Subject: subject, Header: msg.Header, Raw: raw}
	if err := readPart(&m, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body); err != nil {
		return Mail{}, err
	}
	return m, nil
}

// readPart stores the first text/plain and text/html bodies found in a
// part, descending into multipart containers.
func readPart(m *Mail, contentType, encoding string, body io.Reader) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("multipart: %w", err)
			}
			if err := readPart(m, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	data, err := io.ReadAll(decodeTransfer(encoding, body))
	if err != nil {
		return fmt.Errorf("%s body: %w", mediaType, err)
	}
	switch {
	case mediaType == "text/plain" && m.Text == "":
		m.Text = string(data)
	case mediaType == "text/html" && m.HTML == "":
		m.HTML = string(data)
	}
	return nil
}

func decodeTransfer(encoding string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r) // ignores line breaks
	}
	return r
}

// Handler serves the caught mail: / lists it (HTML, or JSON with
// ?format=json or Accept: application/json), /messages/{n} shows one and
// /messages/{n}/raw its source.
func (c *MailCatcher) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.serveList)
	mux.HandleFunc("GET /messages/{n}", c.serveOne)
	mux.HandleFunc("GET /messages/{n}/raw", c.serveRaw)
	return mux
}

func (c *MailCatcher) serveList(w http.ResponseWriter, r *http.Request) {
	mails := c.Mails()
	if wantsJSON(r) {
		writeJSON(w, mails)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = listPage.Execute(w, reverse(mails))
}

func (c *MailCatcher) serveOne(w http.ResponseWriter, r *http.Request) {
	m, ok := c.find(r.PathValue("n"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	if wantsJSON(r) {
		writeJSON(w, m)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = onePage.Execute(w, m)
}

func (c *MailCatcher) serveRaw(w http.ResponseWriter, r *http.Request) {
	m, ok := c.find(r.PathValue("n"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(m.Raw)
}

func (c *MailCatcher) find(s string) (Mail, bool) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return Mail{}, false
	}
	for _, m := range c.Mails() {
		if m.N == n {
			return m, true
		}
	}
	return Mail{}, false
}

func wantsJSON(r *http.Request) bool {
	return r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json")
}

func reverse(ms []Mail) []Mail {
	out := make([]Mail, len(ms))
	for i, m := range ms {
		out[len(ms)-1-i] = m
	}
	return out
}

var listPage = template.Must(template.New("list").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Rapport dev mail ({{len .}})</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .8em;text-align:left}tr:nth-child(even){background:#f4f4f4}</style></head>
<body><h1>Mail caught by rapport dev</h1><p>{{len .}} message(s), newest first. Reload to refresh; <a href="?format=json">JSON</a>.</p>
<table><tr><th>#</th><th>received</th><th>to</th><th>subject</th></tr>
{{range .}}<tr><td>{{.N}}</td><td>{{.Received.Format "15:04:05"}}</td><td>{{range .To}}{{.}} {{end}}</td><td><a href="/messages/{{.N}}">{{.Subject}}</a></td></tr>
{{end}}</table></body></html>`))

var onePage = template.Must(template.New("one").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Subject}}</title>
<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em;white-space:pre-wrap}</style></head>
<body><p><a href="/">← all mail</a> · <a href="/messages/{{.N}}/raw">raw</a></p>
<h1>{{.Subject}}</h1><p>from {{.From}} to {{range .To}}{{.}} {{end}} at {{.Received.Format "15:04:05"}}</p>
<h2>text</h2><pre>{{.Text}}</pre>
{{if .HTML}}<h2>html</h2><iframe sandbox srcdoc="{{.HTML}}" style="width:100%;height:30em;border:1px solid #ccc"></iframe>{{end}}
</body></html>`))

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
