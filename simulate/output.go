package simulate

import (
	"encoding/json"
	"fmt"
	"io"
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
}

// MarshalJSON writes the elapsed time as a duration string ("72h0m0s").
func (l Line) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Elapsed string    `json:"elapsed"`
		At      time.Time `json:"at"`
		Step    string    `json:"step"`
		Action  string    `json:"action"`
		Detail  string    `json:"detail,omitempty"`
	}{"+" + l.Elapsed.String(), l.At, l.Step, l.Action, l.Detail})
}

// Lines turns the step log into output lines, with a final summary line.
func (r *Result) Lines() []Line {
	out := make([]Line, 0, len(r.Log)+1)
	for _, s := range r.Log {
		out = append(out, Line{Elapsed: s.At.Sub(r.Start), At: s.At, Step: s.StepID, Action: s.Kind, Detail: s.Detail})
	}
	return out
}

// String formats a line as "+<elapsed> <step> <action> <detail>".
func (l Line) String() string {
	s := fmt.Sprintf("+%s %s %s", l.Elapsed, l.Step, l.Action)
	if l.Detail != "" {
		s += " " + l.Detail
	}
	return s
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
