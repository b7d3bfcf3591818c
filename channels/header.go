package channels

import (
	"encoding/base64"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Line limits of RFC 5322 (2.1.1: 78 characters per line, CRLF excluded)
// and RFC 2047 (2: an encoded word at most 75 characters, a line holding
// encoded words at most 76).
const (
	maxLine        = 78
	maxEncodedWord = 75
	maxEncodedLine = 76
)

// foldSubject returns the Subject field value, folded per RFC 5322: the
// first line holds the first word after "Subject: ", continuation lines
// start with one space, and no fold ever leaves an empty first line (which
// parsers read as a leading space in the subject). Printable ASCII is
// folded at its spaces (runs of spaces become one); anything else becomes RFC 2047 base64 encoded
// words, each whole UTF-8 characters, one per line, which decoders join
// without the folding whitespace. Control characters (a CR or LF from a
// name trait) become spaces: a subject is one line.
func foldSubject(subject string) string {
	subject = oneLine(subject)
	prefix := len("Subject: ")
	if isPlainASCII(subject) {
		return foldWords(strings.Fields(subject), prefix)
	}
	return strings.Join(encodedWords(subject, maxEncodedLine-prefix), "\r\n ")
}

// oneLine replaces control characters, CR and LF above all, with spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	// "=?" could be read as the start of an encoded word.
	return !strings.Contains(s, "=?")
}

// foldWords joins words with spaces, breaking before a word that would
// pass maxLine. The first word always stays on the first line, even when
// it is longer than a line: breaking before it is the empty first line.
func foldWords(words []string, used int) string {
	var b strings.Builder
	for i, w := range words {
		switch {
		case i == 0:
		case used+1+len(w) > maxLine:
			b.WriteString("\r\n")
			used = 0
		}
		if i > 0 {
			b.WriteByte(' ')
			used++
		}
		b.WriteString(w)
		used += len(w)
	}
	return b.String()
}

// encodedWords splits s into "=?UTF-8?B?…?=" words of whole characters;
// the first at most first characters long (it shares its line with the
// field name), the others at most maxEncodedWord.
func encodedWords(s string, first int) []string {
	const overhead = len("=?UTF-8?B??=")
	var words []string
	limit := first
	for s != "" {
		n := 0 // bytes of s in this word
		for n < len(s) {
			_, size := utf8.DecodeRuneInString(s[n:])
			if overhead+base64.StdEncoding.EncodedLen(n+size) > limit && n > 0 {
				break
			}
			n += size
		}
		words = append(words, "=?UTF-8?B?"+base64.StdEncoding.EncodeToString([]byte(s[:n]))+"?=")
		s, limit = s[n:], maxEncodedWord
	}
	return words
}

// hostname is a DNS name in ASCII: the right-hand side of a Message-ID
// must be a dot-atom, and a domain is the conventional one (RFC 5322 3.6.4).
var hostname = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`)

// messageIDDomain is the setting when there is one, else the domain of
// the From address; an IDN or address literal there needs the setting.
func messageIDDomain(setting, from string) (string, error) {
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return "", fmt.Errorf("email: RAPPORT_SMTP_FROM %q: %w", from, err)
	}
	if setting != "" {
		if !hostname.MatchString(setting) {
			return "", fmt.Errorf("email: RAPPORT_SMTP_MESSAGE_ID_DOMAIN %q: want a domain name such as mail.example.com", setting)
		}
		return strings.ToLower(setting), nil
	}
	domain := addr.Address[strings.LastIndexByte(addr.Address, '@')+1:]
	if !hostname.MatchString(domain) {
		return "", fmt.Errorf("email: RAPPORT_SMTP_FROM domain %q is not an ASCII domain name; set RAPPORT_SMTP_MESSAGE_ID_DOMAIN", domain)
	}
	return strings.ToLower(domain), nil
}
