package report

import "github.com/rapport-crm/rapport/engine"

// DiagramCounts are the live figures of one playbook of r, to draw on its
// journey's diagram (`rapport report PLAYBOOK --format mermaid`): enrolled
// and converted over all versions, and each step's reached and sent. A
// playbook the report does not hold gets zeros.
func DiagramCounts(r Report, playbook string) *engine.DiagramCounts {
	c := &engine.DiagramCounts{Steps: map[string]engine.StepCounts{}}
	for _, p := range r.Playbooks {
		if p.Name != playbook {
			continue
		}
		c.Enrolled, c.Converted = p.Total.Enrolled, p.Total.Converted
		for _, s := range p.Steps {
			c.Steps[s.Step] = engine.StepCounts{Reached: s.Reached, Sent: s.Sent}
		}
	}
	return c
}
