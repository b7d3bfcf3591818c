package engine

import (
	"errors"
	"strings"
	"testing"
)

// messageCases are the errors of issue #11 item 8, "errors in the
// marketer's words": each playbook with every diagnostic it must produce,
// as "line:col: message".
var messageCases = []struct {
	name string
	src  string
	want []string
}{
	{
		name: "tab indenting a key",
		src:  "playbook: t\nstage: nurture\ntrigger:\n\tevent: signup\nsteps:\n  - exit: done\n",
		want: []string{"4:1: tabs cannot indent YAML; use spaces"},
	},
	{
		name: "tab after spaces, reported by YAML on the line before",
		src:  "playbook: t\nstage: nurture\ntrigger:\n  event: signup\n  \twhen: customer.tier == \"gold\"\nsteps:\n  - exit: done\n",
		want: []string{"5:3: tabs cannot indent YAML; use spaces"},
	},
	{
		name: "tab indenting a list item",
		src:  "playbook: t\nstage: nurture\ntrigger: { event: signup }\nsteps:\n\t- exit: done\n",
		want: []string{"5:1: tabs cannot indent YAML; use spaces"},
	},
	{
		name: "tab after a list dash",
		src:  "playbook: t\nstage: nurture\ntrigger: { event: signup }\nsteps:\n  - wait: 1d\n  -\texit: done\n",
		want: []string{"6:4: tabs cannot indent YAML; use spaces"},
	},
	{
		name: "tab indenting a block scalar",
		src:  "playbook: t\nstage: nurture\ntrigger:\n  every: 24h\n  where: |\n    customer.order_count > 0 &&\n\tcustomer.points > 10\nsteps:\n  - exit: done\n",
		want: []string{"7:1: tabs cannot indent YAML; use spaces"},
	},
	{
		name: "a tab between a key and its value is not indentation",
		src:  "playbook: t\nstage:\tnurture\ntrigger: { event: signup }\nsteps:\n  - exti: done\n",
		want: []string{
			`5:5: unknown key "exti" in step (did you mean "exit"?)`,
			"5:5: step has no action; add one of send, wait, if, split, update, points, coupon, task, goto, exit",
		},
	},
	{
		name: "text field compared with a number",
		src: `playbook: t
stage: nurture
trigger: { event: purchase, when: customer.tier == 3 }
steps:
  - exit: done
`,
		want: []string{`3:49: when: customer.tier is text; compare it with text, like customer.tier == "gold"`},
	},
	{
		name: "number field compared with a text",
		src: `playbook: t
stage: nurture
trigger: { event: purchase }
steps:
  - if: customer.points > "100"
    then:
      - exit: done
`,
		want: []string{"5:25: if: customer.points is a number; compare it with a number, like customer.points > 100"},
	},
	{
		name: "number field compared with a text, field on the right",
		src: `playbook: t
stage: nurture
trigger: { event: purchase, when: '"100" < event.amount' }
steps:
  - exit: done
`,
		want: []string{`3:42: when: event.amount is a number; compare it with a number, like 100 < event.amount`},
	},
	{
		name: "yes/no field compared with a text",
		src: `playbook: t
stage: nurture
trigger:
  every: 1d
  where: customer.churn_risk == "yes"
steps:
  - exit: done
`,
		want: []string{"5:30: where: customer.churn_risk is a yes/no value; compare it with true or false, like customer.churn_risk == true"},
	},
	{
		name: "date field compared with a text and with a number",
		src: `playbook: t
stage: nurture
trigger:
  every: 1d
  where: customer.signup_at > "2024-01-01" || customer.last_purchase_at > 90
steps:
  - exit: done
`,
		want: []string{`5:29: where: customer.signup_at is a date/time; compare it with a date/time, like customer.signup_at > date("2024-01-01")`},
	},
	{
		name: "date field compared with a number",
		src: `playbook: t
stage: nurture
trigger:
  every: 1d
  where: customer.last_purchase_at > 90
steps:
  - exit: done
`,
		want: []string{`5:36: where: customer.last_purchase_at is a date/time; compare it with a date/time, like customer.last_purchase_at > date("2026-01-01"), or count the days with daysSince(customer.last_purchase_at) > 90`},
	},
	{
		name: "now minus a text",
		src: `playbook: t
stage: nurture
trigger: { event: purchase }
goal: { event: purchase, within: 7d, when: 'event.time > now - "3d"' }
steps:
  - exit: done
`,
		want: []string{`4:62: when: now is a date/time; subtract a duration, like now - duration("3d")`},
	},
	{
		name: "list compared with a text",
		src: `playbook: t
stage: nurture
trigger: { event: purchase }
entry: { audience: customer.tags == "vip" }
steps:
  - exit: done
`,
		want: []string{`4:34: audience: customer.tags is a list of text; to check for an entry, write "vip" in customer.tags`},
	},
	{
		name: "now called like a function",
		src: `playbook: t
stage: nurture
trigger: { event: purchase }
exit_when: daysSince(customer.signup_at) > 3 && customer.birthday < now()
steps:
  - exit: done
`,
		want: []string{"4:69: exit_when: now is a value; write now, not now()"},
	},
	{
		name: "unknown template with a suggestion lists the templates",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
templates:
  welcome:
    en: { text: "Hi" }
  reminder:
    en: { text: "Still there?" }
  last_call:
    en: { text: "Last call" }
steps:
  - send: { channel: sms, template: welcome }
  - send: { channel: sms, template: reminder }
  - send: { channel: sms, template: last_cal }
`,
		want: []string{
			`9:3: template "last_call" is defined but never sent`,
			`14:37: unknown template "last_cal" (did you mean "last_call"?); the templates in this playbook are last_call, reminder and welcome`,
		},
	},
	{
		name: "unknown template in a playbook without templates",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
steps:
  - send: { channel: sms, template: welcome }
`,
		want: []string{`5:37: unknown template "welcome"; this playbook defines no templates (add it under templates:)`},
	},
	{
		name: "number rule given a date",
		src: base + `  - points: { award: customer.signup_at, reason: bonus }
`,
		want: []string{"9:22: award: the rule must give a number, but customer.signup_at is a date/time; count the days with daysSince(customer.signup_at)"},
	},
	{
		name: "a bare word compared with a text field",
		src: `playbook: t
stage: nurture
trigger: { event: purchase, when: event.currency == EUR }
steps:
  - exit: done
`,
		want: []string{`3:53: when: there is no "EUR" in rules; to compare with the text EUR, put it in quotes: event.currency == "EUR"`},
	},
	{
		name: "misspelt function",
		src: `playbook: t
stage: nurture
trigger: { event: purchase, when: daysSinc(customer.signup_at) > 3 }
steps:
  - exit: done
`,
		want: []string{`3:35: when: there is no function "daysSinc" (did you mean "daysSince"?)`},
	},
	{
		name: "a built-in given the wrong kind of value",
		src: `playbook: t
stage: nurture
trigger: { event: purchase, when: daysSince(customer.tier) > 3 }
steps:
  - exit: done
`,
		want: []string{`3:54: when: daysSince() takes a date/time, but customer.tier is text; write it like daysSince(customer.last_purchase_at)`},
	},
	{
		name: "a built-in without its value",
		src: `playbook: t
stage: nurture
trigger: { event: purchase, when: localHour() > 9 }
steps:
  - exit: done
`,
		want: []string{`3:35: when: localHour() is missing a value; write it like localHour(customer.timezone)`},
	},
	{
		name: "a single equals sign",
		src: `playbook: t
stage: nurture
trigger: { event: purchase, when: customer.tier = "gold" }
steps:
  - exit: done
`,
		want: []string{`3:49: when: a single = does not compare; write == to compare two values`},
	},
	{
		name: "AND in capitals",
		src: `playbook: t
stage: nurture
trigger: { event: purchase, when: event.amount > 10 AND customer.tier == "gold" }
steps:
  - exit: done
`,
		want: []string{`3:53: when: write AND in lowercase: and, or, not (or &&, ||, !)`},
	},
	{
		name: "a condition that is a number",
		src: `playbook: t
stage: nurture
trigger: { event: purchase }
steps:
  - if: customer.points
    then:
      - exit: done
`,
		want: []string{"5:9: if: the rule must be a condition (true or false), but customer.points is a number; compare it, like customer.points > 0"},
	},
}

