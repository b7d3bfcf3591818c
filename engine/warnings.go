package engine

import (
	"fmt"
	"slices"
)

// warnGoalWaits warns about each wait for the goal event when the goal
// ends the journey (exit: true) whatever the event says (no goal when):
// within the goal window the goal takes the event first and ends the
// journey, so the wait can only time out and the steps it runs on the
// event never run.
func (c *compiler) warnGoalWaits() {
	g := c.plan.Goal
	if g == nil || g.Continue || g.When != nil || g.Event == "" {
		return
	}
	for _, st := range c.plan.Steps {
		if st.Kind != KindWait || st.Wait == nil || !slices.Contains(st.Wait.Events(), g.Event) {
			continue
		}
		c.plan.Warnings = append(c.plan.Warnings, Diagnostic{
			File: c.file, Line: st.Line, Col: st.Col,
			Msg: fmt.Sprintf("step %s never sees %s while the goal window is open (%s from entry): the goal (exit: true) ends the journey when %s arrives, so the steps for the event never run; remove exit: true to record the conversion and go on", st.ID, g.Event, formatDuration(g.Within), g.Event),
		})
	}
}
