package playbooktest

import (
	"fmt"
	"slices"
	"sort"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// Check refuses expectations that name what the playbook cannot do: a
// template it has no send step for, a channel it never sends the template
// on, an assignee none of its task steps names. Without it a misspelt
// template in not_sent would pass forever. The error is engine.Diagnostics
// at the expectation's place in the test file.
func Check(f *File, plan *engine.Plan) error {
	sends := map[string][]string{} // template → channels
	var assignees []string
	for _, s := range plan.Steps {
		if s.Send != nil && !slices.Contains(sends[s.Send.Template], string(s.Send.Channel)) {
			sends[s.Send.Template] = append(sends[s.Send.Template], string(s.Send.Channel))
		}
		if s.Task != nil && !slices.Contains(assignees, s.Task.Assignee) {
			assignees = append(assignees, s.Task.Assignee)
		}
	}
	templates := make([]string, 0, len(sends))
	for t := range sends {
		templates = append(templates, t)
	}
	sort.Strings(templates)
	var ds engine.Diagnostics
	bad := func(p Pos, format string, args ...any) {
		ds = append(ds, engine.Diagnostic{File: f.Path, Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...)})
	}
	for _, c := range f.Cases {
		for _, w := range c.Expect.Sent {
			switch chans := sends[w.Template]; {
			case chans == nil:
				bad(w.Pos, "sent: playbook %s sends no template %s%s", plan.Name, w.Template, rules.DidYouMean(w.Template, templates))
			case w.Channel != "" && !slices.Contains(chans, w.Channel):
				bad(w.Pos, "sent: playbook %s sends %s on %v, not on %s", plan.Name, w.Template, chans, w.Channel)
			}
		}
		for _, n := range c.Expect.NotSent {
			if sends[n.Name] == nil {
				bad(n.Pos, "not_sent: playbook %s sends no template %s%s", plan.Name, n.Name, rules.DidYouMean(n.Name, templates))
			}
		}
		for _, w := range c.Expect.Tasks {
			if !slices.Contains(assignees, w.Assignee) {
				bad(w.Pos, "tasks: playbook %s has no task for %s (its tasks are for %v)%s", plan.Name, w.Assignee, assignees, rules.DidYouMean(w.Assignee, assignees))
			}
		}
	}
	if len(ds) > 0 {
		return ds
	}
	return nil
}
