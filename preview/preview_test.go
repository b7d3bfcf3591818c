package preview

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

var at = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

func onboarding(t *testing.T) *engine.Plan {
	t.Helper()
	p, err := engine.CompileFile("../playbooks/onboarding.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// chosen returns the variant a send would give the customer.
func chosen(t *testing.T, r *Result, name string) Variant {
	t.Helper()
	for _, tp := range r.Templates {
		if tp.Name != name {
			continue
		}
		for _, v := range tp.Variants {
			if v.Locale == tp.Chosen {
				return v
			}
		}
	}
	t.Fatalf("no chosen variant of %s in %+v", name, r.Templates)
	return Variant{}
}

// A zh and an en customer each get their own variant of the welcome,
// rendered with their name and the unsubscribe link, and nothing is
// flagged.
func TestPreviewZhAndEn(t *testing.T) {
	for _, c := range []struct {
		customer     rules.Customer
		subject, txt string
	}{
		{rules.Customer{ID: "c-1", Name: "李雷", Locale: "zh-CN"}, "李雷，欢迎加入会员俱乐部",
			"李雷，您好：\n\n感谢您的加入。从今天起，每笔订单都能累积积分，会员活动也会第一时间通知您。\n\n退订：https://example.invalid/u/preview\n"},
		{rules.Customer{ID: "c-2", Name: "Ada", Locale: "en-GB"}, "Welcome to the club, Ada",
			"Hi Ada,\n\nthank you for joining us. From today you collect points on every order,\nand you will hear about member events before anyone else.\n\nUnsubscribe: https://example.invalid/u/preview\n"},
	} {
		r, err := Render(onboarding(t), Options{Customer: c.customer, Template: "welcome", At: at})
		if err != nil {
			t.Fatal(err)
		}
		v := chosen(t, r, "welcome")
		if v.Rendered.Subject != c.subject || v.Rendered.Text != c.txt {
			t.Errorf("%s: subject %q, text %q", c.customer.Locale, v.Rendered.Subject, v.Rendered.Text)
		}
		if f := r.Flags(); len(f) != 0 {
			t.Errorf("%s: flags %q", c.customer.Locale, f)
		}
	}
}

// A customer whose locale no variant serves is flagged with the fallback
// they get; a placeholder that renders empty is flagged per variant and
// part; the command's --locale overrides the customer's.
func TestPreviewFlags(t *testing.T) {
	r, err := Render(onboarding(t), Options{Customer: rules.Customer{ID: "c-3", Locale: "zh-CN"}, Locale: "de", Template: "welcome", At: at})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`template welcome has no variant for locale "de": the customer gets en, the fallback`,
		"template welcome [en] subject: {{ customer.name }} renders empty",
		"template welcome [en] text: {{ customer.name }} renders empty",
		"template welcome [zh] subject: {{ customer.name }} renders empty",
		"template welcome [zh] text: {{ customer.name }} renders empty",
	}
	if got := r.Flags(); !slices.Equal(got, want) {
		t.Errorf("flags:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	out := r.String()
	if !strings.Contains(out, "  [en] ← this customer's\n    subject: Welcome to the club, \n") || !strings.Contains(out, "5 flags\n  ! template welcome has no variant") {
		t.Errorf("output:\n%s", out)
	}
}

// A template that reads the coupon gets the one the playbook's coupon
// step issues, its value by the step's rule.
func TestPreviewCoupon(t *testing.T) {
	r, err := Render(onboarding(t), Options{Customer: rules.Customer{ID: "c-4", Name: "Bo", Locale: "en"}, Template: "first_order_gift", At: at})
	if err != nil {
		t.Fatal(err)
	}
	if r.Coupon == nil || r.Coupon.Code != "HELLO-PREVIEW" || r.Coupon.Value != 10 || !r.Coupon.ExpiresAt.Equal(at.Add(14*24*time.Hour)) {
		t.Fatalf("coupon %+v", r.Coupon)
	}
	if v := chosen(t, r, "first_order_gift"); !strings.Contains(v.Rendered.Subject+v.Rendered.Text, "HELLO-PREVIEW") {
		t.Errorf("no coupon code in %+v", v.Rendered)
	}
	if _, err := Render(onboarding(t), Options{Template: "nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown template: %v", err)
	}
}
