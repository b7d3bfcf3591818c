package api

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata"
	"unicode" // time zone names must resolve even on hosts without zoneinfo

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

// Identify traits with a typed home in the customer record. Every other
// trait is kept in customer.attrs under the name it was sent with
// (firstName and lastName too, for greetings, besides making up the name).
const (
	traitEmail     = "email"
	traitPhone     = "phone"
	traitName      = "name"
	traitFirstName = "firstName"
	traitLastName  = "lastName"
	traitLocale    = "locale"
	traitTimezone  = "timezone"
	traitBirthday  = "birthday"
	traitCreatedAt = "createdAt"
	traitTier      = "tier"
	traitStage     = "stage"
)

var typedTraits = fieldSet([]string{traitEmail, traitPhone, traitName, traitLocale, traitTimezone, traitBirthday, traitCreatedAt, traitTier, traitStage})

var localeRe = regexp.MustCompile(`^[a-z]{2}(-[A-Z]{2})?$`)

// profileUpdate is what one call changes in the stored profile. The
// store merges it in the call's transaction: non-zero fields of Set
// replace the stored ones, Attrs merge key by key, Clear names the traits
// sent as null (a core field or attrs.<name>), Fill applies where the
// record has no value, and fields not sent keep their stored value.
type profileUpdate = store.ProfileChange

// clearName is the field a null trait clears.
var clearName = map[string]string{traitCreatedAt: "signup_at"}

// buildIdentify validates the traits of customer id and turns them into
// a profileUpdate. A trait sent as "" counts as not sent; null clears.
func buildIdentify(id string, traits map[string]any, path string) (profileUpdate, error) {
	u := profileUpdate{Set: rules.Customer{ID: id}}
	if err := applyTypedTraits(&u, traits, path); err != nil {
		return profileUpdate{}, err
	}
	if _, named := traits[traitName]; !named {
		u.Set.Name = stripControl(fullName(traits))
	}
	for _, k := range sortedKeys(traits) {
		v := traits[k]
		switch {
		case typedTraits[k]:
		case v == nil:
			u.Clear = append(u.Clear, "attrs."+k)
		default:
			if u.Set.Attrs == nil {
				u.Set.Attrs = map[string]any{}
			}
			u.Set.Attrs[k] = v
		}
	}
	return u, nil
}

// withDefaults fills in, where the stored record has none, what the call
// says without a trait: the device context's locale and time zone, and the
// signup time as the call's time. An explicit trait, even null, always
// wins. The store applies Fill inside the call's transaction.
func fillDefaults(u *profileUpdate, call Call, traits map[string]any) {
	if _, sent := traits[traitLocale]; !sent && call.Locale != "" {
		if l, err := normalizeLocale(call.Locale); err == nil {
			u.Fill.Locale = l
		}
	}
	if _, sent := traits[traitTimezone]; !sent && call.Timezone != "" {
		if validTimezone(call.Timezone) == nil {
			u.Fill.Timezone = call.Timezone
		}
	}
	if _, sent := traits[traitCreatedAt]; !sent {
		u.Fill.SignupAt = call.Timestamp
	}
}

// stripControl removes control characters (CR, LF, NUL, …) from a value
// that may end up in a message header (a name in To:, an e-mail
// address), so that it cannot add a header line.
func stripControl(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// applyTypedTraits validates the traits with a typed home and puts them in
// u: values into u.Set, nulls into u.Clear.
func applyTypedTraits(u *profileUpdate, traits map[string]any, path string) error {
	for _, name := range sortedKeys(traits) {
		if !typedTraits[name] {
			continue
		}
		v := traits[name]
		if v == nil {
			u.Clear = append(u.Clear, cmp.Or(clearName[name], name))
			continue
		}
		if name == traitBirthday || name == traitCreatedAt {
			t, err := traitTime(v, join(path, name))
			if err != nil {
				return err
			}
			if name == traitBirthday {
				u.Set.Birthday = t
			} else {
				u.Set.SignupAt = t
			}
			continue
		}
		s, err := traitString(v, join(path, name))
		if err != nil {
			return err
		}
		if s, err = checkTrait(name, s); err != nil {
			return fieldErr(join(path, name), "%v", err)
		}
		*stringHome(&u.Set, name) = s
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}

func stringHome(c *rules.Customer, name string) *string {
	switch name {
	case traitEmail:
		return &c.Email
	case traitPhone:
		return &c.Phone
	case traitName:
		return &c.Name
	case traitLocale:
		return &c.Locale
	case traitTimezone:
		return &c.Timezone
	case traitTier:
		return &c.Tier
	default:
		return &c.Stage
	}
}

// checkTrait validates and normalizes one typed string trait; "" (a
// cleared trait) is always fine.
func checkTrait(name, s string) (string, error) {
	s = strings.TrimSpace(stripControl(s))
	if s == "" {
		return "", nil
	}
	switch name {
	case traitEmail:
		a, err := mail.ParseAddress(s)
		if err != nil || a.Address != s {
			return "", fmt.Errorf("%q is not an e-mail address", truncate(s, 60))
		}
	case traitLocale:
		return normalizeLocale(s)
	case traitTimezone:
		return s, validTimezone(s)
	case traitStage:
		if !slices.Contains(engine.CustomerStages, s) {
			return "", fmt.Errorf("%q is not a customer stage (%s)", s, strings.Join(engine.CustomerStages, ", "))
		}
	}
	if len(s) > 320 {
		return "", fmt.Errorf("is %d bytes; the limit is 320", len(s))
	}
	return s, nil
}

func traitString(v any, field string) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	default:
		return "", fieldErr(field, "must be a string, got %s", rules.JSONKind(v))
	}
}

