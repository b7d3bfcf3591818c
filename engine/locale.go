package engine

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/text/language"
)

// Locales are BCP 47 language tags, matched with golang.org/x/text/language.
//
// A template's variant keys are written in the canonical form: a language
// (en, zh, pt), optionally a script (zh-Hant, zh-Hans) and a region (zh-TW,
// pt-BR, es-419). A customer's locale is read leniently: any case, "_" or
// "-" (zh_CN, ZH, en-gb).
//
// The variant for a customer is the closest one the matcher finds in the
// customer's own script. A reader of Traditional Chinese (zh-TW, zh-HK,
// zh-MO, zh-Hant) gets any Traditional variant (zh-TW, zh-HK, zh-Hant), the
// nearest region first; a reader of Simplified (zh, zh-CN, zh-SG, zh-Hans)
// gets zh or zh-Hans. A variant in another script is never chosen, because
// it is not what the customer reads: without a Traditional variant a
// Traditional reader gets the fallback, not Simplified (and the other way
// round). The fallback, for those and for an unknown or empty locale, is
// the template's en variant, which every template has (or, in a plan that
// has none, its default, the first declared).

// templateLocaleRe is the shape of a variant key: canonical case, "-".
var templateLocaleRe = regexp.MustCompile(`^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$`)

// fallbackLocale is the variant every template must have and that a
// customer gets when no variant is in their language and script.
const fallbackLocale = "en"

// CheckLocale checks a template's variant key and says, in the marketer's
// words, what is wrong with it: not a language tag, an unknown language or
// region, or a tag spelled otherwise than in its canonical form (zh_TW
// for zh-TW, ZH for zh, iw for he).
func CheckLocale(key string) error {
	tag, err := language.Parse(key)
	if templateLocaleRe.MatchString(key) {
		switch {
		case err != nil:
			return fmt.Errorf("%q is not a known language or region; %s", key, localeAdvice)
		case tag == language.Und:
			return fmt.Errorf("%q means an undetermined language; %s", key, localeAdvice)
		case tag.String() != key:
			return fmt.Errorf("write the locale %q as %q", key, tag.String())
		}
		return nil
	}
	if err == nil && tag != language.Und && templateLocaleRe.MatchString(tag.String()) {
		return fmt.Errorf("write the locale %q as %q", key, tag.String())
	}
	if _, unknown := err.(language.ValueError); unknown {
		return fmt.Errorf("%q is not a known language or region; %s", key, localeAdvice)
	}
	return fmt.Errorf("%q is not a locale; %s", key, localeAdvice)
}

const localeAdvice = "use a language code like en or zh, optionally with a script like zh-Hant or a region like zh-TW or pt-BR"

// Variant returns the variant for a customer locale and the locale it is
// written in (its key); see the package comment on locales. It returns
// nil when t has neither a matching variant nor a fallback.
func (t *Template) Variant(locale string) (*Variant, string) {
	if t == nil || len(t.Variants) == 0 {
		return nil, ""
	}
	if v := t.Variants[locale]; v != nil {
		return v, locale
	}
	m := matcherFor(t)
	if key := m.match(locale); key != "" {
		return t.Variants[key], key
	}
	if m.fallback != "" {
		return t.Variants[m.fallback], m.fallback
	}
	return nil, ""
}

// localeMatcher matches customer locales against one list of variant keys.
// It holds no state that changes after it is built, so it is shared by
// every plan (and goroutine) whose template has the same keys.
type localeMatcher struct {
	fallback string
	keys     []string          // variant keys that parse, in the matcher's order
	scripts  []language.Script // script of each key, written or implied
	matcher  language.Matcher
}

// matchers caches one localeMatcher per list of variant keys (and
// fallback). Plans are immutable, decoded from JSON and shared, so the
// matcher is not kept in the Template: the cache is keyed by what the
// matcher is built from, and the few distinct lists of keys across all
// playbooks bound its size in practice; maxMatchers bounds it for certain.
var (
	matchers     sync.Map // string → *localeMatcher
	matcherCount atomic.Int64
)

const maxMatchers = 4096

func matcherFor(t *Template) *localeMatcher {
	keys := make([]string, 0, len(t.Variants))
	for k := range t.Variants {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fallback := t.Default
	if t.Variants[fallbackLocale] != nil {
		fallback = fallbackLocale
	} else if t.Variants[fallback] == nil {
		fallback = ""
	}
	id := fallback + "|" + strings.Join(keys, ",")
	if m, ok := matchers.Load(id); ok {
		return m.(*localeMatcher)
	}
	m := newLocaleMatcher(fallback, keys)
	if matcherCount.Load() < maxMatchers {
		if got, loaded := matchers.LoadOrStore(id, m); loaded {
			return got.(*localeMatcher)
		}
		matcherCount.Add(1)
	}
	return m
}

// newLocaleMatcher builds the matcher of a template's variant keys, the
// fallback first (the matcher's default), the others in sorted order, so
// that the same keys always give the same matcher and the same answers.
func newLocaleMatcher(fallback string, keys []string) *localeMatcher {
	m := &localeMatcher{fallback: fallback}
	ordered := keys
	if fallback != "" {
		ordered = append([]string{fallback}, slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == fallback })...)
	}
	var tags []language.Tag
	for _, k := range ordered {
		tag, err := language.Parse(k)
		if err != nil || tag == language.Und {
			continue // a key from an older plan that is no tag: exact matches only
		}
		script, _ := tag.Script()
		m.keys = append(m.keys, k)
		m.scripts = append(m.scripts, script)
		tags = append(tags, tag)
	}
	if len(tags) > 0 {
		m.matcher = language.NewMatcher(tags)
	}
	return m
}

// match returns the key of the variant for locale, or "" when none is in
// the customer's language and script.
func (m *localeMatcher) match(locale string) string {
	locale = strings.TrimSpace(locale)
	if m.matcher == nil || locale == "" {
		return ""
	}
	// Parse reads any case and "_"; on an unknown subtag (zh-XX) it still
	// returns what it understood (zh), which is worth matching.
	want, _ := language.Parse(locale)
	if want == language.Und {
		return ""
	}
	_, i, conf := m.matcher.Match(want)
	if conf == language.No || i < 0 || i >= len(m.keys) {
		return ""
	}
	if script, _ := want.Script(); script != m.scripts[i] {
		return "" // Simplified for a Traditional reader (or the reverse) is not their language
	}
	return m.keys[i]
}

// HasLocale reports whether t has a variant in the language and script of
// a customer's locale, rather than giving them the fallback: what a
// preview flags as a missing locale.
func (t *Template) HasLocale(locale string) bool {
	if t == nil || len(t.Variants) == 0 {
		return false
	}
	return t.Variants[locale] != nil || matcherFor(t).match(locale) != ""
}