func TestMarketerMessages(t *testing.T) {
	for _, tc := range messageCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile("t.yaml", []byte(tc.src))
			var ds Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("Compile = %+v, %v; want Diagnostics", p, err)
			}
			var got []string
			for _, d := range ds {
				got = append(got, strings.TrimPrefix(d.String(), "t.yaml:"))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("diagnostics:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
		})
	}
}

// TestTabPointsAtTheTab: wherever the tab is in the indentation, the error
// is at the tab's own line and column, whatever line yaml.v3 reports.
func TestTabPointsAtTheTab(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(`playbook: t
stage: nurture
trigger:
  event: signup
  when: customer.points > 10
templates:
  hi:
    en:
      text: |
        Hello
        there
steps:
  - send: { channel: sms, template: hi }
  - wait: 1d
  - exit: done
`, "\n"), "\n")
	checked := 0
	for i := 2; i < len(lines); i++ {
		indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " -"))
		for col := 0; col < indent; col++ {
			if lines[i][col] == '-' {
				continue
			}
			changed := append([]string(nil), lines...)
			changed[i] = lines[i][:col] + "\t" + lines[i][col+1:]
			src := strings.Join(changed, "\n") + "\n"
			_, err := Compile("t.yaml", []byte(src))
			var ds Diagnostics
			if !errors.As(err, &ds) {
				// A tab that yaml.v3 accepts (inside a block scalar's
				// content, after its indentation) is not an error.
				continue
			}
			checked++
			if len(ds) != 1 || ds[0].Msg != "tabs cannot indent YAML; use spaces" || ds[0].Line != i+1 || ds[0].Col != col+1 {
				t.Errorf("tab at %d:%d:\n%s\ngot %v", i+1, col+1, src, ds)
			}
		}
	}
	t.Logf("%d tab positions refused", checked)
	if checked < 30 {
		t.Errorf("only %d tab positions were refused; the test no longer exercises yaml.v3's tab errors", checked)
	}
}