// traitTime reads a date ("1990-04-12") or an RFC 3339 time.
func traitTime(v any, field string) (time.Time, error) {
	s, err := traitString(v, field)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fieldErr(field, "must be a date like 1990-04-12 or an RFC 3339 time, got %q", truncate(s, 40))
	}
	return t.UTC(), nil
}

func fullName(traits map[string]any) string {
	first, _ := traits[traitFirstName].(string)
	last, _ := traits[traitLastName].(string)
	return strings.TrimSpace(strings.TrimSpace(first) + " " + strings.TrimSpace(last))
}

// normalizeLocale turns "en_us", "zh-cn" or "zh-Hans-CN" into the
// playbook locale form ("en-US", "zh-CN", "zh").
func normalizeLocale(s string) (string, error) {
	parts := strings.Split(strings.ReplaceAll(s, "_", "-"), "-")
	lang := strings.ToLower(parts[0])
	l := lang
	if len(parts) == 2 && len(parts[1]) == 2 {
		l = lang + "-" + strings.ToUpper(parts[1])
	} else if len(parts) == 3 && len(parts[2]) == 2 {
		l = lang + "-" + strings.ToUpper(parts[2])
	}
	if !localeRe.MatchString(l) {
		return "", fmt.Errorf("%q is not a locale like en, zh or zh-TW", truncate(s, 40))
	}
	return l, nil
}

func validTimezone(s string) error {
	if s == "Local" || strings.ContainsAny(s, " \\") {
		return fmt.Errorf("%q is not an IANA time zone like Asia/Shanghai", truncate(s, 40))
	}
	if _, err := time.LoadLocation(s); err != nil {
		return fmt.Errorf("%q is not an IANA time zone like Asia/Shanghai", truncate(s, 40))
	}
	return nil
}

// maxAmount is the largest amount the store keeps (numeric(14, 2)).
const maxAmount = 999_999_999_999.99

// eventFromTrack builds the stored event of a track, page or screen call.
// Every property is kept in Props; the typed ones are also copied into
// their fields. The amount is the first of the commerce amount properties
// present ("products": the sum of products[].price × quantity).
func eventFromTrack(call Call, path string, com activities.Commerce) (rules.Event, error) {
	p := join(path, "properties")
	ev := rules.Event{ID: call.MessageID, Name: call.Event, Time: call.Timestamp, Props: call.Properties}
	var err error
	if ev.Amount, err = amountOf(call.Properties, com.AmountProps, p); err != nil {
		return ev, err
	}
	if ev.Score, err = optNumber(call.Properties, "score", p); err != nil {
		return ev, err
	}
	if ev.Currency, err = optString(call.Properties, "currency", p); err != nil {
		return ev, err
	}
	ev.Currency = strings.ToUpper(ev.Currency)
	if ev.Category, err = optString(call.Properties, "category", p); err != nil {
		return ev, err
	}
	for _, name := range []string{"order_id", "orderId"} {
		if ev.OrderID != "" {
			break
		}
		if ev.OrderID, err = optID(call.Properties, name, p); err != nil {
			return ev, err
		}
	}
	return ev, nil
}

// amountOf reads the amount from the first of names present and checks
// that the store can keep it.
func amountOf(props map[string]any, names []string, path string) (float64, error) {
	for _, name := range names {
		v, ok := props[name]
		if !ok || v == nil {
			continue
		}
		var amount float64
		var err error
		if list, isList := v.([]any); isList && name == "products" {
			amount, err = productsSum(list, join(path, name))
		} else {
			amount, err = propNumber(v, join(path, name))
		}
		if err == nil && math.Abs(amount) > maxAmount {
			err = fieldErr(join(path, name), "%g is out of range (at most %.2f)", amount, maxAmount)
		}
		return amount, err
	}
	return 0, nil
}

// productsSum is the e-commerce spec's products[] total: price × quantity
// (quantity 1 when absent).
func productsSum(list []any, path string) (float64, error) {
	sum := 0.0
	for i, item := range list {
		p, ok := item.(map[string]any)
		if !ok {
			return 0, fieldErr(fmt.Sprintf("%s[%d]", path, i), "must be an object, got %s", rules.JSONKind(item))
		}
		at := fmt.Sprintf("%s[%d]", path, i)
		price, err := optNumber(p, "price", at)
		if err != nil {
			return 0, err
		}
		qty := 1.0
		if _, ok := p["quantity"]; ok {
			if qty, err = optNumber(p, "quantity", at); err != nil {
				return 0, err
			}
		}
		sum += price * qty
	}
	return sum, nil
}

// propNumber accepts a JSON number or a numeric string ("12.50"), since
// some sources send money as strings; anything else is an error rather
// than a silent zero.
func propNumber(v any, field string) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f, nil
		}
		return 0, fieldErr(field, "must be a number, got %q", truncate(x, 40))
	}
	return 0, fieldErr(field, "must be a number, got %s", rules.JSONKind(v))
}

func optNumber(props map[string]any, name, path string) (float64, error) {
	v, ok := props[name]
	if !ok || v == nil {
		return 0, nil
	}
	return propNumber(v, join(path, name))
}

func optString(props map[string]any, name, path string) (string, error) {
	v, ok := props[name]
	if !ok || v == nil {
		return "", nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", fieldErr(join(path, name), "must be a string, got %s", rules.JSONKind(v))
	}
	return strings.TrimSpace(s), nil
}

// optID reads an identifier that may arrive as a string or a whole number.
func optID(props map[string]any, name, path string) (string, error) {
	switch x := props[name].(type) {
	case nil:
		return "", nil
	case string:
		return strings.TrimSpace(x), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		}
	}
	return "", fieldErr(join(path, name), "must be a string or a whole number, got %s", rules.JSONKind(props[name]))
}
