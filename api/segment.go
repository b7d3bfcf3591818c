package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// Call is one validated Segment call: an identify or a track.
//
// Event names are kept exactly as sent: a playbook names the event the way
// the source sends it (`event: purchase`, or `event: "Order Completed"` for
// a Segment e-commerce source). No case folding or snake-casing happens, so
// what a marketer sees in the event log is what the playbook must say.
type Call struct {
	Type       string // "identify" or "track"
	UserID     string
	MessageID  string // required for track (idempotency); optional for identify
	Event      string // track
	Properties map[string]any
	Traits     map[string]any // identify; a nil value clears the trait
	Locale     string         // context.locale
	Timezone   string         // context.timezone
	Timestamp  time.Time      // when it happened; the receive time when absent

	event   rules.Event   // track: the event to store, built while validating
	profile profileUpdate // identify: the profile change, built while validating
}

// FieldError is bad input, named by the JSON path of the field at fault
// ("batch[3].userId: required").
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Common fields every Segment library may send, which we accept and ignore
// unless listed in the parse functions.
var commonFields = []string{
	"type", "userId", "anonymousId", "timestamp", "messageId", "context", "integrations",
	"sentAt", "receivedAt", "originalTimestamp", "channel", "version", "writeKey", "_metadata",
}

// callFields are the top-level fields accepted per call type; anything else
// is rejected, so a typo (`userID`) fails loudly instead of being dropped.
var callFields = map[string]map[string]bool{
	"identify": fieldSet(append([]string{"traits"}, commonFields...)),
	"track":    fieldSet(append([]string{"event", "properties"}, commonFields...)),
}

var batchFields = fieldSet([]string{"batch", "context", "integrations", "sentAt", "writeKey", "_metadata"})

func fieldSet(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// limits bound timestamps relative to the receive time.
type limits struct {
	now       time.Time
	maxFuture time.Duration
	maxPast   time.Duration
	// ws is the workspace declaration traits and properties are checked
	// against (nil: none).
	ws *engine.Workspace
}

// decodeObject decodes raw as a JSON object, keeping its members raw, and
// rejects members not in allowed. path prefixes field names in errors.
func decodeObject(raw []byte, allowed map[string]bool, path string) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, jsonError(raw, err, path)
	}
	if obj == nil {
		return nil, fieldErr(nameOr(path, "body"), "expected a JSON object, got null")
	}
	var unknown []string
	for k := range obj {
		if !allowed[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fieldErr(join(path, unknown[0]), "unknown field")
	}
	return obj, nil
}

// jsonError turns a decoding error into a FieldError that says where.
func jsonError(raw []byte, err error, path string) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fieldErr(nameOr(path, "body"), "invalid JSON at byte %d: %s", syn.Offset, syn.Error())
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fieldErr(nameOr(path, "body"), "expected a JSON object, got %s", jsonKind(raw))
	}
	return fieldErr(nameOr(path, "body"), "invalid JSON: %v", err)
}

func nameOr(path, def string) string {
	if path == "" {
		return def
	}
	return path
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// jsonKind names the JSON type of a raw value for error messages.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "a list"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// stringField reads an optional string member; null counts as absent.
func stringField(obj map[string]json.RawMessage, name, path string) (string, error) {
	raw, ok := obj[name]
	if !ok || isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fieldErr(join(path, name), "must be a string, got %s", jsonKind(raw))
	}
	return s, nil
}

// objectField reads an optional free-form object member (properties,
// traits, context); null counts as absent.
func objectField(obj map[string]json.RawMessage, name, path string) (map[string]any, error) {
	raw, ok := obj[name]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fieldErr(join(path, name), "must be an object, got %s", jsonKind(raw))
	}
	return m, nil
}

