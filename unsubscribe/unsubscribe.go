// Package unsubscribe signs and verifies the links that let a customer
// withdraw consent with one click (RFC 8058 List-Unsubscribe-Post, and the
// link in the message footer).
//
// A token is base64url(payload) "." base64url(HMAC-SHA256(secret, payload)),
// where payload is a small JSON object naming the customer, channel and
// topic. The token carries everything needed to apply it, so the link works
// without a session or a database lookup, and it cannot be altered (another
// customer, another topic, a later expiry) without the secret.
package unsubscribe

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// AllTopics is the topic of a withdrawal from every topic of a channel
// ("unsubscribe from all email").
const AllTopics = "*"

// Claims is what a token grants: withdrawing the consent of Customer for
// Topic on Channel, until Expires.
type Claims struct {
	Customer string
	Channel  string
	Topic    string
	Expires  time.Time
}

// payload is the wire form of Claims; short keys keep links short.
type payload struct {
	Customer string `json:"c"`
	Channel  string `json:"ch"`
	Topic    string `json:"t"`
	Expires  int64  `json:"exp"`
}

// Errors returned by Verify. They say why a token was refused without
// echoing the token itself.
var (
	ErrMalformed = errors.New("unsubscribe token is malformed")
	ErrSignature = errors.New("unsubscribe token signature does not match")
	ErrExpired   = errors.New("unsubscribe token has expired")
	ErrNoSecret  = errors.New("unsubscribe secret is not configured")
)

// b64 is base64url without padding, decoded strictly: the last character
// of an encoding carries unused low bits, and a lenient decoder accepts
// several last characters for the same bytes. Strict decoding leaves each
// token exactly one spelling, so a changed character is always refused
// (issue #13: the signature's last character was malleable).
var b64 = base64.RawURLEncoding.Strict()

// Sign returns the token for c. Expires is kept to the second. A token
// signed with an empty secret is refused by Verify, so a missing secret
// can never produce links that anyone could forge.
func Sign(secret []byte, c Claims) string {
	body, _ := json.Marshal(payload{
		Customer: c.Customer,
		Channel:  c.Channel,
		Topic:    c.Topic,
		Expires:  c.Expires.Unix(),
	}) // a struct of strings and an int cannot fail to marshal
	p := b64.EncodeToString(body)
	return p + "." + b64.EncodeToString(mac(secret, p))
}

// Verify checks the token's signature and expiry at now and returns its
// claims. The signature is compared in constant time before the payload is
// even decoded, so nothing unsigned is ever parsed.
func Verify(secret []byte, token string, now time.Time) (Claims, error) {
	if len(secret) == 0 {
		return Claims{}, ErrNoSecret
	}
	p, sig, ok := strings.Cut(token, ".")
	if !ok || p == "" || sig == "" {
		return Claims{}, ErrMalformed
	}
	got, err := b64.DecodeString(sig)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	if !hmac.Equal(got, mac(secret, p)) {
		return Claims{}, ErrSignature
	}
	body, err := b64.DecodeString(p)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	var pl payload
	if err := json.Unmarshal(body, &pl); err != nil || pl.Customer == "" || pl.Channel == "" || pl.Topic == "" {
		return Claims{}, ErrMalformed
	}
	c := Claims{Customer: pl.Customer, Channel: pl.Channel, Topic: pl.Topic, Expires: time.Unix(pl.Expires, 0).UTC()}
	if !now.Before(c.Expires) {
		return Claims{}, fmt.Errorf("%w (at %s)", ErrExpired, c.Expires.Format(time.RFC3339))
	}
	return c, nil
}

// URL is the public unsubscribe link for c under base (RAPPORT_PUBLIC_URL),
// e.g. https://rapport.example.com/unsubscribe?token=….
func URL(base string, secret []byte, c Claims) string {
	return strings.TrimRight(base, "/") + Path + "?token=" + url.QueryEscape(Sign(secret, c))
}

// CheckPublicURL checks base (RAPPORT_PUBLIC_URL) as the root of
// unsubscribe links: absolute, with a host, no query or fragment, and
// https unless allowHTTP (`rapport dev` only). A relative link does
// nothing in a mail client, and RFC 8058 one-click needs an HTTPS URI:
// receivers ignore List-Unsubscribe-Post on http, and the token would
// travel in clear. Errors name the variable.
func CheckPublicURL(base string, allowHTTP bool) error {
	if base == "" {
		return errors.New("RAPPORT_PUBLIC_URL is not set: unsubscribe links need the absolute https URL where `rapport serve` is reached, e.g. https://rapport.example.com")
	}
	u, err := url.Parse(base)
	if err != nil {
		return errors.New("RAPPORT_PUBLIC_URL does not parse as a URL") // the parse error would echo it
	}
	shown := u.Redacted() // never a password in an error
	switch {
	case !u.IsAbs() || u.Host == "":
		return fmt.Errorf("RAPPORT_PUBLIC_URL %q: want an absolute URL such as https://rapport.example.com", shown)
	case u.Scheme == "http" && !allowHTTP:
		return fmt.Errorf("RAPPORT_PUBLIC_URL %q: want https (RFC 8058 one-click unsubscribe needs an HTTPS URI; http is for `rapport dev` only)", shown)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("RAPPORT_PUBLIC_URL %q: want an https URL", shown)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("RAPPORT_PUBLIC_URL %q: want scheme, host and optional path only", shown)
	}
	return nil
}

// Path is where the unsubscribe handler is mounted under the public URL.
const Path = "/unsubscribe"

func mac(secret []byte, payload string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(payload))
	return h.Sum(nil)
}

// Applier records a withdrawal; store.Store implements it. Applying the
// same claims twice must be harmless.
type Applier interface {
	Unsubscribe(ctx context.Context, c Claims) error
}
