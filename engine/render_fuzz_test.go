package engine

import (
	"strings"
	"testing"

	"github.com/rapport-crm/rapport/rules"
)

// FuzzRenderMessage renders arbitrary template text with arbitrary
// customer data. Rendering must never panic, and in the HTML part data can
// never open a script: a `<script` in the output must come from the
// template author, not from the customer's name or attributes.
func FuzzRenderMessage(f *testing.F) {
	f.Add("Hi {{ customer.name }}", `<script>alert(1)</script>`, "x")
	f.Add(`<a href="{{ customer.attrs.url }}">{{ customer.name }}</a>`, "Ana", "javascript:alert(1)")
	f.Add(`<p title={{ customer.name }}>x</p>`, `x onmouseover=alert(1)`, "")
	f.Add(`<style>{{ customer.name }}</style>`, `</style><script>1</script>`, "")
	f.Add(`{{ customer.name + customer.attrs.s }}{{ repeat(customer.name, 3) }}`, "<ScRiPt", "<script")
	f.Add(`{{ customer }}{{ $env }}{{ }}{{`, "a", "b")
	f.Add(`{{ len(1..100000000) }} {{ customer.points / 0 }}`, "a", "b")
	f.Fuzz(func(t *testing.T, tmpl, name, attr string) {
		env := rules.NewEnv(rules.Customer{ID: "c1", Name: name, Email: "a@b.io", Attrs: map[string]any{"url": attr, "s": attr}}, rules.Event{}, rules.Env{}.Now)
		out, err := RenderMessage(Message{Subject: tmpl, Text: tmpl, HTML: tmpl}, &env)
		if err != nil {
			return // a clear error is a fine answer to a bad template
		}
		if !strings.Contains(strings.ToLower(tmpl), "<script") && strings.Contains(strings.ToLower(out.HTML), "<script") {
			t.Fatalf("template %q with name %q, attr %q rendered a script: %q", tmpl, name, attr, out.HTML)
		}
		if _, err := RenderText(tmpl, &env); err != nil {
			t.Fatalf("RenderMessage accepted %q but RenderText refused it: %v", tmpl, err)
		}
	})
}
