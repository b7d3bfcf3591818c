package playbooktest

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/workflows"
)

// check compares what happened with what the case expects. A journey that
// failed is a failure of the case unless it expects outcome: failed, so a
// playbook that breaks never passes by accident.
func check(c Case, o observed) []Failure {
	e := c.Expect
	var fs []Failure
	if o.failure != "" && (e.Outcome == nil || *e.Outcome != string(activities.StatusFailed)) {
		fs = append(fs, Failure{Line: c.Line, Col: 1, Msg: o.failure})
	}
	fs = append(fs, checkSent(e, o)...)
	fs = append(fs, checkTasks(e, o)...)
	fs = append(fs, checkCoupons(e, o)...)
	fs = append(fs, checkPoints(e, o)...)
	fs = append(fs, checkOutcome(e, o)...)
	fs = append(fs, checkProfile(e, o)...)
	slices.SortStableFunc(fs, func(a, b Failure) int { return a.Line - b.Line })
	return fs
}

// at formats an offset from the start as the test files write it: +3d17h.
func at(d time.Duration) string {
	if d < 0 {
		return "-" + workflows.FormatDuration(-d)
	}
	return "+" + workflows.FormatDuration(d)
}

// near says whether t is within tolerance of the wanted offset.
func near(start, t time.Time, want *time.Duration, within time.Duration) bool {
	if want == nil {
		return true
	}
	d := t.Sub(start) - *want
	return d >= -within && d <= within
}

// whenText words an optional wanted time: " at +3d (within 1h)".
func whenText(want *time.Duration, within time.Duration) string {
	if want == nil {
		return ""
	}
	s := " at " + at(*want)
	if within > 0 {
		s += " (within " + workflows.FormatDuration(within) + ")"
	}
	return s
}

// sentList lists every message of the simulation, sent or not, for the
// context of a failed sent expectation.
func sentList(o observed) string {
	if len(o.messages) == 0 {
		return "messages: none"
	}
	parts := make([]string, len(o.messages))
	for i, m := range o.messages {
		parts[i] = fmt.Sprintf("%s %s (%s)", at(m.At.Sub(o.start)), m.Template, m.Channel)
		if m.Status != activities.SendSent {
			parts[i] = fmt.Sprintf("%s %s (%s, %s: %s)", at(m.At.Sub(o.start)), m.Template, m.Channel, m.Status, m.Reason)
		}
	}
	return "messages: " + strings.Join(parts, ", ")
}

func checkSent(e Expect, o observed) []Failure {
	var fs []Failure
	used := make([]bool, len(o.messages))
	for _, w := range e.Sent {
		if i := findSent(w, o, used); i >= 0 {
			used[i] = true
			continue
		}
		want := w.Template
		if w.Channel != "" {
			want += " on " + w.Channel
		}
		fs = append(fs, Failure{Line: w.Pos.Line, Col: w.Pos.Col,
			Msg: fmt.Sprintf("sent: want %s%s, got %s", want, whenText(w.At, w.Within), gotSent(w, o)), Context: sentList(o)})
	}
	for _, n := range e.NotSent {
		for _, m := range o.messages {
			if m.Template == n.Name && m.Status == activities.SendSent {
				fs = append(fs, Failure{Line: n.Pos.Line, Col: n.Pos.Col,
					Msg: fmt.Sprintf("not_sent: %s was sent at %s (%s)", n.Name, at(m.At.Sub(o.start)), m.Channel), Context: sentList(o)})
				break
			}
		}
	}
	if e.Sends != nil {
		if n := countSent(o); n != *e.Sends {
			p := e.Pos["sends"]
			fs = append(fs, Failure{Line: p.Line, Col: p.Col, Msg: fmt.Sprintf("sends: want %d messages sent, got %d", *e.Sends, n), Context: sentList(o)})
		}
	}
	return fs
}

// findSent is the first message not yet matched that w describes.
func findSent(w SentWant, o observed, used []bool) int {
	for i, m := range o.messages {
		if !used[i] && m.Status == activities.SendSent && m.Template == w.Template &&
			(w.Channel == "" || m.Channel == w.Channel) && near(o.start, m.At, w.At, w.Within) {
			return i
		}
	}
	return -1
}

// gotSent words what happened to the wanted template instead.
func gotSent(w SentWant, o observed) string {
	var got []string
	for _, m := range o.messages {
		if m.Template != w.Template {
			continue
		}
		s := fmt.Sprintf("%s on %s at %s", m.Template, m.Channel, at(m.At.Sub(o.start)))
		if m.Status != activities.SendSent {
			s += fmt.Sprintf(" %s (%s)", m.Status, m.Reason)
		}
		got = append(got, s)
	}
	if len(got) == 0 {
		return "no " + w.Template + " message"
	}
	return strings.Join(got, "; ")
}

func countSent(o observed) int {
	n := 0
	for _, m := range o.messages {
		if m.Status == activities.SendSent {
			n++
		}
	}
	return n
}

