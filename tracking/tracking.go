// Package tracking is Rapport's first-party click and open tracking for
// email sent over plain SMTP, where no provider reports engagement.
//
// A tracked link points at `rapport serve`: GET /t/c/<token> records the
// click and redirects to the original URL; an open pixel is GET
// /t/o/<token>.gif. The token is the message key and the target URL,
// signed with HMAC-SHA256 under RAPPORT_TRACKING_SECRET, so the server
// only ever redirects to a URL it signed itself (no open redirect) and
// a forged token records nothing.
package tracking

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// Kinds of token.
const (
	Click = "c"
	Open  = "o"
)

// Paths of the endpoints, under the public URL.
const (
	ClickPath = "/t/c/"
	OpenPath  = "/t/o/"
)

// macSize is the signature's length in bytes: 128 bits of HMAC-SHA256,
// far beyond guessing, keeps links short.
const macSize = 16

// Claims is what a token carries.
type Claims struct {
	Kind       string // Click or Open
	MessageKey string
	URL        string // Click: the target
}

// ErrInvalid is a malformed or forged token.
var ErrInvalid = errors.New("invalid tracking token")

// Token signs c.
func Token(secret []byte, c Claims) string {
	payload := c.Kind + "\n" + c.MessageKey + "\n" + c.URL
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(sign(secret, payload))
}

func sign(secret []byte, payload string) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("rapport-tracking-v1\n" + payload))
	return mac.Sum(nil)[:macSize]
}

// Verify checks a token and returns its claims.
func Verify(secret []byte, token string) (Claims, error) {
	p, s, ok := strings.Cut(token, ".")
	if !ok || len(secret) == 0 {
		return Claims{}, ErrInvalid
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(s)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, sign(secret, string(payload))) {
		return Claims{}, ErrInvalid
	}
	parts := strings.SplitN(string(payload), "\n", 3)
	if len(parts) != 3 || parts[1] == "" {
		return Claims{}, ErrInvalid
	}
	c := Claims{Kind: parts[0], MessageKey: parts[1], URL: parts[2]}
	switch {
	case c.Kind == Open && c.URL == "":
		return c, nil
	case c.Kind == Click && httpURL(c.URL):
		return c, nil
	}
	return Claims{}, ErrInvalid
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// Tracker rewrites a rendered message for tracking.
type Tracker struct {
	Secret    []byte
	PublicURL string // where `rapport serve` answers, e.g. https://rapport.example.com
	// Skip are URLs never rewritten: the unsubscribe link must work
	// without the tracker, and mail clients act on it directly.
	Skip []string
}

// hrefRe finds the http(s) targets of href attributes in HTML.
var hrefRe = regexp.MustCompile(`(?i)(href\s*=\s*)("https?://[^"]*"|'https?://[^']*')`)

// textURLRe finds bare http(s) URLs in plain text.
var textURLRe = regexp.MustCompile(`https?://[^\s<>"']+`)

// ClickURL is the tracked link to target for the message.
func (t Tracker) ClickURL(key, target string) string {
	return strings.TrimRight(t.PublicURL, "/") + ClickPath + Token(t.Secret, Claims{Kind: Click, MessageKey: key, URL: target})
}

// OpenURL is the open pixel's URL for the message.
func (t Tracker) OpenURL(key string) string {
	return strings.TrimRight(t.PublicURL, "/") + OpenPath + Token(t.Secret, Claims{Kind: Open, MessageKey: key}) + ".gif"
}

// Links rewrites every http(s) link of the HTML (href attributes) and of
// the text part to its tracked URL, except those in Skip.
func (t Tracker) Links(key, html, text string) (string, string) {
	html = hrefRe.ReplaceAllStringFunc(html, func(m string) string {
		parts := hrefRe.FindStringSubmatch(m)
		quoted := parts[2]
		q, raw := quoted[:1], quoted[1:len(quoted)-1]
		target := htmlUnescape(raw)
		if t.skip(target) {
			return m
		}
		return parts[1] + q + htmlEscape(t.ClickURL(key, target)) + q
	})
	text = textURLRe.ReplaceAllStringFunc(text, func(target string) string {
		trimmed := strings.TrimRight(target, ".,;:!?)")
		if t.skip(trimmed) {
			return target
		}
		return t.ClickURL(key, trimmed) + target[len(trimmed):]
	})
	return html, text
}

func (t Tracker) skip(target string) bool {
	for _, s := range t.Skip {
		if s != "" && target == s {
			return true
		}
	}
	return false
}

// Pixel adds the open pixel to the HTML, before </body> when there is
// one: a 1×1 image, invisible, with an empty alt so screen readers skip it.
func (t Tracker) Pixel(key, html string) string {
	img := `<img src="` + htmlEscape(t.OpenURL(key)) + `" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px">`
	if i := strings.LastIndex(strings.ToLower(html), "</body>"); i >= 0 {
		return html[:i] + img + html[i:]
	}
	return html + img
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", `"`, "&quot;", "'", "&#39;", "<", "&lt;", ">", "&gt;")
var htmlUnescaper = strings.NewReplacer("&amp;", "&", "&quot;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">")

func htmlEscape(s string) string   { return htmlEscaper.Replace(s) }
func htmlUnescape(s string) string { return htmlUnescaper.Replace(s) }