// ParseCall validates one identify or track call. typ is the call type the
// endpoint expects ("" inside a batch, where the item's own type decides).
// path prefixes field names in errors ("batch[2]").
func parseCall(raw []byte, typ, path string, lim limits) (Call, error) {
	if len(raw) > MaxCallBytes {
		return Call{}, fieldErr(nameOr(path, "body"), "call is %d bytes; the limit is %d", len(raw), MaxCallBytes)
	}
	all := fieldSet(append([]string{"traits", "event", "properties"}, commonFields...))
	obj, err := decodeObject(raw, all, path)
	if err != nil {
		return Call{}, err
	}
	given, err := stringField(obj, "type", path)
	if err != nil {
		return Call{}, err
	}
	switch {
	case typ == "" && given == "":
		return Call{}, fieldErr(join(path, "type"), "required (identify or track)")
	case typ == "" && callFields[given] == nil:
		return Call{}, fieldErr(join(path, "type"), "%q is not supported; use identify or track", given)
	case typ != "" && given != "" && given != typ:
		return Call{}, fieldErr(join(path, "type"), "%q sent to the %s endpoint", given, typ)
	case typ == "":
		typ = given
	}
	for k := range obj {
		if !callFields[typ][k] {
			return Call{}, fieldErr(join(path, k), "unknown field for a %s call", typ)
		}
	}
	c := Call{Type: typ}
	if err := parseCommon(&c, obj, path, lim); err != nil {
		return Call{}, err
	}
	if typ == "identify" {
		if c.Traits, err = objectField(obj, "traits", path); err != nil {
			return Call{}, err
		}
		// Build the update now, so that bad traits are found before
		// anything of a batch is applied.
		if c.Traits, err = declaredValues(declaredAttrs(lim.ws), c.Traits, join(path, "traits")); err != nil {
			return Call{}, err
		}
		c.profile, err = buildIdentify(c, path)
		return c, err
	}
	if err := parseTrack(&c, obj, path); err != nil {
		return Call{}, err
	}
	if c.Properties, err = declaredValues(declaredProps(lim.ws, c.Event), c.Properties, join(path, "properties")); err != nil {
		return Call{}, err
	}
	c.event, err = eventFromTrack(c, path)
	return c, err
}

// parseCommon reads the members every call has: userId, messageId,
// timestamp and the context's locale and time zone.
func parseCommon(c *Call, obj map[string]json.RawMessage, path string, lim limits) error {
	var err error
	if c.UserID, err = stringField(obj, "userId", path); err != nil {
		return err
	}
	if c.UserID == "" {
		if _, anon := obj["anonymousId"]; anon {
			return fieldErr(join(path, "userId"), "required (anonymous calls are not supported; identify the customer first)")
		}
		return fieldErr(join(path, "userId"), "required")
	}
	if err := ValidCustomerID(c.UserID); err != nil {
		return fieldErr(join(path, "userId"), "%v", err)
	}
	if c.MessageID, err = stringField(obj, "messageId", path); err != nil {
		return err
	}
	if c.MessageID != "" {
		if err := validToken(c.MessageID, 200); err != nil {
			return fieldErr(join(path, "messageId"), "%v", err)
		}
	} else if c.Type == "track" {
		return fieldErr(join(path, "messageId"), "required (it makes a retried call count once)")
	}
	if c.Timestamp, err = parseTimestamp(obj, path, lim); err != nil {
		return err
	}
	return parseContext(c, obj, path)
}

// parseTimestamp reads an RFC 3339 timestamp and bounds it; absent means
// the receive time.
func parseTimestamp(obj map[string]json.RawMessage, path string, lim limits) (time.Time, error) {
	s, err := stringField(obj, "timestamp", path)
	if err != nil || s == "" {
		return lim.now, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fieldErr(join(path, "timestamp"), "must be an RFC 3339 time like 2025-05-01T12:00:00Z, got %q", truncate(s, 40))
	}
	if t.After(lim.now.Add(lim.maxFuture)) {
		return time.Time{}, fieldErr(join(path, "timestamp"), "%s is more than %s in the future", s, lim.maxFuture)
	}
	if t.Before(lim.now.Add(-lim.maxPast)) {
		return time.Time{}, fieldErr(join(path, "timestamp"), "%s is more than %s in the past", s, lim.maxPast)
	}
	return t.UTC(), nil
}

