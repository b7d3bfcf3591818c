package engine

import (
	"errors"
	"strings"
	"testing"
)

// base is a minimal valid playbook the broken cases start from.
const base = `playbook: t
stage: nurture
trigger: { event: signup }
templates:
  hi:
    en: { subject: "Hi", text: "Hello {{ customer.name }}" }
steps:
  - send: { channel: email, template: hi }
`

// brokenCases are invalid playbooks, each with every diagnostic it must
// produce as "line:col: message", in order.
var brokenCases = []struct {
	name string
	src  string
	want []string
}{
	{
		name: "escapes in a double-quoted rule",
		src: `playbook: t
stage: nurture
trigger: { event: purchase, when: "customer.tier == \"gold\" && customer.teir == \"x\"" }
steps:
  - exit: done
`,
		want: []string{
			`3:74: when: customer has no field "teir" (did you mean "tier"?)`,
		},
	},
	{
		name: "columns count characters, not bytes",
		src: `playbook: t
stage: nurture
trigger: { event: purchase, when: "event.category == '鞋' && event.amont > 1" }
entry: { audience: "customer.name == '张三'", holdout: 1x }
steps:
  - exit: done
`,
		want: []string{
			`3:67: when: event has no field "amont" (did you mean "amount"?)`,
			`4:54: holdout: expected a number, got "1x"`,
		},
	},
	{
		name: "yaml syntax error",
		src: `playbook: t
stage: nurture
trigger: { event: signup
steps:
  - exit: done
`,
		want: []string{
			"3:1: YAML syntax error: did not find expected ',' or '}'",
		},
	},
	{
		name: "empty file",
		src:  ``,
		want: []string{
			"1:1: playbook is empty",
		},
	},
	{
		name: "top level is a list",
		src: `- playbook: t
`,
		want: []string{
			"1:1: playbook: expected a mapping, got a list",
		},
	},
	{
		name: "unknown top-level key with suggestion",
		src: base + `exit_whn: customer.churn_risk
`,
		want: []string{
			"9:1: unknown key \"exit_whn\" in playbook (did you mean \"exit_when\"?)",
		},
	},
	{
		name: "misspelled key suppresses missing required",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
stpes:
  - exit: done
`,
		want: []string{
			"4:1: unknown key \"stpes\" in playbook (did you mean \"steps\"?)",
		},
	},
	{
		name: "duplicate key",
		src: base + `stage: care
`,
		want: []string{
			"9:1: duplicate key \"stage\" in playbook (first at line 2)",
		},
	},
	{
		name: "missing trigger",
		src: `playbook: t
stage: nurture
steps:
  - exit: done
`,
		want: []string{
			"1:1: missing required key \"trigger\" in playbook",
		},
	},
	{
		name: "two trigger forms",
		src: `playbook: t
stage: nurture
trigger: { event: signup, every: 24h, where: "true" }
steps:
  - exit: done
`,
		want: []string{
			"3:27: trigger: use exactly one of event, events, every, cron, date, manual",
		},
	},
	{
		name: "no trigger form",
		src: `playbook: t
stage: nurture
trigger: { where: "true" }
steps:
  - exit: done
`,
		want: []string{
			"3:1: trigger: use exactly one of event, events, every, cron, date, manual",
		},
	},
	{
		name: "segment trigger without where and too often",
		src: `playbook: t
stage: nurture
trigger: { every: 30m }
steps:
  - exit: done
`,
		want: []string{
			"3:12: trigger: a segment trigger (every) needs a where rule choosing the customers",
			"3:19: every: 30m is too often; segment scans run at most once an hour (every: 1h or more)",
		},
	},
	{
		name: "bad cron and when on a segment trigger",
		src: `playbook: t
stage: nurture
trigger: { cron: "0 9 * *", where: "true", when: "true" }
steps:
  - exit: done
`,
		want: []string{
			"3:18: cron: \"0 9 * *\" is not a cron spec; expected five fields: minute hour day-of-month month day-of-week, e.g. \"0 9 * * 1\"",
			"3:44: when is only allowed with an event trigger (with events, give each event its own when)",
		},
	},
	{
		name: "bad date trigger and time of day",
		src: `playbook: t
stage: care
trigger: { date: birthdy, at: "9am" }
steps:
  - exit: done
`,
		want: []string{
			"3:18: date: \"birthdy\" is not one of birthday, signup_anniversary (did you mean \"birthday\"?)",
			"3:31: at: bad time of day \"9am\": expected HH:MM (24h) like \"09:00\"",
		},
	},
	{
		name: "bad stage and name",
		src: `playbook: Win Back
stage: nurtur
trigger: { manual: true }
steps:
  - exit: done
`,
		want: []string{
			"1:11: playbook: name \"Win Back\" must start with a lowercase letter and contain only a-z, 0-9, _ and - (at most 63 characters)",
			"2:8: stage: \"nurtur\" is not one of onboard, nurture, loyalty, reactivate, care, service (did you mean \"nurture\"?)",
		},
	},
	{
		name: "misspelled customer field in a rule",
		src: `playbook: t
stage: nurture
trigger: { event: signup, when: customer.teir == "gold" }
steps:
  - exit: done
`,
		want: []string{
			"3:42: when: customer has no field \"teir\" (did you mean \"tier\"?)",
		},
	},
	{
		name: "type error in a quoted rule",
		src: `playbook: t
stage: nurture
trigger:
  event: purchase
  when: 'event.amount + "x" > 3'
steps:
  - exit: done
`,
		want: []string{
			`5:23: when: event.amount is a number and "x" is text; + adds two numbers or joins two texts, not one of each`,
		},
	},
	{
		name: "error in a block scalar rule",
		src: `playbook: t
stage: nurture
trigger:
  every: 24h
  where: |
    customer.order_count > 0 &&
      customer.days_since_lst > 3
steps:
  - exit: done
`,
		want: []string{
			"7:16: where: customer has no field \"days_since_lst\"",
		},
	},
	{
		name: "rule is not bool",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
exit_when: customer.tier
steps:
  - exit: done
`,
		want: []string{
			`4:12: exit_when: the rule must be a condition (true or false), but customer.tier is text; compare it, like customer.tier == "gold"`,
		},
	},
	{
		name: "unknown name in a rule",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
entry: { audience: custmer.tier == "gold" }
steps:
  - exit: done
`,
		want: []string{
			`4:20: audience: there is no "custmer" in rules (did you mean "customer"?)`,
		},
	},
	{
		name: "reentry after without cooldown and holdout out of range",
		src: `playbook: t
stage: nurture
trigger: { manual: true }
entry: { reentry: after, holdout: 60 }
steps:
  - exit: done
`,
		want: []string{
			"4:19: reentry: after needs a cooldown (e.g. cooldown: 180d)",
			"4:35: holdout: 60% is out of range; keep between 0 and 50 percent as a control group",
		},
	},
	{
		name: "cooldown without after",
		src: `playbook: t
stage: nurture
trigger: { manual: true }
entry: { reentry: always, cooldown: 30d }
steps:
  - exit: done
`,
		want: []string{
			"4:27: cooldown is only allowed with reentry: after",
		},
	},
	{
		name: "goal without within",
		src: `playbook: t
stage: nurture
trigger: { manual: true }
goal: { event: purchase }
steps:
  - exit: done
`,
		want: []string{
			"4:7: missing required key \"within\" in goal",
		},
	},
	{
		name: "policies",
		src: `playbook: t
stage: nurture
trigger: { manual: true }
policies:
  quiet_hours: { start: "21:00", end: "21:00" }
  frequency_cap: { max: 0, per: 7d, action: drop }
steps:
  - exit: done
`,
		want: []string{
			"5:39: quiet_hours: start and end are both 21:00; the window would be empty",
			"6:25: max: must be a whole number of at least 1, got 0",
			"6:45: action: \"drop\" is not one of skip, defer",
		},
	},
	{
		name: "unknown template",
		src: base + `  - send: { channel: sms, template: hey }
`,
		want: []string{
			`9:37: unknown template "hey"; the only template in this playbook is hi`,
		},
	},
	{
		name: "template defined but never sent",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
templates:
  hi:
    en: { text: "Hello" }
  bye:
    en: { text: "Bye" }
steps:
  - send: { channel: sms, template: hi }
`,
		want: []string{
			"7:3: template \"bye\" is defined but never sent",
		},
	},
	{
		name: "template missing en",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
templates:
  hi:
    zh: { text: "你好" }
steps:
  - send: { channel: sms, template: hi }
`,
		want: []string{
			"5:3: template \"hi\" has no \"en\" locale; every template needs English as the fallback",
		},
	},
	{
		name: "email template without subject",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
templates:
  hi:
    en: { subject: "Hi", text: "Hello" }
    zh: { text: "你好" }
steps:
  - send: { channel: email, template: hi }
`,
		want: []string{
			"7:5: template \"hi\" is sent by email (line 9) but its \"zh\" variant has no subject",
		},
	},
	{
		name: "bad locale",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
templates:
  hi:
    en: { text: "Hello" }
    zh_TW: { text: "你好" }
steps:
  - send: { channel: sms, template: hi }
`,
		want: []string{
			"7:5: template \"hi\": write the locale \"zh_TW\" as \"zh-TW\"",
		},
	},
	{
		name: "unclosed placeholder",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
templates:
  hi:
    en: { text: "Hello {{ customer.name " }
steps:
  - send: { channel: sms, template: hi }
`,
		want: []string{
			"6:24: text: unclosed placeholder: {{ without a matching }}",
		},
	},
	{
		name: "placeholder with a bad field",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
templates:
  hi:
    en: { text: "你好 {{ customer.nme }}" }
steps:
  - send: { channel: sms, template: hi }
`,
		want: []string{
			"6:33: text: placeholder: customer has no field \"nme\" (did you mean \"name\"?)",
		},
	},
	{
		name: "placeholder in a block text",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
templates:
  hi:
    en:
      text: |
        Hello,
        your points: {{ customer.pionts }}
steps:
  - send: { channel: sms, template: hi }
`,
		want: []string{
			"9:34: text: placeholder: customer has no field \"pionts\" (did you mean \"points\"?)",
		},
	},
	{
		name: "placeholder that cannot be printed",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
templates:
  hi:
    en: { text: "Tags: {{ customer.tags }}" }
steps:
  - send: { channel: sms, template: hi }
`,
		want: []string{
			`6:27: text: placeholder: cannot print a list of text in a message; print one entry, like customer.tags[0], or join them with join(customer.tags, ", ")`,
		},
	},
	{
		name: "duplicate step id",
		src: base + `  - id: a
    wait: 1d
  - id: a
    exit: done
`,
		want: []string{
			"11:9: duplicate step id \"a\" (first used at line 9)",
		},
	},
	{
		name: "goto to missing step",
		src: base + `  - id: again
    wait: 1d
  - goto: agian
`,
		want: []string{
			"11:11: goto: there is no step \"agian\" (did you mean \"again\"?)",
		},
	},
	{
		name: "split weights not 100",
		src: base + `  - split:
      - { name: a, weight: 50 }
      - { name: b, weight: 40 }
`,
		want: []string{
			"9:5: split: weights add up to 90, not 100",
		},
	},
	{
		name: "split with one branch and duplicate names",
		src: base + `  - split:
      - { name: a, weight: 100 }
  - split:
      - { name: a, weight: 50 }
      - { name: a, weight: 50 }
`,
		want: []string{
			"9:5: split: needs at least two branches, got 1",
			"13:17: split: duplicate branch name \"a\"",
		},
	},
	{
		name: "bad duration",
		src: base + `  - wait: 3x
`,
		want: []string{
			"9:11: wait: bad duration \"3x\": expected a number and a unit (mo, w, d, h, m or s) like 3d, 6mo or 1d12h",
		},
	},
	{
		name: "duration of a list",
		src: base + `  - wait: [3d]
`,
		want: []string{
			"9:11: wait: expected a duration like 3d, { until: \"09:00\" } or { event: purchase, timeout: 7d }, got a list",
		},
	},
	{
		name: "bad time of day",
		src: base + `  - wait: { until: "25:00" }
`,
		want: []string{
			"9:20: until: bad time of day \"25:00\": expected HH:MM (24h) like \"09:00\"",
		},
	},
	{
		name: "wait for event without timeout",
		src: base + `  - wait: { event: purchase }
    on_event:
      - exit: converted
`,
		want: []string{
			"9:11: wait: waiting for an event needs a timeout (e.g. timeout: 7d)",
		},
	},
	{
		name: "on_event on a plain wait",
		src: base + `  - wait: 2d
    on_timeout:
      - exit: timeout
`,
		want: []string{
			"10:5: on_timeout is only allowed with a wait for an event",
		},
	},
	{
		name: "unreachable step after exit",
		src: base + `  - exit: done
  - wait: 1d
`,
		want: []string{
			"10:5: step \"wait_3\" is unreachable: the step before it always jumps away or exits, and no goto leads here",
		},
	},
	{
		name: "unreachable after if whose branches all exit",
		src: base + `  - if: customer.churn_risk
    then:
      - exit: risky
    else:
      - exit: safe
  - wait: 1d
`,
		want: []string{
			"14:5: step \"wait_5\" is unreachable: the step before it always jumps away or exits, and no goto leads here",
		},
	},
	{
		name: "loop without wait",
		src: base + `  - id: top
    if: customer.points > 3
    then:
      - goto: top
`,
		want: []string{
			"12:9: step \"goto_3\" loops back without waiting (through top, goto_3); put a wait step in the loop",
		},
	},
	{
		name: "loop through two gotos",
		src: base + `  - id: a
    goto: b
  - id: b
    goto: a
`,
		want: []string{
			"9:5: step \"a\" loops back without waiting (through a, b); put a wait step in the loop",
		},
	},
	{
		name: "step with two actions",
		src: base + `  - wait: 1d
    exit: done
`,
		want: []string{
			"10:5: step has two actions, wait and exit; put each in its own step",
		},
	},
	{
		name: "step with no action",
		src: base + `  - id: lonely
`,
		want: []string{
			"9:5: step has no action; add one of send, wait, if, split, update, points, coupon, task, goto, exit",
		},
	},
	{
		name: "then without if and if without then",
		src: base + `  - wait: 1d
    then:
      - exit: x
  - if: customer.churn_risk
`,
		want: []string{
			"10:5: then is only allowed in an if step",
			"12:5: if step needs a then list",
		},
	},
	{
		name: "update with bad field and stage",
		src: base + `  - update: { set: { teir: "'gold'" }, stage: gone }
`,
		want: []string{
			"9:22: set: cannot set \"teir\"; use one of name, locale, timezone, tier or attrs.<name> (did you mean \"tier\"?)",
			"9:47: stage: \"gone\" is not one of prospect, new, active, loyal, at_risk, lapsed",
		},
	},
	{
		name: "update with unquoted text",
		src: base + `  - update: { set: { tier: gold } }
`,
		want: []string{
			`9:28: tier: there is no field "gold"; to set the text gold, quote it twice: "'gold'"`,
		},
	},
	{
		name: "points with award and deduct",
		src: base + `  - points: { award: 10, deduct: 5, reason: bonus }
`,
		want: []string{
			"9:5: points: use exactly one of award or deduct",
		},
	},
	{
		name: "coupon percent over 100",
		src: base + `  - coupon: { kind: percent, value: 150, expires: 14d }
`,
		want: []string{
			"9:37: value: a percent coupon must be at most 100, got 150",
		},
	},
	{
		name: "coupon value rule of the wrong type",
		src: base + `  - coupon: { kind: amount, value: customer.name, expires: 14d }
`,
		want: []string{
			"9:36: value: the rule must give a number, but customer.name is text",
		},
	},
	{
		name: "task without title and bad priority",
		src: base + `  - task: { assignee: relationship_manager, priority: urgent }
`,
		want: []string{
			"9:11: missing required key \"title\" in task",
			"9:55: priority: \"urgent\" is not one of low, normal, high",
		},
	},
	{
		name: "task title with a bad placeholder",
		src: base + `  - task: { assignee: rm, title: "Call {{ customer.phon }}" }
`,
		want: []string{
			"9:52: title: placeholder: customer has no field \"phon\" (did you mean \"phone\"?)",
		},
	},
	{
		// The template the misspelt key names is not also reported as
		// never sent: that would come first (its line is earlier) and
		// point away from the mistake.
		name: "a send whose template key is misspelt",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
templates:
  hi:
    en: { subject: "Hi", text: "Hello" }
steps:
  - send: { channel: email, tempalte: hi }
`,
		want: []string{
			"8:29: unknown key \"tempalte\" in send (did you mean \"template\"?)",
		},
	},
	{
		name: "an event named as a source sends it",
		src: base + `  - wait: { event: Order Completed, timeout: 3d }
  - wait: { event: "2FA Enabled", timeout: 3d }
`,
		want: []string{
			"9:20: event: \"Order Completed\" is not a valid event name: the event API stores it as order_completed; write that",
			"10:20: event: \"2FA Enabled\" is not a valid event name (a lowercase word like order_completed)",
		},
	},
	{
		name: "bad exit reason",
		src: base + `  - exit: Done Now
`,
		want: []string{
			"9:11: exit: \"Done Now\" is not a valid exit reason (a lowercase word like converted)",
		},
	},
	{
		name: "send with bad channel and unknown key",
		src: base + `  - send: { channel: fax, template: hi, tempalte: hi }
`,
		want: []string{
			"9:22: channel: \"fax\" is not one of email, sms, webhook",
			"9:41: unknown key \"tempalte\" in send (did you mean \"template\"?)",
		},
	},
	{
		name: "html with a bad placeholder",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
templates:
  hi:
    en:
      subject: "Hi"
      text: "Hello"
      html: "<p>{{ event.amount + 'x' }}</p>"
steps:
  - send: { channel: email, template: hi }
`,
		want: []string{
			`9:33: html: placeholder: event.amount is a number and 'x' is text; + adds two numbers or joins two texts, not one of each`,
		},
	},
	{
		name: "wrong scalar types",
		src: `playbook: t
stage: nurture
trigger: { event: signup }
entry: { holdout: ten }
steps:
  - send: { channel: email, template: hi, transactional: maybe }
templates:
  hi:
    en: { subject: "Hi", text: "Hello" }
`,
		want: []string{
			"4:19: holdout: expected a number, got \"ten\"",
			"6:58: transactional: expected true or false, got \"maybe\"",
		},
	},
	{
		name: "misspelled action",
		src: base + `  - wiat: 1d
`,
		want: []string{
			"9:5: unknown key \"wiat\" in step (did you mean \"wait\"?)",
			"9:5: step has no action; add one of send, wait, if, split, update, points, coupon, task, goto, exit",
		},
	},
	{
		name: "auto id clash",
		src: base + `  - id: wait_3
    exit: done
  - wait: 1d
`,
		want: []string{
			"9:9: step id \"wait_3\" is also the automatic id of the step at line 11; choose another id",
		},
	},
	{
		name: "a wait for several events without timeout, with on_event",
		src: `playbook: t
stage: nurture
trigger: { events: [signup, { event: purchase, when: "event.amount > 0" }] }
steps:
  - wait: { for: { purchase: [], visit: { steps: [{ exit: visited }] } } }
    on_event: [{ exit: x }]
`,
		want: []string{
			"5:11: wait: waiting for events needs a timeout (e.g. timeout: 7d)",
			"6:5: on_event is for a wait for one event; in a wait for several, list each event's steps under for",
		},
	},
	{
		name: "a trigger's events must be a list of events",
		src: `playbook: t
stage: nurture
trigger: { events: signup }
steps:
  - exit: done
`,
		want: []string{
			`3:20: events: expected a list of events, like [payment_failed, subscription_cancelled], got "signup"`,
		},
	},
}

func TestBrokenPlaybooks(t *testing.T) {
	if len(brokenCases) < 30 {
		t.Fatalf("only %d broken cases", len(brokenCases))
	}
	for _, tc := range brokenCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile("t.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("compiled without error: %+v", p)
			}
			var ds Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("error is %T, not Diagnostics: %v", err, err)
			}
			var got []string
			for _, d := range ds {
				if d.File != "t.yaml" {
					t.Errorf("diagnostic file %q", d.File)
				}
				got = append(got, strings.TrimPrefix(d.String(), "t.yaml:"))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("diagnostics:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
		})
	}
}

// TestEventNameThatIsAWordCompiles: the hint for names written as sources
// send them ("Order Completed") leaves alone a name that is a word
// already, even one the event API would never store (order__completed):
// it compiled before the hint and must still.
func TestEventNameThatIsAWordCompiles(t *testing.T) {
	src := strings.Replace(base, "trigger: { event: signup }", "trigger: { event: order__completed }", 1)
	if _, err := Compile("t.yaml", []byte(src)); err != nil {
		t.Fatal(err)
	}
}
