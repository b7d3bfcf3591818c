package engine

import (
	"fmt"
	"slices"

	"github.com/rapport-crm/rapport/rules"
)

// TriggeredBy reports whether the event ev starts an enrollment of p for
// c: p has an event trigger named ev.Name and its `when` rule, evaluated
// against c as stored after ev was applied, at ev's time, holds. The event
// dispatcher and the simulator both decide with it, so `rapport simulate`
// admits exactly the events production admits.
func (p *Plan) TriggeredBy(c rules.Customer, ev rules.Event) (bool, error) {
	ets := p.Trigger.EventTriggers()
	i := slices.IndexFunc(ets, func(et EventTrigger) bool { return et.Event == ev.Name })
	if i < 0 {
		return false, nil
	}
	when := ets[i].When
	if when == nil {
		return true, nil
	}
	ok, err := when.Bool(rules.NewEnv(c, ev, ev.Time))
	if err != nil {
		return false, fmt.Errorf("playbook %s: trigger rule %q: %w", p.Name, when.Source, err)
	}
	return ok, nil
}
