package simulate

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/workflows"
)

// Line is one line of simulator output.
type Line struct {
	Elapsed time.Duration
	At      time.Time
	Step    string
	Action  string
	Detail  string
	// Message is the message a send line sent, rendered as the customer
	// receives it; nil for other lines and sends that sent nothing.
	Message *activities.Message
}

// MarshalJSON writes the elapsed time as a duration string ("72h0m0s")
// and, for a message sent, its rendered subject and text.
func (l Line) MarshalJSON() ([]byte, error) {
	j := struct {
		Elapsed string    `json:"elapsed"`
		At      time.Time `json:"at"`
		Step    string    `json:"step"`
		Action  string    `json:"action"`
		Detail  string    `json:"detail,omitempty"`
		Subject string    `json:"subject,omitempty"`
		Text    string    `json:"text,omitempty"`
	}{Elapsed: "+" + l.Elapsed.String(), At: l.At, Step: l.Step, Action: l.Action, Detail: l.Detail}
	if l.Message != nil {
		j.Subject, j.Text = l.Message.Subject, l.Message.Text
	}
	return json.Marshal(j)
}

// Lines turns the step log into output lines, with a final summary line.
// Each send line carries the message it sent (Memory records it with
// the step and the time the workflow logged the send).
func (r *Result) Lines() []Line {
	out := make([]Line, 0, len(r.Log)+1)
	sent := r.sentMessages()
	for _, s := range r.Log {
		l := Line{Elapsed: s.At.Sub(r.Start), At: s.At, Step: s.StepID, Action: s.Kind, Detail: s.Detail}
		if s.Kind == "send" {
			l.Message = takeMessage(&sent, s.StepID, s.At)
		}
		out = append(out, l)
	}
	return out
}

// sentMessages are the messages Memory sent to the simulated customer, in
// order.
func (r *Result) sentMessages() []activities.Message {
	var out []activities.Message
	for _, m := range r.Memory.Messages() {
		if m.Status == activities.SendSent && m.CustomerID == r.Final.CustomerID {
			out = append(out, m)
		}
	}
	return out
}

// takeMessage removes and returns the first message of step sent at at.
func takeMessage(msgs *[]activities.Message, step string, at time.Time) *activities.Message {
	for i, m := range *msgs {
		if m.StepID == step && m.At.Equal(at) {
			*msgs = append((*msgs)[:i:i], (*msgs)[i+1:]...)
			return &m
		}
	}
	return nil
}

// previewLines is how many lines of a message's text the text output
// shows under its send line; --json has the whole text.
const previewLines = 3

// String formats a line as "+<elapsed> <step> <action> <detail>", and
// under a send the rendered subject and the first lines of the text,
// indented, so that a simulation reads like the customer's inbox.
func (l Line) String() string {
	s := fmt.Sprintf("+%s %s %s", l.Elapsed, l.Step, l.Action)
	if l.Detail != "" {
		s += " " + l.Detail
	}
	if m := l.Message; m != nil {
		s += messageLines(m.Subject, m.Text)
	}
	return s
}

// messageLines indents a subject and the first non-blank lines of a text.
func messageLines(subject, text string) string {
	var b strings.Builder
	if subject != "" {
		b.WriteString("\n    subject: " + subject)
	}
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimRight(l, " \t"))
		}
	}
	for i, l := range lines {
		if i == previewLines {
			more := len(lines) - previewLines
			fmt.Fprintf(&b, "\n    | … (%d more %s)", more, plural(more, "line", "lines"))
			break
		}
		b.WriteString("\n    | " + l)
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// WriteHTML writes the HTML body of each message sent, in order, to dir as
// <seq>-<step>-<template>.<locale>.html (seq counts the messages sent,
// from 001), to open in a browser; it returns the paths written.
func (r *Result) WriteHTML(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("html directory: %w", err)
	}
	var paths []string
	for i, m := range r.sentMessages() {
		if m.HTML == "" {
			continue
		}
		name := fmt.Sprintf("%03d-%s-%s.%s.html", i+1, m.StepID, m.Template, m.Locale)
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(m.HTML), 0o644); err != nil {
			return paths, fmt.Errorf("write html: %w", err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// Summary is the closing line: outcome, runs, estimated history events and
// what the simulated world holds afterwards.
func (r *Result) Summary() string {
	total := 0
	for _, n := range r.RunEvents {
		total += n
	}
	if len(r.Journeys) == 0 {
		return "no enrollment: " + r.NotAdmitted
	}
	status := r.outcome()
	if r.Horizon > 0 {
		status += fmt.Sprintf(" (still running at the simulation's horizon, %s)", workflows.FormatDuration(r.Horizon))
	}
	if r.Final.Converted && r.Final.Status != activities.StatusConverted {
		status += ", goal reached"
	}
	if len(r.Journeys) > 1 {
		status = fmt.Sprintf("%d journeys, the last %s", len(r.Journeys), status)
	}
	return fmt.Sprintf("%s after %s: %d steps, %d sends (%d messages sent), %d run(s), ≈%d history events",
		status, r.End().Sub(r.Start), r.Final.Counters.Steps, r.Final.Counters.Sends, r.sent(), r.Runs, total)
}

// End is the time of the last thing the simulation logged.
func (r *Result) End() time.Time {
	if len(r.Log) == 0 {
		return r.Start
	}
	return r.Log[len(r.Log)-1].At
}

func (r *Result) sent() int {
	n := 0
	for _, m := range r.Memory.Messages() {
		if m.Status == activities.SendSent {
			n++
		}
	}
	return n
}

// Write prints the simulation, as text lines or (asJSON) one JSON object
// per line, the summary last.
func (r *Result) Write(w io.Writer, asJSON bool) error {
	var b strings.Builder
	for _, l := range r.Lines() {
		if asJSON {
			j, err := json.Marshal(l)
			if err != nil {
				return err
			}
			b.Write(j)
			b.WriteByte('\n')
			continue
		}
		b.WriteString(l.String())
		b.WriteByte('\n')
	}
	if asJSON {
		outcome, reason := string(r.Final.Status), r.Final.Reason
		if len(r.Journeys) == 0 {
			outcome, reason = "not_admitted", r.NotAdmitted
		}
		j, err := json.Marshal(map[string]any{
			"outcome": outcome, "reason": reason, "converted": r.Final.Converted, "journeys": len(r.Journeys), "elapsed": "+" + r.End().Sub(r.Start).String(),
			"steps": r.Final.Counters.Steps, "sends": r.Final.Counters.Sends, "sent": r.sent(), "runs": r.Runs, "history_events_estimate": r.RunEvents,
		})
		if err != nil {
			return err
		}
		b.Write(j)
		b.WriteByte('\n')
	} else {
		b.WriteString(r.Summary())
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// outcome words the last journey's outcome, or why none started.
func (r *Result) outcome() string {
	if len(r.Journeys) == 0 {
		return r.NotAdmitted
	}
	return workflows.OutcomeDetail(r.Final.Status, r.Final.Reason)
}

// Failure says in plain words why a journey of the simulation failed, or
// "" when none did: `rapport simulate` exits non-zero on it.
func (r *Result) Failure() string {
	for i, j := range r.Journeys {
		if j.Status != activities.StatusFailed && j.Err == nil {
			continue
		}
		why := j.Reason
		if why == "" && j.Err != nil {
			why = j.Err.Error()
		}
		return fmt.Sprintf("journey %d (started %s) failed: %s", i+1, j.Start.Format(time.RFC3339), why)
	}
	return ""
}
