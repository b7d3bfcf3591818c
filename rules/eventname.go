package rules

import (
	"strings"
	"unicode"
)

// NormalizeEvent turns a spec event name into the lowercase word a
// playbook can name, as the event API stores it: "Order Completed" → order_completed, "Checkout
// Step-Viewed" → checkout_step_viewed. ASCII letters are lowercased and
// every run of other characters becomes one underscore. A name that does
// not come out as a word (empty, starting with a digit, or with letters
// outside ASCII) is returned as sent: no playbook can name it either way,
// and the event log then shows it unchanged.
func NormalizeEvent(name string) string {
	var b strings.Builder
	under := false
	for _, r := range name {
		switch {
		case r > unicode.MaxASCII:
			return name
		case r >= 'A' && r <= 'Z':
			r = unicode.ToLower(r)
			fallthrough
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if under && b.Len() > 0 {
				b.WriteByte('_')
			}
			under = false
			b.WriteRune(r)
		default:
			under = true
		}
	}
	s := b.String()
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return name
	}
	return s
}
