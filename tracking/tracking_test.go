package tracking

import (
	"strings"
	"testing"
)

var secret = []byte("tracking-test-secret")

func TestTokenRoundTripAndForgery(t *testing.T) {
	c := Claims{Kind: Click, MessageKey: "e1/mail/1", URL: "https://shop.example/a?x=1&y=2"}
	tok := Token(secret, c)
	got, err := Verify(secret, tok)
	if err != nil || got != c {
		t.Fatalf("verify = %+v, %v", got, err)
	}
	forged := Token([]byte("other"), Claims{Kind: Click, MessageKey: "e1/mail/1", URL: "https://evil.example"})
	for _, bad := range []string{forged, tok[:len(tok)-2] + "AA", "x", "", Token(secret, Claims{Kind: Click, MessageKey: "k", URL: "javascript:alert(1)"})} {
		if _, err := Verify(secret, bad); err == nil {
			t.Errorf("Verify(%q) accepted", bad)
		}
	}
}

func TestLinksAndPixel(t *testing.T) {
	tr := Tracker{Secret: secret, PublicURL: "https://r.example/", Skip: []string{"https://r.example/u?token=abc"}}
	html, text := tr.Links("k1", `<a href="https://shop.example/a?x=1&amp;y=2">Shop</a> <a href='https://r.example/u?token=abc'>unsub</a>`,
		"Shop: https://shop.example/b. Unsubscribe: https://r.example/u?token=abc")
	if strings.Contains(html, "shop.example") || !strings.Contains(html, "https://r.example/t/c/") || !strings.Contains(html, "u?token=abc") {
		t.Fatalf("html = %s", html)
	}
	if !strings.Contains(text, "https://r.example/t/c/") || !strings.HasSuffix(text, "https://r.example/u?token=abc") || strings.Contains(text, "shop.example") {
		t.Fatalf("text = %s", text)
	}
	i := strings.Index(html, "/t/c/") + len("/t/c/")
	tok := html[i : i+strings.IndexByte(html[i:], '"')]
	c, err := Verify(secret, tok)
	if err != nil || c.URL != "https://shop.example/a?x=1&y=2" {
		t.Fatalf("tracked link carries %+v, %v", c, err)
	}
	p := tr.Pixel("k1", "<html><body><p>x</p></body></html>")
	if !strings.Contains(p, `/t/o/`) || !strings.HasSuffix(p, `"></body></html>`) {
		t.Fatalf("pixel = %s", p)
	}
}
