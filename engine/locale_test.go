package engine

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// localePlaybook has a template with Simplified, Traditional and Brazilian
// Portuguese variants (declared with zh first, so its default is zh, not
// en), one with a Traditional variant named zh-Hant, one with Simplified
// only, and one with Traditional (Hong Kong) only.
const localePlaybook = `playbook: loc
stage: care
trigger: { manual: true }
templates:
  full:
    zh: { text: "简体" }
    en: { text: "English" }
    zh-TW: { text: "繁體" }
    pt-BR: { text: "Português" }
  hant:
    en: { text: "English" }
    zh: { text: "简体" }
    zh-Hant: { text: "繁體" }
  simplified:
    en: { text: "English" }
    zh: { text: "简体" }
  hongkong:
    en: { text: "English" }
    zh-HK: { text: "繁體" }
steps:
  - send: { channel: sms, template: full }
  - send: { channel: sms, template: hant }
  - send: { channel: sms, template: simplified }
  - send: { channel: sms, template: hongkong }
`

// localeCases: customer locale → variant key chosen, per template.
var localeCases = []struct {
	locale                          string
	full, hant, simplified, hongkon string
}{
	// Simplified readers.
	{"zh_CN", "zh", "zh", "zh", "en"},
	{"ZH", "zh", "zh", "zh", "en"},
	{"zh", "zh", "zh", "zh", "en"},
	{"zh-Hans", "zh", "zh", "zh", "en"},
	{"zh-SG", "zh", "zh", "zh", "en"},
	{"zh-hans-cn", "zh", "zh", "zh", "en"},
	// Traditional readers: any Traditional variant, never Simplified.
	{"zh-HK", "zh-TW", "zh-Hant", "en", "zh-HK"},
	{"zh_hk", "zh-TW", "zh-Hant", "en", "zh-HK"},
	{"zh-TW", "zh-TW", "zh-Hant", "en", "zh-HK"},
	{"zh-MO", "zh-TW", "zh-Hant", "en", "zh-HK"},
	{"zh-Hant", "zh-TW", "zh-Hant", "en", "zh-HK"},
	{"zh-Hant-HK", "zh-TW", "zh-Hant", "en", "zh-HK"},
	// Other languages and regions.
	{"en", "en", "en", "en", "en"},
	{"en-GB", "en", "en", "en", "en"},
	{"EN_us", "en", "en", "en", "en"},
	{"pt_BR", "pt-BR", "en", "en", "en"},
	{"pt-PT", "pt-BR", "en", "en", "en"},
	// Unknown, empty, unreadable: the fallback, en (not the first declared).
	{"", "en", "en", "en", "en"},
	{"xx", "en", "en", "en", "en"},
	{"fr", "en", "en", "en", "en"},
	{"  ", "en", "en", "en", "en"},
	{"not a locale", "en", "en", "en", "en"},
	{"zh-Latn", "en", "en", "en", "en"},
}

func TestTemplateLocaleMatching(t *testing.T) {
	p, err := Compile("loc.yaml", []byte(localePlaybook))
	if err != nil {
		t.Fatal(err)
	}
	data, err := Pin(p)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := DecodePlan(data)
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{"zh": "简体", "en": "English", "zh-TW": "繁體", "zh-Hant": "繁體", "zh-HK": "繁體", "pt-BR": "Português"}
	for name, plan := range map[string]*Plan{"compiled": p, "decoded": decoded} {
		for _, tc := range localeCases {
			for tpl, want := range map[string]string{"full": tc.full, "hant": tc.hant, "simplified": tc.simplified, "hongkong": tc.hongkon} {
				v, got := plan.Template(tpl, tc.locale)
				if got != want || v == nil || v.Text != texts[want] {
					t.Errorf("%s: Template(%s, %q) = %q (%v); want %q", name, tpl, tc.locale, got, v, want)
				}
			}
		}
	}
	if v, l := p.Template("nope", "zh"); v != nil || l != "" {
		t.Errorf("unknown template gave %v, %q", v, l)
	}
}

