package channels

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// TLS modes of the SMTP connection.
const (
	TLSNone     = "none"     // plain SMTP (local relays, tests)
	TLSStartTLS = "starttls" // STARTTLS required
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
)

// SMTPConfig configures the email channel.
type SMTPConfig struct {
	Addr     string // host:port
	User     string // optional; enables SMTP AUTH
	Password string
	From     string // default sender, e.g. "Rapport <hello@example.com>"
	TLS      string // none, starttls (default), tls
	Timeout  time.Duration
	// MessageIDDomain is the right-hand side of generated Message-IDs
	// (RAPPORT_SMTP_MESSAGE_ID_DOMAIN); empty takes the domain of From.
	// RFC 5322 wants a domain there, and spam filters score a bare word.
	MessageIDDomain string
}

// Email delivers multipart text + HTML email over SMTP.
type Email struct {
	cfg  SMTPConfig
	host string
	port int
}

// NewEmail checks cfg and returns the email channel. It does not connect:
// each delivery dials, so a restarted relay never leaves a dead connection.
func NewEmail(cfg SMTPConfig) (*Email, error) {
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("email: RAPPORT_SMTP_ADDR %q: want host:port: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("email: RAPPORT_SMTP_ADDR %q: bad port", cfg.Addr)
	}
	domain, err := messageIDDomain(cfg.MessageIDDomain, cfg.From)
	if err != nil {
		return nil, err
	}
	cfg.MessageIDDomain = domain
	switch cfg.TLS {
	case "":
		cfg.TLS = TLSStartTLS
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return nil, fmt.Errorf("email: RAPPORT_SMTP_TLS %q: want none, starttls or tls", cfg.TLS)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	return &Email{cfg: cfg, host: host, port: port}, nil
}

// MessageID is the Message-ID of the email sent for key, without angle
// brackets. It is the same on every retry, so a receiving system that sees
// a message twice (delivered, but the outbox update was lost) can drop the
// duplicate.
func (e *Email) MessageID(key string) string {
	return keyHash(key) + "@" + e.cfg.MessageIDDomain
}

// Deliver sends m. SMTP 5xx replies and unusable addresses are permanent;
// 4xx replies, timeouts and refused connections are transient.
func (e *Email) Deliver(ctx context.Context, m Message) (string, error) {
	msg, err := e.build(m)
	if err != nil {
		return "", err
	}
	client, err := gomail.NewClient(e.host, e.options()...)
	if err != nil {
		return "", PermanentError("smtp_config", err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return "", classifySMTP(err)
	}
	return e.MessageID(m.Key), nil
}

func (e *Email) options() []gomail.Option {
	opts := []gomail.Option{gomail.WithPort(e.port), gomail.WithTimeout(e.cfg.Timeout)}
	switch e.cfg.TLS {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPortPolicy(gomail.NoTLS))
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPortPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	}
	if e.cfg.User != "" {
		auth := gomail.SMTPAuthPlain
		if e.cfg.TLS == TLSNone {
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth),
			gomail.WithUsername(e.cfg.User), gomail.WithPassword(e.cfg.Password))
	}
	return opts
}

// build assembles the MIME message: multipart/alternative when there is
// HTML, the RFC 8058 one-click unsubscribe headers when there is a link.
func (e *Email) build(m Message) (*gomail.Msg, error) {
	if _, err := mail.ParseAddress(m.To); err != nil {
		return nil, PermanentError("invalid_address", fmt.Errorf("recipient %q: %w", m.To, err))
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	from := m.From
	if from == "" {
		from = e.cfg.From
	}
	if err := msg.From(from); err != nil {
		return nil, PermanentError("invalid_sender", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, PermanentError("invalid_address", err)
	}
	// go-mail folds a long encoded subject with an empty first line;
	// foldSubject never does.
	msg.SetGenHeaderPreformatted(gomail.HeaderSubject, foldSubject(m.Subject))
	msg.SetMessageIDWithValue(e.MessageID(m.Key))
	msg.SetDate()
	if m.Locale != "" {
		msg.SetGenHeader(gomail.HeaderContentLang, m.Locale)
	}
	if m.UnsubscribeURL != "" {
		msg.SetGenHeaderPreformatted("List-Unsubscribe", "<"+m.UnsubscribeURL+">")
		msg.SetGenHeaderPreformatted("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// classifySMTP turns a go-mail error into a classified delivery error.
// The server's reply code decides when there is one; without a code
// (dial failures, timeouts, a dropped connection) the failure is transient.
func classifySMTP(err error) error {
	var se *gomail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		switch {
		case code >= 500:
			return PermanentError("smtp_"+strconv.Itoa(code), err)
		case code >= 400:
			return TransientError("smtp_"+strconv.Itoa(code), err)
		}
	}
	return TransientError("smtp_unavailable", err)
}
