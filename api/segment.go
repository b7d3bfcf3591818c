package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// Call is one validated Segment call: identify, track, page, screen,
// group or alias.
//
// Event names are normalised to the lowercase word a playbook can name
// (rules.NormalizeEvent): "Order Completed" is stored and dispatched
// as order_completed. A page call is stored as the event `page`, a screen
// call as `screen`, with the page's name and category in the properties.
type Call struct {
	Type        string
	UserID      string // "" for an anonymous call
	AnonymousID string // anonymousId; an alias's previousId
	MessageID   string // sent, or derived from the call (derivedMessageID)
	Event       string // track (normalised), page, screen
	Properties  map[string]any
	Traits      map[string]any // identify and group; a nil value clears the trait
	// ContextTraits are context.traits: profile changes any call may carry.
	ContextTraits map[string]any
	GroupID       string
	Locale        string    // context.locale
	Timezone      string    // context.timezone
	Timestamp     time.Time // when it happened, corrected for clock skew

	derived bool           // MessageID was derived, not sent
	event   *rules.Event   // track, page, screen: the event to store
	effect  string         // the event's effect on the metrics
	profile *profileUpdate // the profile change of the traits
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
	"page":     fieldSet(append([]string{"name", "category", "properties"}, commonFields...)),
	"screen":   fieldSet(append([]string{"name", "category", "properties"}, commonFields...)),
	"group":    fieldSet(append([]string{"groupId", "traits"}, commonFields...)),
	"alias":    fieldSet(append([]string{"previousId"}, commonFields...)),
}

// batchFields are the members of a batch envelope. Classic analytics-node
// sends timestamp and sentAt beside the batch, others context and
// messageId; all are accepted, and sentAt and context apply to every item
// that has none of its own.
var batchFields = fieldSet([]string{"batch", "context", "integrations", "sentAt", "timestamp", "messageId", "writeKey", "_metadata"})

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
	// commerce says which events are purchases and refunds and where
	// their amount is.
	commerce activities.Commerce
	// sentAt and context are the batch envelope's, for items without
	// their own.
	sentAt  time.Time
	context map[string]any
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

