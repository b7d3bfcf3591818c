package activities

import (
	"strings"
	"unicode/utf8"
)

// MaskAddress shows an address the way Rapport may print it where the
// address itself must not appear (Temporal summaries and search
// attributes, logs): enough to tell two apart at a glance, not enough to
// write to the customer. Email keeps the first character of the mailbox
// and the domain (w***@example.cn); a phone number its first two and
// last three digits (+44*******123); any other channel's address is
// hidden whole.
func MaskAddress(channel, address string) string {
	switch channel {
	case "email":
		return MaskEmail(address)
	case "sms":
		return MaskPhone(address)
	default:
		if strings.TrimSpace(address) == "" {
			return ""
		}
		return "***"
	}
}

// MaskEmail is MaskAddress for an email address.
func MaskEmail(address string) string {
	address = strings.TrimSpace(address)
	if address == "" {
		return ""
	}
	at := strings.LastIndexByte(address, '@')
	if at < 0 || at == len(address)-1 {
		return "***"
	}
	first, _ := utf8.DecodeRuneInString(address)
	if at == 0 {
		return "***" + address[at:]
	}
	return string(first) + "***" + address[at:]
}

// MaskPhone is MaskAddress for a phone number: its digits (and leading
// +) with all but the first two and last three starred; a number too
// short for that keeps only its last two digits.
func MaskPhone(address string) string {
	n := NormalAddress("sms", address)
	plus := strings.HasPrefix(n, "+")
	digits := strings.ReplaceAll(n, "+", "")
	var out string
	switch d := len(digits); {
	case d == 0:
		return ""
	case d >= 8:
		out = digits[:2] + strings.Repeat("*", d-5) + digits[d-3:]
	case d >= 4:
		out = strings.Repeat("*", d-2) + digits[d-2:]
	default:
		out = strings.Repeat("*", d)
	}
	if plus {
		out = "+" + out
	}
	return out
}