// TestCompileAllDuplicateNames: two files with one playbook name are an
// error on the second, naming the first file and line; the second plan is
// dropped, the first kept.
func TestCompileAllDuplicateNames(t *testing.T) {
	a := "# the welcome journey\nplaybook: welcome\nstage: care\ntrigger: { manual: true }\nsteps:\n  - exit: done\n"
	b := "playbook:   welcome\nstage: care\ntrigger: { manual: true }\nsteps:\n  - exit: done\n"
	c := strings.Replace(a, "welcome\n", "other\n", 1)
	plans, errs := CompileAll([]string{"a.yaml", "c.yaml", "b.yaml", "d.yaml"}, [][]byte{[]byte(a), []byte(c), []byte(b), []byte(a)})
	if errs[0] != nil || errs[1] != nil || plans[0] == nil || plans[1] == nil {
		t.Fatalf("first and other: %v, %v", errs[0], errs[1])
	}
	for i, want := range map[int]string{
		2: `b.yaml:1:13: playbook: the name "welcome" is already used by a.yaml:2:11; give each playbook its own name`,
		3: `d.yaml:2:11: playbook: the name "welcome" is already used by a.yaml:2:11; give each playbook its own name`,
	} {
		if plans[i] != nil || errs[i] == nil || errs[i].Error() != want {
			t.Errorf("file %d: plan %v, error %v; want %s", i, plans[i] != nil, errs[i], want)
		}
	}
}
