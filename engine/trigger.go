package engine

import (
	"fmt"

	"github.com/rapport-crm/rapport/rules"
)

// TriggeredBy reports whether the event ev starts an enrollment of p for
// c: p has an event trigger named ev.Name and its `when` rule, evaluated
// against c as stored after ev was applied, at ev's time, holds. The event
// dispatcher and the simulator both decide with it, so `rapport simulate`
// admits exactly the events production admits.
func (p *Plan) TriggeredBy(c rules.Customer, ev rules.Event) (bool, error) {
	if p.Trigger.Kind != TriggerEvent || p.Trigger.Event != ev.Name {
		return false, nil
	}
	when := p.Trigger.When
	if when == nil {
		return true, nil
	}
	ok, err := when.Bool(rules.NewEnv(c, ev, ev.Time))
	if err != nil {
		return false, fmt.Errorf("playbook %s: trigger rule %q: %w", p.Name, when.Source, err)
	}
	return ok, nil
}

// Listens reports whether a journey of p may react to an event named
// name: its goal or a wait names the event, or it has an exit_when rule
// (checked whenever an event arrives). The dispatcher signals only the
// journeys that listen; the simulator does the same.
func (p *Plan) Listens(name string) bool {
	if p.ExitWhen != nil || (p.Goal != nil && p.Goal.Event == name) {
		return true
	}
	for _, s := range p.Steps {
		if s.Wait != nil && s.Wait.Kind == WaitEvent && s.Wait.Event == name {
			return true
		}
	}
	return false
}
