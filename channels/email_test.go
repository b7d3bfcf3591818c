package channels_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/rapport-crm/rapport/channels"
	"github.com/rapport-crm/rapport/channels/smtptest"
)

func newEmail(t *testing.T, addr string) *channels.Email {
	t.Helper()
	e, err := channels.NewEmail(channels.SMTPConfig{Addr: addr, From: "Shop <hello@shop.example>", TLS: channels.TLSNone})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEmailDeliversMultipartWithUnsubscribeHeaders(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	e := newEmail(t, srv.Addr)
	m := channels.Message{
		Key: "en1/welcome/1", Channel: "email", To: "li@example.com", Locale: "zh",
		Subject: "欢迎, 李雷", Text: "您好 李雷，感谢您的注册。", HTML: "<p>您好 &lt;b&gt;李雷&lt;/b&gt;</p>",
		UnsubscribeURL: "https://rapport.example/unsubscribe?token=abc.def",
	}
	id1, err := e.Deliver(context.Background(), m)
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	id2, err := e.Deliver(context.Background(), m) // a retry of the same key
	if err != nil {
		t.Fatalf("deliver again: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("server got %d messages, want 2", len(msgs))
	}
	var ids []string
	for _, raw := range msgs {
		p, err := raw.Decode()
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		h := p.Header
		ids = append(ids, h.Get("Message-Id"))
		if got := h.Get("List-Unsubscribe"); got != "<"+m.UnsubscribeURL+">" {
			t.Errorf("List-Unsubscribe = %q", got)
		}
		if got := h.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
			t.Errorf("List-Unsubscribe-Post = %q", got)
		}
		if got := h.Get("Content-Language"); got != "zh" {
			t.Errorf("Content-Language = %q", got)
		}
		subject, err := new(mimeDecoder).DecodeHeader(h.Get("Subject"))
		if err != nil || subject != m.Subject {
			t.Errorf("Subject = %q (%v), want %q", subject, err, m.Subject)
		}
		if !strings.HasPrefix(h.Get("Content-Type"), "multipart/alternative") {
			t.Errorf("Content-Type = %q, want multipart/alternative", h.Get("Content-Type"))
		}
		if strings.TrimSpace(p.Text) != m.Text || strings.TrimSpace(p.HTML) != m.HTML {
			t.Errorf("parts = %q / %q", p.Text, p.HTML)
		}
		if raw.To[0] != "li@example.com" || raw.From != "hello@shop.example" {
			t.Errorf("envelope %s -> %v", raw.From, raw.To)
		}
	}
	if ids[0] == "" || ids[0] != ids[1] || ids[0] != "<"+e.MessageID(m.Key)+">" || id1 != id2 {
		t.Errorf("Message-IDs %q, provider ids %q %q: want one stable id from the key", ids, id1, id2)
	}
	if strings.Contains(ids[0], "en1") {
		t.Errorf("Message-ID %s leaks the key", ids[0])
	}
}

func TestEmailErrorClasses(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	e := newEmail(t, srv.Addr)
	ctx := context.Background()
	m := channels.Message{Key: "k", To: "gone@example.com", Subject: "s", Text: "t"}

	srv.Reject(func(string) error { return &smtp.SMTPError{Code: 550, Message: "no such user"} })
	if _, err := e.Deliver(ctx, m); !channels.Permanent(err) || channels.Reason(err) != "smtp_550" {
		t.Errorf("550: err = %v, want permanent smtp_550", err)
	}
	srv.Reject(func(string) error { return &smtp.SMTPError{Code: 451, Message: "try later"} })
	if _, err := e.Deliver(ctx, m); err == nil || channels.Permanent(err) {
		t.Errorf("451: err = %v, want transient", err)
	}
	m.To = "not an address"
	if _, err := e.Deliver(ctx, m); !channels.Permanent(err) || channels.Reason(err) != "invalid_address" {
		t.Errorf("bad address: err = %v, want permanent invalid_address", err)
	}

	// Nothing listening: connection refused is transient.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	m.To = "a@example.com"
	if _, err := newEmail(t, dead).Deliver(ctx, m); err == nil || channels.Permanent(err) {
		t.Errorf("connection refused: err = %v, want transient", err)
	}
}

func TestEmailConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for _, cfg := range []channels.SMTPConfig{
		{Addr: "nohostport", From: "a@b.c"},
		{Addr: "h:25", From: "not an address"},
		{Addr: "h:25", From: "a@b.c", TLS: "ssl3"},
	} {
		if _, err := channels.NewEmail(cfg); err == nil || !strings.Contains(err.Error(), "RAPPORT_SMTP_") {
			t.Errorf("%+v: err = %v, want one naming the variable", cfg, err)
		}
	}
}

// TestMessageIDDomain: the right-hand side of a Message-ID is a domain,
// the sender's unless RAPPORT_SMTP_MESSAGE_ID_DOMAIN says otherwise.
func TestMessageIDDomain(t *testing.T) {
	t.Parallel()
	tests := []struct{ from, setting, want, err string }{
		{"Shop <hello@Shop.Example>", "", "@shop.example", ""},
		{"hello@shop.example", "mail.shop.example", "@mail.shop.example", ""},
		{"hello@shop.example", "not a domain", "", "RAPPORT_SMTP_MESSAGE_ID_DOMAIN"},
		{"hello@shop.example", "x>@evil", "", "RAPPORT_SMTP_MESSAGE_ID_DOMAIN"},
		{"hello@[127.0.0.1]", "", "", "set RAPPORT_SMTP_MESSAGE_ID_DOMAIN"},
		{"hello@[127.0.0.1]", "shop.example", "@shop.example", ""},
	}
	for _, tt := range tests {
		e, err := channels.NewEmail(channels.SMTPConfig{Addr: "h:25", From: tt.from, MessageIDDomain: tt.setting})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s / %q: err = %v, want one naming %s", tt.from, tt.setting, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s / %q: %v", tt.from, tt.setting, err)
			continue
		}
		if id := e.MessageID("k"); !strings.HasSuffix(id, tt.want) || strings.Count(id, "@") != 1 {
			t.Errorf("%s / %q: Message-ID %s, want …%s", tt.from, tt.setting, id, tt.want)
		}
	}
}