func checkTasks(e Expect, o observed) []Failure {
	var fs []Failure
	if p, given := e.Pos["tasks"]; given && len(e.Tasks) == 0 && len(o.tasks) > 0 {
		fs = append(fs, Failure{Line: p.Line, Col: p.Col, Msg: "tasks: want none, got " + taskList(o)})
	}
	used := make([]bool, len(o.tasks))
	for _, w := range e.Tasks {
		found := false
		for i, t := range o.tasks {
			if used[i] || t.Assignee != w.Assignee || !strings.Contains(t.Title, w.Title) {
				continue
			}
			if w.At != nil && (t.at == nil || !near(o.start, *t.at, w.At, w.Within)) {
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			want := "a task for " + w.Assignee
			if w.Title != "" {
				want += fmt.Sprintf(" titled …%s…", w.Title)
			}
			fs = append(fs, Failure{Line: w.Pos.Line, Col: w.Pos.Col,
				Msg: fmt.Sprintf("tasks: want %s%s, got %s", want, whenText(w.At, w.Within), taskList(o))})
		}
	}
	return fs
}

func taskList(o observed) string {
	if len(o.tasks) == 0 {
		return "no tasks"
	}
	parts := make([]string, len(o.tasks))
	for i, t := range o.tasks {
		parts[i] = fmt.Sprintf("%s %q", t.Assignee, t.Title)
		if t.at != nil {
			parts[i] = at(t.at.Sub(o.start)) + " " + parts[i]
		}
	}
	return strings.Join(parts, ", ")
}

func checkCoupons(e Expect, o observed) []Failure {
	var fs []Failure
	if p, given := e.Pos["coupons"]; given && len(e.Coupons) == 0 && len(o.coupons) > 0 {
		fs = append(fs, Failure{Line: p.Line, Col: p.Col, Msg: "coupons: want none, got " + couponList(o)})
	}
	used := make([]bool, len(o.coupons))
	for _, w := range e.Coupons {
		found := false
		for i, c := range o.coupons {
			if !used[i] && (w.Kind == "" || c.Kind == w.Kind) && (w.Value == nil || c.Value == *w.Value) &&
				(w.Prefix == "" || strings.HasPrefix(c.Code, w.Prefix)) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			fs = append(fs, Failure{Line: w.Pos.Line, Col: w.Pos.Col, Msg: fmt.Sprintf("coupons: want %s, got %s", couponText(w), couponList(o))})
		}
	}
	return fs
}

func couponText(w CouponWant) string {
	s := "a coupon"
	if w.Kind != "" {
		s += " of kind " + w.Kind
	}
	if w.Value != nil {
		s += fmt.Sprintf(" worth %g", *w.Value)
	}
	if w.Prefix != "" {
		s += " with prefix " + w.Prefix
	}
	return s
}

func couponList(o observed) string {
	if len(o.coupons) == 0 {
		return "no coupons"
	}
	parts := make([]string, len(o.coupons))
	for i, c := range o.coupons {
		parts[i] = fmt.Sprintf("%s %g %s", c.Kind, c.Value, c.Code)
	}
	return strings.Join(parts, ", ")
}

func checkPoints(e Expect, o observed) []Failure {
	var deltas []int64
	var net int64
	for _, l := range o.ledger {
		deltas = append(deltas, l.Delta)
		net += l.Delta
	}
	p := e.Pos["points"]
	switch {
	case e.Points != nil && net != *e.Points:
		return []Failure{{Line: p.Line, Col: p.Col, Msg: fmt.Sprintf("points: want a net change of %+d, got %+d (entries %v)", *e.Points, net, deltas)}}
	case e.PointsLog != nil && !slices.Equal(deltas, e.PointsLog):
		return []Failure{{Line: p.Line, Col: p.Col, Msg: fmt.Sprintf("points: want entries %v, got %v", e.PointsLog, deltas)}}
	}
	return nil
}

func checkOutcome(e Expect, o observed) []Failure {
	var fs []Failure
	add := func(key, want, got string) {
		if want != got {
			p := e.Pos[key]
			fs = append(fs, Failure{Line: p.Line, Col: p.Col, Msg: fmt.Sprintf("%s: want %s, got %s", key, want, got)})
		}
	}
	if e.Outcome != nil && *e.Outcome != o.outcome {
		got := o.outcome
		if o.reason != "" {
			got += " (" + o.reason + ")"
		}
		add("outcome", *e.Outcome, got)
	}
	if e.Reason != nil {
		add("reason", fmt.Sprintf("%q", *e.Reason), fmt.Sprintf("%q", o.reason))
	}
	if e.Converted != nil {
		add("converted", fmt.Sprint(*e.Converted), fmt.Sprint(o.converted))
	}
	if e.Holdout != nil {
		add("holdout", fmt.Sprint(*e.Holdout), fmt.Sprint(o.holdout))
	}
	if e.Journeys != nil {
		add("journeys", fmt.Sprint(*e.Journeys), fmt.Sprint(o.journeys))
	}
	return fs
}

func checkProfile(e Expect, o observed) []Failure {
	var fs []Failure
	if e.Stage != nil && *e.Stage != o.customer.Stage {
		p := e.Pos["stage"]
		fs = append(fs, Failure{Line: p.Line, Col: p.Col, Msg: fmt.Sprintf("stage: want %s, got %s", *e.Stage, o.customer.Stage)})
	}
	for _, t := range e.Tags {
		if !slices.Contains(o.customer.Tags, t) {
			p := e.Pos["tags"]
			fs = append(fs, Failure{Line: p.Line, Col: p.Col, Msg: fmt.Sprintf("tags: want %s among the tags, got %v", t, o.customer.Tags)})
		}
	}
	for _, t := range e.NotTags {
		if slices.Contains(o.customer.Tags, t) {
			p := e.Pos["not_tags"]
			fs = append(fs, Failure{Line: p.Line, Col: p.Col, Msg: fmt.Sprintf("not_tags: want no tag %s, got %v", t, o.customer.Tags)})
		}
	}
	return fs
}
