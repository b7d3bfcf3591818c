package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// itemError is the answer for one batch item that was not applied.
type itemError struct {
	Index  int    `json:"index"`
	Status int    `json:"status"` // what the call alone would have answered
	Error  string `json:"error"`
}

// validUTF8 rejects a body that is not UTF-8 before the JSON decoder
// would silently replace the bad bytes with U+FFFD.
func validUTF8(raw []byte, path string) error {
	if utf8.Valid(raw) {
		return nil
	}
	for i := 0; i < len(raw); {
		r, n := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && n <= 1 {
			return fieldErr(nameOr(path, "body"), "invalid UTF-8 at byte %d", i)
		}
		i += n
	}
	return nil
}

// checkValues walks the free-form members a call stores as JSON
// (properties, traits, context) for what PostgreSQL cannot keep: a NUL
// character in a string or a key (jsonb refuses \u0000).
func checkValues(obj map[string]json.RawMessage, path string) error {
	for _, name := range []string{"properties", "traits", "context"} {
		raw, ok := obj[name]
		if !ok {
			continue
		}
		var v any
		if json.Unmarshal(raw, &v) != nil {
			continue // the field's own parser names the error
		}
		if err := checkValue(v, join(path, name)); err != nil {
			return err
		}
	}
	return nil
}

func checkValue(v any, path string) error {
	switch x := v.(type) {
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return fieldErr(path, "contains a NUL character (\\u0000), which cannot be stored")
		}
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 {
				return fieldErr(path, "has a key with a NUL character (\\u0000), which cannot be stored")
			}
			if err := checkValue(e, path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := checkValue(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// timeLayouts are the ISO 8601 forms accepted: RFC 3339, and offsets
// without a colon (+0000, as Java and some loggers write them) or with
// hours only (+08).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999Z07"}

// timeField reads an optional ISO 8601 time member; absent is zero.
func timeField(obj map[string]json.RawMessage, name, path string) (time.Time, error) {
	s, err := stringField(obj, name, path)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fieldErr(join(path, name), "must be an ISO 8601 time like 2025-05-01T12:00:00Z or 2025-05-01T12:00:00+0000, got %q", truncate(s, 40))
}

// eventTime is when the call happened, corrected for the client's clock
// as Segment does: with the client's time of the call (originalTimestamp,
// else timestamp) and of sending (sentAt, the item's or the batch's), the
// time is receivedAt − (sentAt − clientTime), so a clock hours fast or
// slow does not move the event. Without sentAt the time is taken as sent
// (a historical import); without any, it is the receive time. The result
// must lie within the server's bounds.
func eventTime(obj map[string]json.RawMessage, path string, lim limits) (time.Time, error) {
	field := "originalTimestamp"
	client, err := timeField(obj, field, path)
	if err != nil {
		return time.Time{}, err
	}
	if client.IsZero() {
		field = "timestamp"
		if client, err = timeField(obj, field, path); err != nil {
			return time.Time{}, err
		}
	}
	sent, err := timeField(obj, "sentAt", path)
	if err != nil {
		return time.Time{}, err
	}
	if sent.IsZero() {
		sent = lim.sentAt
	}
	t := client
	switch {
	case client.IsZero():
		return lim.now, nil
	case !sent.IsZero():
		t = lim.now.Add(-sent.Sub(client))
	}
	if t.After(lim.now.Add(lim.maxFuture)) {
		return time.Time{}, fieldErr(join(path, field), "%s is more than %s in the future", t.Format(time.RFC3339), lim.maxFuture)
	}
	if t.Before(lim.now.Add(-lim.maxPast)) {
		return time.Time{}, fieldErr(join(path, field), "%s is more than %s in the past", t.Format(time.RFC3339), lim.maxPast)
	}
	return t, nil
}

// derivedPrefix starts every derived key.
const derivedPrefix = "derived-"

// derivedMessageID is the key of a call sent without messageId, which
// the spec makes optional: a digest of the call type and the call as sent,
// less what a client's retry changes (sentAt, _metadata). A retried call
// thus counts once, as with a messageId; two identical calls without
// messageId or timestamp also count once.
func derivedMessageID(typ string, obj map[string]json.RawMessage) string {
	keep := make(map[string]json.RawMessage, len(obj))
	for k, v := range obj {
		switch k {
		case "sentAt", "_metadata", "receivedAt", "messageId":
		default:
			keep[k] = v
		}
	}
	var canon any
	b, _ := json.Marshal(keep)
	_ = json.Unmarshal(b, &canon)
	b, _ = json.Marshal(canon) // maps marshal with sorted keys at every level
	sum := sha256.Sum256(append([]byte(typ+"\x00"), b...))
	return derivedPrefix + hex.EncodeToString(sum[:20])
}
