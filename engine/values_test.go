package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// An unset date (the zero time) renders as nothing, in text, HTML and task
// titles alike, never as 0001-01-01; a set one as its date.
func TestRenderUnsetDateIsEmpty(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	unset := rules.NewEnv(rules.Customer{Name: "Ada"}, rules.Event{Name: "purchase"}, now)
	for _, src := range []string{
		"{{ customer.birthday }}", "{{ customer.last_purchase_at }}", "{{ customer.signup_at }}",
		"{{ coupon.expires_at }}", "{{ event.time }}",
	} {
		got, err := RenderText("["+src+"]", &unset)
		if err != nil || got != "[]" {
			t.Errorf("RenderText(%s) with the date unset = %q, %v; want []", src, got, err)
		}
	}
	got, err := RenderText("Hi {{ customer.name }}, born {{ customer.birthday }}, last order {{ customer.last_purchase_at }}.", &unset)
	if want := "Hi Ada, born , last order ."; err != nil || got != want {
		t.Errorf("RenderText = %q, %v; want %q", got, err, want)
	}
	r, err := RenderMessage(Message{Subject: "{{ customer.birthday }}", Text: "x", HTML: "<p>{{ customer.birthday }}</p>"}, &unset)
	if err != nil || r.Subject != "" || r.HTML != "<p></p>" || strings.Contains(r.HTML+r.Subject, "0001") {
		t.Errorf("RenderMessage = %+v, %v", r, err)
	}

	set := rules.NewEnv(rules.Customer{Birthday: time.Date(1990, 4, 12, 0, 0, 0, 0, time.UTC), LastPurchaseAt: time.Date(2026, 2, 20, 15, 4, 0, 0, time.UTC)}, rules.Event{}, now)
	got, err = RenderText("{{ customer.birthday }} {{ customer.last_purchase_at }}", &set)
	if want := "1990-04-12 2026-02-20"; err != nil || got != want {
		t.Errorf("RenderText with dates set = %q, %v; want %q", got, err, want)
	}
}

func TestCheckValues(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		value float64
		want  string
	}{
		{"percent", 250, "coupon value 250 is over 100 % for a percent coupon"},
		{"percent", 100, ""},
		{"percent", 0.5, ""},
		{"percent", 0, "coupon value 0 is not more than 0; a coupon must be worth something"},
		{"amount", 1e9, ""},
		{"amount", 1e9 + 0.5, "coupon value 1000000000.5 is over 1000000000 for an amount coupon"},
		{"amount", -3.25, "coupon value -3.25 is not more than 0; a coupon must be worth something"},
		{"", 5, `coupon kind "" is not percent or amount`},
	} {
		err := CheckCouponValue(tc.kind, tc.value)
		if got := errString(err); got != tc.want {
			t.Errorf("CheckCouponValue(%q, %v) = %q, want %q", tc.kind, tc.value, got, tc.want)
		}
	}
	for delta, want := range map[int64]string{
		1: "", -1: "", MaxPoints: "", -MaxPoints: "",
		0:              "points amount 0 is not more than 0; award or deduct a positive number of points",
		MaxPoints + 1:  "points amount 1000000001 is over 1000000000, the most one step may award or deduct",
		-MaxPoints - 1: "points amount 1000000001 is over 1000000000, the most one step may award or deduct",
		-1 << 63:       "points amount 9223372036854775808 is over 1000000000, the most one step may award or deduct",
	} {
		if got := errString(CheckPointsDelta(delta)); got != want {
			t.Errorf("CheckPointsDelta(%d) = %q, want %q", delta, got, want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// The compiler holds fixed values to the bounds the activities apply to
// computed ones.
func TestCompileValueBounds(t *testing.T) {
	base := "playbook: t\nstage: loyalty\ntrigger: { manual: true }\nsteps:\n"
	for step, want := range map[string]string{
		"  - coupon: { kind: percent, value: 150, expires: 7d }\n":           "t.yaml:5:37: value: a percent coupon must be at most 100, got 150",
		"  - coupon: { kind: amount, value: 2000000000, expires: 7d }\n":     "t.yaml:5:36: value: an amount coupon must be at most 1000000000, got 2000000000",
		"  - points: { award: 1000000001, reason: bonus }\n":                 "t.yaml:5:22: award: one step may award or deduct at most 1000000000 points, got 1000000001",
		"  - points: { deduct: 5e9, reason: fee }\n":                         "t.yaml:5:23: deduct: one step may award or deduct at most 1000000000 points, got 5e9",
		"  - points: { deduct: 0, reason: fee }\n":                           "t.yaml:5:23: deduct: must be more than 0, got 0",
		"  - coupon: { kind: amount, value: 1000000000, expires: 7d }\n":     "",
		"  - points: { award: 1000000000, reason: bonus }\n":                 "",
		"  - points: { award: \"customer.points * 1000\", reason: bonus }\n": "",
	} {
		_, err := Compile("t.yaml", []byte(base+step))
		if got := errString(err); (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("%s: err = %q, want %q", strings.TrimSpace(step), got, want)
		}
	}
}
