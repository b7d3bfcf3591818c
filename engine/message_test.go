package engine

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

func testEnv() *rules.Env {
	env := rules.NewEnv(rules.Customer{Name: `<script>alert("x")</script>`, Points: 1200, Tier: "gold"},
		rules.Event{Amount: 99.5}, time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC))
	env.Coupon = rules.Coupon{Code: "WB-7Q2K", Value: 15, ExpiresAt: time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)}
	env.UnsubscribeURL = "https://example.com/u?t=a&b=c"
	return &env
}

func TestRenderMessageEscapesHTMLOnly(t *testing.T) {
	m := Message{
		Subject: "Hi {{ customer.name }}",
		Text:    "Code {{ coupon.code }} ({{ coupon.value }}% off) until {{ coupon.expires_at }}",
		HTML:    `<p>Dear {{ customer.name }}</p><a href="{{ unsubscribe_url }}">stop</a>`,
	}
	r, err := RenderMessage(m, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if want := `Hi <script>alert("x")</script>`; r.Subject != want {
		t.Errorf("subject = %q, want the name unescaped (plain text): %q", r.Subject, want)
	}
	if want := "Code WB-7Q2K (15% off) until 2025-03-15"; r.Text != want {
		t.Errorf("text = %q, want %q", r.Text, want)
	}
	if strings.Contains(r.HTML, "<script>") {
		t.Errorf("html contains an unescaped script tag: %s", r.HTML)
	}
	if want := `<p>Dear &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</p>`; !strings.HasPrefix(r.HTML, want) {
		t.Errorf("html = %s, want prefix %s", r.HTML, want)
	}
	if want := `href="https://example.com/u?t=a&amp;b=c"`; !strings.Contains(r.HTML, want) {
		t.Errorf("html = %s, want attribute %s", r.HTML, want)
	}
}

func TestRenderTextValues(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"no placeholders", "no placeholders"},
		{"{{customer.points}} points", "1200 points"},
		{"{{ event.amount }}", "99.50"},
		{"{{ upper(customer.tier) }}!", "GOLD!"},
		{"{{ daysSince(customer.signup_at) }}", "-1"},
		{"a }} b", "a }} b"},
		{"", ""},
	} {
		got, err := RenderText(tc.src, testEnv())
		if err != nil || got != tc.want {
			t.Errorf("RenderText(%q) = %q, %v; want %q", tc.src, got, err, tc.want)
		}
	}
}

func TestCheckTextPositions(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"Hello {{ customer.name ", "1:7: unclosed placeholder: {{ without a matching }}"},
		{"a\nb {{ customer.nme }}", `2:15: placeholder: customer has no field "nme" (did you mean "name"?)`},
		{"{{ }}", "1:1: empty placeholder {{ }}"},
		{"x {{ customer.attrs }}", "1:6: placeholder: cannot print a map in a message; print one of its entries, like customer.attrs.industry"},
	} {
		err := CheckText(tc.src)
		var re *rules.Error
		if !errors.As(err, &re) || err.Error() != tc.want {
			t.Errorf("CheckText(%q) = %v, want %s", tc.src, err, tc.want)
		}
	}
	if err := CheckText("Hi {{ customer.name }}, {{ coupon.code }}"); err != nil {
		t.Errorf("valid text: %v", err)
	}
}

func TestRenderMessageFromPlanVariant(t *testing.T) {
	p, err := CompileFile("../playbooks/winback.yaml")
	if err != nil {
		t.Fatal(err)
	}
	v, locale := p.Template("winback_offer", "zh_CN")
	if locale != "zh" {
		t.Fatalf("locale %q, want zh", locale)
	}
	r, err := RenderMessage(Message{v.Subject, v.Text, v.HTML}, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text, "WB-7Q2K") || !strings.Contains(r.Subject, "15") {
		t.Errorf("rendered %+v", r)
	}
}

func TestBadHTMLContextFailsAtCompile(t *testing.T) {
	// A placeholder inside an unclosed attribute cannot be escaped safely.
	if err := checkHTML(`<a href="{{ unsubscribe_url }}`); err == nil {
		t.Error("html ending inside an attribute was accepted")
	}
}

// Each placeholder that renders empty is reported by part, with its rule;
// the rendering is RenderMessage's.
func TestRenderMessageChecked(t *testing.T) {
	m := Message{
		Subject: "Hi {{ customer.name }}",
		Text:    "Code {{ coupon.code }} for {{ customer.name }}{{ \"  \" }}",
		HTML:    `<a href="{{ unsubscribe_url }}">x</a>`,
	}
	env := rules.NewEnv(rules.Customer{Name: "Ada"}, rules.Event{}, time.Time{})
	got, empty, err := RenderMessageChecked(m, &env)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := RenderMessage(m, &env)
	if got != want {
		t.Errorf("rendered %+v, RenderMessage %+v", got, want)
	}
	wantEmpty := []EmptyPlaceholder{{"text", "coupon.code"}, {"text", `"  "`}, {"html", "unsubscribe_url"}}
	if !slices.Equal(empty, wantEmpty) {
		t.Errorf("empty = %+v, want %+v", empty, wantEmpty)
	}
}

func TestHasLocale(t *testing.T) {
	tpl := &Template{Default: "en", Variants: map[string]*Variant{"en": {}, "zh": {}}}
	for locale, want := range map[string]bool{"en": true, "en-GB": true, "zh_CN": true, "zh-TW": false, "de": false, "": false} {
		if got := tpl.HasLocale(locale); got != want {
			t.Errorf("HasLocale(%q) = %v, want %v", locale, got, want)
		}
	}
}
