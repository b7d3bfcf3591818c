package engine

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rapport-crm/rapport/rules"
)

// Template returns the variant of template name for a customer locale and
// the locale (variant key) chosen: the variant in the customer's language
// and script, matched as BCP 47 tags (zh_CN, zh-SG, zh-Hans → zh; zh-HK,
// zh-MO, zh-Hant → zh-TW, zh-HK or zh-Hant; en-GB → en), else en (see
// locale.go). It returns nil when the plan has no template of that name.
// The answer depends on the plan and locale only, so journeys may call it
// in workflow code.
func (p *Plan) Template(name, locale string) (*Variant, string) {
	return p.Templates[name].Variant(locale)
}

// variantRef remembers where a template variant was declared.
type variantRef struct {
	locale     string
	node       *yaml.Node
	hasSubject bool
}

// templates reads the templates mapping: name → locale → variant.
func (c *compiler) templates(f field) {
	n := c.deref(f.val)
	if n == nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		c.errorf(n, "templates: expected a mapping of template names, got %s", describe(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := c.deref(n.Content[i])
		if k == nil {
			return
		}
		if k.Kind != yaml.ScalarNode || !wordRe.MatchString(k.Value) {
			c.errorf(k, "templates: %s is not a valid template name (a lowercase word like welcome_email)", describe(k))
			continue
		}
		if _, dup := c.tplNodes[k.Value]; dup {
			c.errorf(k, "duplicate template %q", k.Value)
			continue
		}
		c.tplNodes[k.Value] = k
		if t := c.template(k, n.Content[i+1]); t != nil {
			c.plan.Templates[k.Value] = t
		}
	}
}

// template reads the locales of one template.
func (c *compiler) template(key, val *yaml.Node) *Template {
	n := c.deref(val)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		c.errorf(n, "template %q: expected a mapping of locales (en, zh, …), got %s", key.Value, describe(n))
		return nil
	}
	t := &Template{Name: key.Value, Variants: map[string]*Variant{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		lk := c.deref(n.Content[i])
		if lk == nil {
			return nil
		}
		if lk.Kind != yaml.ScalarNode {
			c.errorf(lk, "template %q: %s is not a locale; %s", key.Value, describe(lk), localeAdvice)
			continue
		}
		if err := CheckLocale(lk.Value); err != nil {
			c.errorf(lk, "template %q: %v", key.Value, err)
			continue
		}
		if t.Variants[lk.Value] != nil {
			c.errorf(lk, "template %q: duplicate locale %q", key.Value, lk.Value)
			continue
		}
		if t.Default == "" {
			t.Default = lk.Value
		}
		t.Variants[lk.Value] = c.variant(key.Value, lk, n.Content[i+1])
	}
	if t.Variants["en"] == nil {
		c.errorf(key, "template %q has no \"en\" locale; every template needs English as the fallback", key.Value)
	}
	return t
}

// variant reads subject, text and html of one locale and checks their
// placeholders.
func (c *compiler) variant(name string, lk, val *yaml.Node) *Variant {
	v := &Variant{Locale: lk.Value}
	m, ok := c.mapping(val, fmt.Sprintf("template %s/%s", name, lk.Value), "variant")
	_, hasSubject := m["subject"]
	c.variantRefs[name] = append(c.variantRefs[name], variantRef{lk.Value, lk, hasSubject || !ok})
	if !ok {
		return v
	}
	if f, ok := m["subject"]; ok {
		v.Subject, _ = c.text(f, false)
	}
	if f, ok := m["text"]; ok {
		v.Text, _ = c.text(f, false)
	}
	if f, ok := m["html"]; ok {
		v.HTML, _ = c.text(f, true)
	}
	return v
}

// text reads a template text and checks it with check, mapping the error
// position inside the text onto the YAML file.
func (c *compiler) text(f field, html bool) (string, bool) {
	n, ok := c.scalar(f, "a text")
	if !ok {
		return "", false
	}
	if err := c.checkText(n.Value, html); err != nil {
		re, _ := err.(*rules.Error)
		if re == nil {
			re = &rules.Error{Line: 1, Column: 1, Msg: err.Error()}
		}
		line, col := c.scalarPos(n, re.Line, re.Column)
		c.errorAt(line, col, fmt.Sprintf("%s: %s", f.key.Value, re.Msg))
		return "", false
	}
	return n.Value, true
}

// checkTemplateUse checks sends against templates: each sent template
// exists, email templates have a subject in every locale, and every
// template is sent somewhere.
func (c *compiler) checkTemplateUse() {
	declared := make([]string, 0, len(c.tplNodes))
	for name := range c.tplNodes {
		declared = append(declared, name)
	}
	sort.Strings(declared)
	sent := map[string]bool{}
	subjectChecked := map[string]bool{}
	for _, s := range c.sends {
		sent[s.template] = true
		if _, ok := c.tplNodes[s.template]; !ok {
			c.errorf(s.node, "unknown template %q%s; %s", s.template, didYouMean(s.template, declared), templateList(declared))
			continue
		}
		if s.channel != ChannelEmail || subjectChecked[s.template] {
			continue
		}
		subjectChecked[s.template] = true
		for _, ref := range c.variantRefs[s.template] {
			if !ref.hasSubject {
				c.errorf(ref.node, "template %q is sent by email (line %d) but its %q variant has no subject", s.template, s.node.Line, ref.locale)
			}
		}
	}
	for _, name := range declared {
		if !sent[name] && !c.unreadSend {
			c.errorf(c.tplNodes[name], "template %q is defined but never sent", name)
		}
	}
}

// maxListedTemplates bounds the templates an unknown-template error lists.
const maxListedTemplates = 12

// templateList names the templates a playbook defines, for an error about
// one it does not.
func templateList(declared []string) string {
	switch len(declared) {
	case 0:
		return "this playbook defines no templates (add it under templates:)"
	case 1:
		return "the only template in this playbook is " + declared[0]
	}
	if len(declared) > maxListedTemplates {
		return fmt.Sprintf("the templates in this playbook are %s and %d more", strings.Join(declared[:maxListedTemplates], ", "), len(declared)-maxListedTemplates)
	}
	return "the templates in this playbook are " + strings.Join(declared[:len(declared)-1], ", ") + " and " + declared[len(declared)-1]
}