// parseCall validates one call. typ is the call type the endpoint expects
// ("" inside a batch, where the item's own type decides). path prefixes
// field names in errors ("batch[2]").
func parseCall(raw []byte, typ, path string, lim limits) (Call, error) {
	if len(raw) > MaxCallBytes {
		return Call{}, fieldErr(nameOr(path, "body"), "call is %d bytes; the limit is %d", len(raw), MaxCallBytes)
	}
	if err := validUTF8(raw, path); err != nil {
		return Call{}, err
	}
	obj, err := decodeObject(raw, allCallFields, path)
	if err != nil {
		return Call{}, err
	}
	if typ, err = callType(obj, typ, path); err != nil {
		return Call{}, err
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
	if err := checkValues(obj, path); err != nil {
		return Call{}, err
	}
	if err := parseKind(&c, obj, path, lim); err != nil {
		return Call{}, err
	}
	if c.MessageID == "" {
		c.MessageID, c.derived = derivedMessageID(typ, obj), true
		if c.event != nil {
			c.event.ID = c.MessageID
		}
	}
	return c, nil
}

var allCallFields = fieldSet(append([]string{"traits", "event", "properties", "name", "category", "groupId", "previousId"}, commonFields...))

// callType decides the type of a call from the endpoint and its type field.
func callType(obj map[string]json.RawMessage, typ, path string) (string, error) {
	given, err := stringField(obj, "type", path)
	if err != nil {
		return "", err
	}
	switch {
	case typ == "" && given == "":
		return "", fieldErr(join(path, "type"), "required (identify, track, page, screen, group or alias)")
	case typ == "" && callFields[given] == nil:
		return "", fieldErr(join(path, "type"), "%q is not a Segment call type (identify, track, page, screen, group or alias)", truncate(given, 40))
	case typ != "" && given != "" && given != typ:
		return "", fieldErr(join(path, "type"), "%q sent to the %s endpoint", truncate(given, 40), typ)
	case typ == "":
		return given, nil
	}
	return typ, nil
}

// parseKind reads what is particular to each call type and builds the
// event and profile change it writes, so that bad values are found before
// anything is written.
func parseKind(c *Call, obj map[string]json.RawMessage, path string, lim limits) error {
	var err error
	switch c.Type {
	case "identify":
		if c.Traits, err = objectField(obj, "traits", path); err != nil {
			return err
		}
	case "track":
		if err := parseTrack(c, obj, path); err != nil {
			return err
		}
	case "page", "screen":
		if err := parsePage(c, obj, path); err != nil {
			return err
		}
	case "group":
		if err := parseGroup(c, obj, path); err != nil {
			return err
		}
	case "alias":
		if err := parseAlias(c, obj, path); err != nil {
			return err
		}
	}
	if err := buildProfile(c, path, lim); err != nil {
		return err
	}
	if c.Event == "" {
		return nil
	}
	if c.Properties, err = declaredValues(declaredProps(lim.ws, c.Event), c.Properties, join(path, "properties")); err != nil {
		return err
	}
	ev, err := eventFromTrack(*c, path, lim.commerce)
	c.event, c.effect = &ev, lim.commerce.Effect(c.Event)
	return err
}

// buildProfile validates the traits that change a profile: an identify's
// traits over its context.traits, or any other call's context.traits.
func buildProfile(c *Call, path string, lim limits) error {
	traits := c.ContextTraits
	field := join(path, "context.traits")
	if c.Type == "identify" {
		traits, field = mergeUnder(c.Traits, c.ContextTraits), join(path, "traits")
	}
	if len(traits) == 0 && c.Type != "identify" {
		return nil
	}
	traits, err := declaredValues(declaredAttrs(lim.ws), traits, field)
	if err != nil {
		return err
	}
	if c.Type == "identify" {
		c.Traits = traits
	}
	if c.UserID == "" {
		return nil // an anonymous visitor's traits are kept as sent
	}
	u, err := buildIdentify(c.UserID, traits, field)
	if err != nil {
		return err
	}
	if c.Type == "identify" {
		fillDefaults(&u, *c, traits)
	}
	c.profile = &u
	return nil
}

// mergeUnder returns over with the members of under it does not have.
func mergeUnder(over, under map[string]any) map[string]any {
	if len(under) == 0 {
		return over
	}
	out := make(map[string]any, len(over)+len(under))
	for k, v := range under {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// parseCommon reads the members every call has: userId, anonymousId,
// messageId, the timestamps and the context.
func parseCommon(c *Call, obj map[string]json.RawMessage, path string, lim limits) error {
	var err error
	if c.UserID, err = idField(obj, "userId", path); err != nil {
		return err
	}
	if c.UserID != "" {
		if err := ValidCustomerID(c.UserID); err != nil {
			return fieldErr(join(path, "userId"), "%v", err)
		}
	}
	if c.AnonymousID, err = idField(obj, "anonymousId", path); err != nil {
		return err
	}
	if c.AnonymousID != "" {
		if err := validToken(c.AnonymousID, 200); err != nil {
			return fieldErr(join(path, "anonymousId"), "%v", err)
		}
	}
	if c.UserID == "" && c.AnonymousID == "" {
		return fieldErr(join(path, "userId"), "required, or anonymousId")
	}
	if c.MessageID, err = stringField(obj, "messageId", path); err != nil {
		return err
	}
	if c.MessageID != "" {
		if err := validToken(c.MessageID, 200); err != nil {
			return fieldErr(join(path, "messageId"), "%v", err)
		}
	}
	if c.Timestamp, err = eventTime(obj, path, lim); err != nil {
		return err
	}
	return parseContext(c, obj, path, lim)
}

// idField reads an id that Segment allows as a string or a number (some
// sources send numeric user ids); a number becomes its decimal text.
func idField(obj map[string]json.RawMessage, name, path string) (string, error) {
	raw, ok := obj[name]
	if !ok || isNull(raw) {
		return "", nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fieldErr(join(path, name), "must be a string or a number, got %s", jsonKind(raw))
	}
	return strings.TrimSpace(s), nil
}

// parseContext reads the context members Rapport uses (locale, timezone,
// traits), the item's over the batch envelope's; the rest of the context
// (library, ip, page, …) is accepted and ignored.
func parseContext(c *Call, obj map[string]json.RawMessage, path string, lim limits) error {
	ctx, err := objectField(obj, "context", path)
	if err != nil {
		return err
	}
	ctx = mergeUnder(ctx, lim.context)
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
	if t, ok := ctx["traits"]; ok && t != nil {
		m, isObj := t.(map[string]any)
		if !isObj {
			return fieldErr(join(p, "traits"), "must be an object, got %s", rules.JSONKind(t))
		}
		c.ContextTraits = m
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
	c.Event = rules.NormalizeEvent(c.Event)
	c.Properties, err = objectField(obj, "properties", path)
	return err
}

// parsePage reads a page or screen call, stored as the event `page` or
// `screen` with its name and category among the properties.
func parsePage(c *Call, obj map[string]json.RawMessage, path string) error {
	props, err := objectField(obj, "properties", path)
	if err != nil {
		return err
	}
	if props == nil {
		props = map[string]any{}
	}
	for _, f := range []string{"name", "category"} {
		v, err := stringField(obj, f, path)
		if err != nil {
			return err
		}
		if v != "" {
			props[f] = v
		}
	}
	c.Event, c.Properties = c.Type, props
	return nil
}

// parseGroup reads a group call: the account a customer belongs to.
func parseGroup(c *Call, obj map[string]json.RawMessage, path string) error {
	var err error
	if c.GroupID, err = idField(obj, "groupId", path); err != nil {
		return err
	}
	if c.GroupID == "" {
		return fieldErr(join(path, "groupId"), "required")
	}
	if err := validText(c.GroupID, 200); err != nil {
		return fieldErr(join(path, "groupId"), "%v", err)
	}
	if c.UserID == "" {
		return fieldErr(join(path, "userId"), "required for a group call (Rapport keeps accounts of customers)")
	}
	c.Traits, err = objectField(obj, "traits", path)
	return err
}

// parseAlias reads an alias call: previousId (an anonymousId or an
// earlier id) becomes the user's, as an anonymousId tied to it.
func parseAlias(c *Call, obj map[string]json.RawMessage, path string) error {
	prev, err := idField(obj, "previousId", path)
	if err != nil {
		return err
	}
	if prev == "" {
		return fieldErr(join(path, "previousId"), "required")
	}
	if err := validToken(prev, 200); err != nil {
		return fieldErr(join(path, "previousId"), "%v", err)
	}
	if c.UserID == "" {
		return fieldErr(join(path, "userId"), "required for an alias call")
	}
	c.AnonymousID = prev
	return nil
}

// parseBatch validates a batch envelope and each of its items. A bad item
// does not reject the batch: its error is returned in errs by index, and
// the other items are applied. Only a bad envelope is an error.
func parseBatch(raw []byte, lim limits) (calls []Call, idx []int, errs []itemError, err error) {
	obj, err := decodeObject(raw, batchFields, "")
	if err != nil {
		return nil, nil, nil, err
	}
	items, err := batchItems(obj)
	if err != nil {
		return nil, nil, nil, err
	}
	if lim, err = envelope(obj, lim); err != nil {
		return nil, nil, nil, err
	}
	seen := make(map[string]int, len(items))
	for i, item := range items {
		path := fmt.Sprintf("batch[%d]", i)
		c, err := parseCall(item, "", path, lim)
		if err == nil && sentID(c) {
			if j, dup := seen[c.MessageID]; dup {
				err = fieldErr(path+".messageId", "repeats batch[%d].messageId %q", j, c.MessageID)
			}
			seen[c.MessageID] = i
		}
		if err != nil {
			errs = append(errs, itemError{Index: i, Status: http.StatusBadRequest, Error: err.Error()})
			continue
		}
		calls, idx = append(calls, c), append(idx, i)
	}
	return calls, idx, errs, nil
}

// sentID says whether c stores an event under a messageId its client
// sent. Two such items with one id in a batch are a client's bug, worth
// an error; identical calls without messageId share a derived key and
// count once, as their retries do.
func sentID(c Call) bool {
	return c.event != nil && !c.derived
}

// batchItems reads the batch list and checks its length.
func batchItems(obj map[string]json.RawMessage) ([]json.RawMessage, error) {
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
	return items, nil
}

// envelope reads the batch's sentAt and context, which apply to items
// without their own.
func envelope(obj map[string]json.RawMessage, lim limits) (limits, error) {
	if raw, ok := obj["context"]; ok {
		if err := validUTF8(raw, "context"); err != nil {
			return lim, err
		}
	}
	var err error
	if lim.context, err = objectField(obj, "context", ""); err != nil {
		return lim, err
	}
	if err := checkValue(lim.context, "context"); err != nil {
		return lim, err
	}
	lim.sentAt, err = timeField(obj, "sentAt", "")
	return lim, err
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
