package unsubscribe_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/unsubscribe"
)

var (
	secret = []byte("unsubscribe-test-secret")
	now    = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	claims = unsubscribe.Claims{Customer: "c1", Channel: "email", Topic: "marketing", Expires: now.Add(24 * time.Hour)}
)

func TestSignVerifyRoundTrip(t *testing.T) {
	tok := unsubscribe.Sign(secret, claims)
	got, err := unsubscribe.Verify(secret, tok, now)
	if err != nil {
		t.Fatal(err)
	}
	if got != claims {
		t.Errorf("claims = %+v, want %+v", got, claims)
	}
	if strings.ContainsAny(tok, "+/=") {
		t.Errorf("token %q is not URL-safe", tok)
	}
}

// forge re-encodes the payload of tok with changed claims, keeping the
// original signature.
func forge(t *testing.T, tok string, change func(map[string]any)) string {
	t.Helper()
	p, sig, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	raw, _ = json.Marshal(m)
	return base64.RawURLEncoding.EncodeToString(raw) + "." + sig
}

func TestVerifyRejects(t *testing.T) {
	tok := unsubscribe.Sign(secret, claims)
	flipped := []byte(tok)
	flipped[len(flipped)-2] ^= 1
	cases := []struct {
		name  string
		token string
		at    time.Time
		key   []byte
		want  error
	}{
		{"other customer", forge(t, tok, func(m map[string]any) { m["c"] = "c2" }), now, secret, unsubscribe.ErrSignature},
		{"later expiry", forge(t, tok, func(m map[string]any) { m["exp"] = now.Add(1000 * time.Hour).Unix() }), now, secret, unsubscribe.ErrSignature},
		{"all topics", forge(t, tok, func(m map[string]any) { m["t"] = "*" }), now, secret, unsubscribe.ErrSignature},
		{"signature bit flipped", string(flipped), now, secret, unsubscribe.ErrSignature},
		{"forged with another secret", unsubscribe.Sign([]byte("guess"), claims), now, secret, unsubscribe.ErrSignature},
		{"expired", tok, claims.Expires, secret, unsubscribe.ErrExpired},
		{"no dot", strings.ReplaceAll(tok, ".", ""), now, secret, unsubscribe.ErrMalformed},
		{"empty", "", now, secret, unsubscribe.ErrMalformed},
		{"garbage signature", strings.Split(tok, ".")[0] + ".!!!", now, secret, unsubscribe.ErrMalformed},
		{"no secret configured", tok, now, nil, unsubscribe.ErrNoSecret},
		{"signed with empty secret", unsubscribe.Sign(nil, claims), now, nil, unsubscribe.ErrNoSecret},
	}
	for _, c := range cases {
		if _, err := unsubscribe.Verify(c.key, c.token, c.at); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	// A signed payload with a missing field is malformed, not accepted.
	empty := unsubscribe.Sign(secret, unsubscribe.Claims{Customer: "c1", Expires: claims.Expires})
	if _, err := unsubscribe.Verify(secret, empty, now); !errors.Is(err, unsubscribe.ErrMalformed) {
		t.Errorf("claims without channel: err = %v, want malformed", err)
	}
}

func TestURL(t *testing.T) {
	link := unsubscribe.URL("https://rapport.example/", secret, claims)
	u, err := url.Parse(link)
	if err != nil || u.Host != "rapport.example" || u.Path != unsubscribe.Path {
		t.Fatalf("link %q (%v)", link, err)
	}
	got, err := unsubscribe.Verify(secret, u.Query().Get("token"), now)
	if err != nil || got.Customer != "c1" {
		t.Errorf("token in link: %+v %v", got, err)
	}
}

// TestVerifyRefusesEveryOtherLastCharacter changes the last character of
// the signature, then of the whole token, to every other base64url
// character: each must be refused. A lenient decoder accepts three of
// them, which differ only in bits the encoding does not use.
func TestVerifyRefusesEveryOtherLastCharacter(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	tok := unsubscribe.Sign(secret, claims)
	p, sig, _ := strings.Cut(tok, ".")
	for _, variant := range []struct{ name, prefix, last, suffix string }{
		{"signature", p + "." + sig[:len(sig)-1], sig[len(sig)-1:], ""},
		{"payload", p[:len(p)-1], p[len(p)-1:], "." + sig},
	} {
		for _, c := range alphabet {
			if string(c) == variant.last {
				continue
			}
			changed := variant.prefix + string(c) + variant.suffix
			if _, err := unsubscribe.Verify(secret, changed, now); err == nil {
				t.Errorf("%s: last character %q → %q accepted", variant.name, variant.last, c)
			}
		}
	}
}

func TestCheckPublicURL(t *testing.T) {
	tests := []struct {
		base      string
		allowHTTP bool
		ok        bool
	}{
		{"https://rapport.example.com", false, true},
		{"https://rapport.example.com/crm/", false, true},
		{"HTTPS://rapport.example.com", false, true},
		{"http://127.0.0.1:8080", true, true}, // rapport dev
		{"http://rapport.example.com", false, false},
		{"", false, false},
		{"/unsubscribe", false, false},
		{"rapport.example.com", false, false},
		{"https:///path-only", false, false},
		{"ftp://rapport.example.com", true, false},
		{"https://user:pw@rapport.example.com", false, false},
		{"https://rapport.example.com/?x=1", false, false},
		{"https://rapport.example.com/#f", false, false},
		{"https://user:pw@rapport.example.com\x7f", false, false},
	}
	for _, tt := range tests {
		err := unsubscribe.CheckPublicURL(tt.base, tt.allowHTTP)
		if (err == nil) != tt.ok {
			t.Errorf("CheckPublicURL(%q, %v) = %v, want ok=%v", tt.base, tt.allowHTTP, err, tt.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "RAPPORT_PUBLIC_URL") || strings.Contains(err.Error(), ":pw@")) {
			t.Errorf("CheckPublicURL(%q): error %q does not name the variable, or shows the password", tt.base, err)
		}
	}
}
