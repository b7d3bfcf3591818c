package rules_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rapport-crm/rapport/rules"
)

// TestMessagesInMarketersWords pins the compile errors that expr words in
// Go's terms (mismatched types int64 and string, expected float64, unknown
// name …) as Rapport words them, at expr's position. fix is the rule the
// message suggests, which must itself compile.
func TestMessagesInMarketersWords(t *testing.T) {
	tests := []struct {
		src  string
		kind rules.Kind
		want string
		fix  string
	}{
		// comparisons of a field with a value of another kind
		{`customer.tier == 3`, rules.Bool, `1:15: customer.tier is text; compare it with text, like customer.tier == "gold"`, `customer.tier == "gold"`},
		{`3 == customer.tier`, rules.Bool, `1:3: customer.tier is text; compare it with text, like "gold" == customer.tier`, `"gold" == customer.tier`},
		{`customer.name != 7`, rules.Bool, `1:15: customer.name is text; compare it with text, like customer.name != "Ana"`, `customer.name != "Ana"`},
		{`customer.points > "100"`, rules.Bool, `1:17: customer.points is a number; compare it with a number, like customer.points > 100`, `customer.points > 100`},
		{`event.amount >= 'lots'`, rules.Bool, `1:14: event.amount is a number; compare it with a number, like event.amount >= 100`, `event.amount >= 100`},
		{`customer.churn_risk == "no"`, rules.Bool, `1:21: customer.churn_risk is a yes/no value; compare it with true or false, like customer.churn_risk == false`, `customer.churn_risk == false`},
		{`customer.signup_at > "2024-01-01"`, rules.Bool, `1:20: customer.signup_at is a date/time; compare it with a date/time, like customer.signup_at > date("2024-01-01")`, `customer.signup_at > date("2024-01-01")`},
		{`event.time < "3d"`, rules.Bool, `1:12: event.time is a date/time; compare it with a date/time, like event.time < now - duration("3d")`, `event.time < now - duration("3d")`},
		{`customer.last_purchase_at > 90`, rules.Bool, `1:27: customer.last_purchase_at is a date/time; compare it with a date/time, like customer.last_purchase_at > date("2026-01-01"), or count the days with daysSince(customer.last_purchase_at) > 90`, `daysSince(customer.last_purchase_at) > 90`},
		{`now > 3`, rules.Bool, `1:5: now is a date/time; compare it with a date/time, like now > date("2026-01-01")`, `now > date("2026-01-01")`},
		{`now - customer.signup_at > 3`, rules.Bool, `1:26: now - customer.signup_at is a duration; compare it with a duration, like now - customer.signup_at > duration("3d")`, `now - customer.signup_at > duration("3d")`},
		{`customer.tags == "vip"`, rules.Bool, `1:15: customer.tags is a list of text; to check for an entry, write "vip" in customer.tags`, `"vip" in customer.tags`},
		{`customer.tags != 'vip'`, rules.Bool, `1:15: customer.tags is a list of text; to check for an entry, write 'vip' not in customer.tags`, `'vip' not in customer.tags`},
		{`customer.tags >= 3`, rules.Bool, `1:15: customer.tags is a list of text; to count its entries, write len(customer.tags) >= 3`, `len(customer.tags) >= 3`},
		{`customer.tier == customer.points`, rules.Bool, `1:15: customer.tier is text and customer.points is a number; == compares two values of the same kind`, ``},
		{`"1" > 2`, rules.Bool, `1:5: "1" is text and 2 is a number; > compares two values of the same kind`, ``},

		// other operators
		{`event.time < now - "3d"`, rules.Bool, `1:18: now is a date/time; subtract a duration, like now - duration("3d")`, `event.time < now - duration("3d")`},
		{`event.amount + "x" > 3`, rules.Bool, `1:14: event.amount is a number and "x" is text; + adds two numbers or joins two texts, not one of each`, ``},
		{`customer.points * "2"`, rules.Number, `1:17: customer.points is a number and "2" is text; * works on two numbers`, ``},
		{`customer.points > 1 && customer.tier`, rules.Bool, `1:21: && joins two conditions (true or false), but customer.tier is text`, ``},
		{`not customer.tier`, rules.Bool, `1:1: not turns a condition (true or false) around, but customer.tier is text`, ``},
		{`-customer.tier == "x"`, rules.Bool, `1:1: - needs a number, but customer.tier is text`, ``},
		{`customer.tier contains 3`, rules.Bool, `1:15: contains works on text, but 3 is a number; put the number in quotes, like customer.tier contains "3"`, `customer.tier contains "3"`},
		{`"vip" in customer.tier`, rules.Bool, `1:7: in looks for an entry of a list or a map, but customer.tier is text; to look inside a text, write customer.tier contains "vip"`, `customer.tier contains "vip"`},
		{`3 in customer.tags`, rules.Bool, `1:3: 3 is a number, but customer.tags is a list of text; write "3" in customer.tags`, `"3" in customer.tags`},
		{`customer.tier ? 1 : 2`, rules.Number, `1:10: the condition before ? must be true or false, but customer.tier is text`, ``},
		{`customer.tier.level == 1`, rules.Bool, `1:15: customer.tier is text; it has no field "level"`, ``},
		{`len(customer.points) > 1`, rules.Bool, `1:1: len() counts the entries of a list or a map, or the letters of a text, not a number`, ``},

		// the kind the rule's place needs
		{`customer.tier`, rules.Bool, `1:1: the rule must be a condition (true or false), but customer.tier is text; compare it, like customer.tier == "gold"`, `customer.tier == "gold"`},
		{`customer.tags`, rules.Bool, `1:1: the rule must be a condition (true or false), but customer.tags is a list of text; check it, like len(customer.tags) > 0`, `len(customer.tags) > 0`},
		{`"yes"`, rules.Bool, `1:1: the rule must be a condition (true or false), but it gives text`, ``},
		{`customer.name`, rules.Number, `1:1: the rule must give a number, but customer.name is text`, ``},
		{`customer.birthday`, rules.Number, `1:1: the rule must give a number, but customer.birthday is a date/time; count the days with daysSince(customer.birthday)`, `daysSince(customer.birthday)`},

		// functions and names
		{`now() > customer.signup_at`, rules.Bool, `1:1: now is a value; write now, not now()`, `now > customer.signup_at`},
		{`daysSince(customer.tier) > 3`, rules.Bool, `1:20: daysSince() takes a date/time, but customer.tier is text; write it like daysSince(customer.last_purchase_at)`, `daysSince(customer.last_purchase_at) > 3`},
		{`isBirthday(customer.birthday)`, rules.Bool, `1:21: isBirthday() takes customer, but customer.birthday is a date/time; write it like isBirthday(customer)`, `isBirthday(customer)`},
		{`upper(customer.points) == "X"`, rules.Bool, `1:16: upper() takes text, but customer.points is a number`, ``},
		{`localHour() > 9`, rules.Bool, `1:1: localHour() is missing a value; write it like localHour(customer.timezone)`, `localHour(customer.timezone) > 9`},
		{`localHour(customer.timezone, 2) > 9`, rules.Bool, `1:1: localHour() is given too many values; write it like localHour(customer.timezone)`, `localHour(customer.timezone) > 9`},
		{`custmer.tier == "gold"`, rules.Bool, `1:1: there is no "custmer" in rules (did you mean "customer"?)`, `customer.tier == "gold"`},
		{`event.currency == EUR`, rules.Bool, `1:19: there is no "EUR" in rules; to compare with the text EUR, put it in quotes: event.currency == "EUR"`, `event.currency == "EUR"`},
		{`points > 3`, rules.Bool, `1:1: there is no "points" in rules; a rule reads customer, event, coupon and now`, ``},
		{`dayssince(customer.signup_at) > 3`, rules.Bool, `1:1: there is no function "dayssince" (did you mean "daysSince"?)`, `daysSince(customer.signup_at) > 3`},

		// syntax
		{`customer.tier = "gold"`, rules.Bool, `1:15: a single = does not compare; write == to compare two values`, `customer.tier == "gold"`},
		{`customer.tier is "gold"`, rules.Bool, `1:15: "is" does not fit here; to compare two values, write ==`, ``},
		{`event.amount > 10 OR customer.tier == "gold"`, rules.Bool, `1:19: write OR in lowercase: and, or, not (or &&, ||, !)`, `event.amount > 10 or customer.tier == "gold"`},
		{`customer.tier == 'gold`, rules.Bool, `1:23: a text in quotes is not closed; add the closing quote`, `customer.tier == 'gold'`},
		{`customer.points >`, rules.Bool, `1:17: the rule ends too early: something is missing at the end`, ``},

		// placeholders
		{`customer.tags`, rules.Text, `1:1: cannot print a list of text in a message; print one entry, like customer.tags[0], or join them with join(customer.tags, ", ")`, `join(customer.tags, ", ")`},
		{`event.props`, rules.Text, `1:1: cannot print a map in a message; print one of its entries, like event.props.sku`, `event.props.sku`},
	}
	for _, tt := range tests {
		_, err := rules.Compile(tt.src, tt.kind)
		var re *rules.Error
		if !errors.As(err, &re) {
			t.Errorf("Compile(%s, %s) = %v; want a *rules.Error", tt.src, tt.kind, err)
			continue
		}
		if re.Error() != tt.want {
			t.Errorf("Compile(%s, %s):\n got %s\nwant %s", tt.src, tt.kind, re, tt.want)
		}
		if tt.fix == "" {
			continue
		}
		if _, err := rules.Compile(tt.fix, tt.kind); err != nil {
			t.Errorf("the fix suggested for %s, %s, does not compile: %v", tt.src, tt.fix, err)
		}
	}
}

// TestUnknownNameIsReported: an unknown name is in Error.Unknown, so a
// caller can add advice (a set value that is one word wants quotes).
func TestUnknownNameIsReported(t *testing.T) {
	_, err := rules.Compile("gold", rules.Text)
	var re *rules.Error
	if !errors.As(err, &re) || re.Unknown != "gold" {
		t.Errorf("Compile(gold) = %#v; want Unknown gold", err)
	}
	_, err = rules.Compile("customer.tier == 3", rules.Bool)
	if !errors.As(err, &re) || re.Unknown != "" {
		t.Errorf("type error has Unknown %q", re.Unknown)
	}
	if strings.Contains(re.Msg, "mismatched") {
		t.Errorf("message %q still in Go's terms", re.Msg)
	}
}