// A plan without en (possible in a plan decoded from JSON, never compiled
// so) falls back to the template's default, the first variant declared.
func TestTemplateLocaleFallbackWithoutEnglish(t *testing.T) {
	tpl := &Template{Name: "hi", Default: "zh", Variants: map[string]*Variant{
		"zh": {Locale: "zh", Text: "简体"}, "zh-TW": {Locale: "zh-TW", Text: "繁體"},
	}}
	for locale, want := range map[string]string{"fr": "zh", "": "zh", "zh-HK": "zh-TW", "zh_CN": "zh"} {
		if _, got := tpl.Variant(locale); got != want {
			t.Errorf("Variant(%q) = %q, want %q", locale, got, want)
		}
	}
	// Keys an older release accepted that are no language tag still match
	// exactly, and never break the matcher for the others.
	old := &Template{Name: "hi", Default: "en", Variants: map[string]*Variant{
		"en": {Locale: "en"}, "zz": {Locale: "zz"}, "zh": {Locale: "zh"},
	}}
	for locale, want := range map[string]string{"zz": "zz", "zh-SG": "zh", "zz-ZZ": "en"} {
		if _, got := old.Variant(locale); got != want {
			t.Errorf("old plan: Variant(%q) = %q, want %q", locale, got, want)
		}
	}
	var none *Template
	if v, l := none.Variant("en"); v != nil || l != "" {
		t.Errorf("nil template gave %v, %q", v, l)
	}
}

// The same variant keys give the same answers whatever order the map holds
// them in, and from many goroutines at once (run with -race).
func TestTemplateLocaleMatchingDeterministicAndShared(t *testing.T) {
	mk := func() *Template {
		t := &Template{Name: "hi", Default: "en", Variants: map[string]*Variant{}}
		for _, k := range []string{"en", "zh", "zh-TW", "zh-HK", "zh-Hant", "pt-BR", "pt-PT", "en-GB"} {
			t.Variants[k] = &Variant{Locale: k}
		}
		return t
	}
	want := map[string]string{}
	first := mk()
	for _, tc := range localeCases {
		_, want[tc.locale] = first.Variant(tc.locale)
	}
	if want["zh-HK"] != "zh-HK" || want["zh-MO"] != "zh-HK" || want["zh-Hant"] == "zh" || want["en-GB"] != "en-GB" || want["pt-PT"] != "pt-PT" {
		t.Fatalf("answers with every variant: %v", want)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tpl := mk()
			for range 50 {
				for _, tc := range localeCases {
					if _, got := tpl.Variant(tc.locale); got != want[tc.locale] {
						errs <- fmt.Sprintf("Variant(%q) = %q, then %q", tc.locale, want[tc.locale], got)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestTemplateLocaleKeys(t *testing.T) {
	src := func(key string) string {
		return "playbook: t\nstage: nurture\ntrigger: { manual: true }\ntemplates:\n  hi:\n    en: { text: x }\n    " +
			key + ": { text: y }\nsteps:\n  - send: { channel: sms, template: hi }\n"
	}
	for _, key := range []string{"zh", "zh-TW", "zh-Hant", "zh-Hans", "zh-HK", "pt-BR", "es-419", "zh-Hant-HK", "yue"} {
		if _, err := Compile("t.yaml", []byte(src(key))); err != nil {
			t.Errorf("variant %s refused: %v", key, err)
		}
	}
	for key, want := range map[string]string{
		"zh_TW":       `t.yaml:7:5: template "hi": write the locale "zh_TW" as "zh-TW"`,
		"ZH":          `t.yaml:7:5: template "hi": write the locale "ZH" as "zh"`,
		"zh-tw":       `t.yaml:7:5: template "hi": write the locale "zh-tw" as "zh-TW"`,
		"zh-hant":     `t.yaml:7:5: template "hi": write the locale "zh-hant" as "zh-Hant"`,
		"iw":          `t.yaml:7:5: template "hi": write the locale "iw" as "he"`,
		"xx":          `t.yaml:7:5: template "hi": "xx" is not a known language or region; ` + localeAdvice,
		"zh-JJ":       `t.yaml:7:5: template "hi": "zh-JJ" is not a known language or region; ` + localeAdvice,
		"und":         `t.yaml:7:5: template "hi": "und" means an undetermined language; ` + localeAdvice,
		"z":           `t.yaml:7:5: template "hi": "z" is not a locale; ` + localeAdvice,
		"english":     `t.yaml:7:5: template "hi": "english" is not a locale; ` + localeAdvice,
		"en-US-x-foo": `t.yaml:7:5: template "hi": "en-US-x-foo" is not a locale; ` + localeAdvice,
	} {
		_, err := Compile("t.yaml", []byte(src(key)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("variant %s: err = %v\nwant %s", key, err, want)
		}
	}
}

func BenchmarkTemplateLocale(b *testing.B) {
	p, err := Compile("loc.yaml", []byte(localePlaybook))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tc := localeCases[i%len(localeCases)]
		if _, got := p.Template("full", tc.locale); got != tc.full {
			b.Fatalf("%q → %q", tc.locale, got)
		}
	}
}