// parseContext keeps the two context members Rapport uses; the rest of the
// context (library, ip, page, …) is accepted and ignored.
func parseContext(c *Call, obj map[string]json.RawMessage, path string) error {
	ctx, err := objectField(obj, "context", path)
	if err != nil || ctx == nil {
		return err
	}
	p := join(path, "context")
	for _, f := range []struct {
		name string
		dst  *string
	}{{"locale", &c.Locale}, {"timezone", &c.Timezone}} {
		v, ok := ctx[f.name]
		if !ok || v == nil {
			continue
		}
		s, isStr := v.(string)
		if !isStr {
			return fieldErr(join(p, f.name), "must be a string")
		}
		*f.dst = s
	}
	return nil
}

// parseTrack reads the event name and properties of a track call.
func parseTrack(c *Call, obj map[string]json.RawMessage, path string) error {
	var err error
	if c.Event, err = stringField(obj, "event", path); err != nil {
		return err
	}
	if c.Event == "" {
		return fieldErr(join(path, "event"), "required")
	}
	if err := validText(c.Event, 200); err != nil {
		return fieldErr(join(path, "event"), "%v", err)
	}
	c.Properties, err = objectField(obj, "properties", path)
	return err
}

// parseBatch validates every item of a batch before anything is applied,
// so that one bad item rejects the whole batch and nothing is written.
func parseBatch(raw []byte, lim limits) ([]Call, error) {
	obj, err := decodeObject(raw, batchFields, "")
	if err != nil {
		return nil, err
	}
	rawBatch, ok := obj["batch"]
	if !ok || isNull(rawBatch) {
		return nil, fieldErr("batch", "required")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(rawBatch, &items); err != nil {
		return nil, fieldErr("batch", "must be a list, got %s", jsonKind(rawBatch))
	}
	if len(items) == 0 {
		return nil, fieldErr("batch", "is empty")
	}
	if len(items) > MaxBatchItems {
		return nil, fieldErr("batch", "has %d calls; the limit is %d", len(items), MaxBatchItems)
	}
	calls := make([]Call, len(items))
	seen := make(map[string]int, len(items))
	for i, item := range items {
		path := fmt.Sprintf("batch[%d]", i)
		if calls[i], err = parseCall(item, "", path, lim); err != nil {
			return nil, err
		}
		if id := calls[i].MessageID; id != "" {
			if j, dup := seen[id]; dup {
				return nil, fieldErr(path+".messageId", "repeats batch[%d].messageId %q", j, id)
			}
			seen[id] = i
		}
	}
	return calls, nil
}

// MaxCustomerID is the longest customer id accepted.
const MaxCustomerID = 128

// ValidCustomerID accepts 1–128 characters of letters, digits and
// - _ . : @ + (so e-mail addresses and prefixed ids like shop:42 work),
// but not an id of dots only, which would read as a path.
func ValidCustomerID(id string) error {
	if id == "" {
		return errors.New("empty customer id")
	}
	if len(id) > MaxCustomerID {
		return fmt.Errorf("customer id is %d characters; the limit is %d", len(id), MaxCustomerID)
	}
	dots := true
	for i := 0; i < len(id); i++ {
		b := id[i]
		ok := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("-_.:@+", b) >= 0
		if !ok {
			return fmt.Errorf("customer id may only contain letters, digits and - _ . : @ + (found %q at position %d)", rune(b), i+1)
		}
		dots = dots && b == '.'
	}
	if dots {
		return errors.New("customer id cannot be only dots")
	}
	return nil
}

// validToken accepts printable ASCII without spaces (message ids).
func validToken(s string, maxLen int) error {
	if len(s) > maxLen {
		return fmt.Errorf("is %d characters; the limit is %d", len(s), maxLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return fmt.Errorf("may only contain printable ASCII without spaces (found %q at position %d)", rune(s[i]), i+1)
		}
	}
	return nil
}

// validText accepts valid UTF-8 without control characters (event names).
func validText(s string, maxLen int) error {
	if len(s) > maxLen {
		return fmt.Errorf("is %d bytes; the limit is %d", len(s), maxLen)
	}
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	if strings.TrimSpace(s) != s {
		return errors.New("has leading or trailing spaces")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("contains the control character %U", r)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
