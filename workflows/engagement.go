package workflows

import (
	"slices"
	"strings"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
)

// A journey follows the messages of its plan's watched send steps
// (engine.Plan.Watched): what each send answered, and the message events
// (rules.MessageEvents) that arrived about it for this enrollment. Rules
// read it as message("step") and a wait with `of` takes only events about
// its step's message. It is all workflow state, made of the send's
// recorded result and the signals received, so it replays the same; a
// plan that watches nothing (every plan pinned before engagement waits)
// keeps none, so no gate is needed.

// noteSend remembers the result of a watched send step's latest visit;
// the events about an earlier visit's message no longer count.
func (j *journey) noteSend(stepID, key string, status activities.SendStatus) {
	if !slices.Contains(j.plan.Watched, stepID) {
		return
	}
	if status == activities.SendDeferred {
		status = activities.SendSuppressed // deferred maxDefers times, then skipped
	}
	if j.messages == nil {
		j.messages = map[string]MessageState{}
	}
	j.messages[stepID] = MessageState{Key: key, Status: string(status)}
}

// noteMessageEvent remembers a message event about a watched step's
// message (the first of each name), before the goal, exit_when and the
// wait judge the event, so that their rules see it in message().
func (j *journey) noteMessageEvent(ev rules.Event) {
	if len(j.plan.Watched) == 0 || !rules.IsMessageEvent(ev.Name) {
		return
	}
	step := propText(ev, "step_id")
	if !j.aboutMessage(ev, step) {
		return
	}
	st := j.messages[step]
	if _, seen := st.Events[ev.Name]; seen {
		return
	}
	st.Events = cloneEvents(st.Events)
	st.Events[ev.Name] = ev
	j.messages[step] = st
}

// cloneEvents copies m (so that a checkpoint already taken keeps its own).
func cloneEvents(m map[string]rules.Event) map[string]rules.Event {
	out := make(map[string]rules.Event, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// aboutMessage reports whether ev is about the message that send step
// sent last in this enrollment: its enrollment_id and step_id props name
// them and, when it has one, its message_key is that send's key (or one
// the outbox derived from it, key/…).
func (j *journey) aboutMessage(ev rules.Event, step string) bool {
	st, sent := j.messages[step]
	if !sent || propText(ev, "enrollment_id") != j.enr.ID || propText(ev, "step_id") != step {
		return false
	}
	key := propText(ev, "message_key")
	return key == "" || key == st.Key || strings.HasPrefix(key, st.Key+"/")
}

func propText(ev rules.Event, name string) string {
	s, _ := ev.Props[name].(string)
	return s
}

// messageStatuses are the watched messages as rules see them, nil for a
// plan that watches none.
func (j *journey) messageStatuses() map[string]rules.Message {
	if len(j.plan.Watched) == 0 {
		return nil
	}
	out := make(map[string]rules.Message, len(j.plan.Watched))
	for _, step := range j.plan.Watched {
		st, sent := j.messages[step]
		if !sent {
			out[step] = rules.NewMessage("", nil)
			continue
		}
		var received []string
		for _, name := range rules.MessageEvents {
			if _, ok := st.Events[name]; ok {
				received = append(received, name)
			}
		}
		out[step] = rules.NewMessage(st.Status, received)
	}
	return out
}

// heard ends a wait at once when the message one of its alternatives is
// about already had that event before the wait began (opened while an
// earlier wait ran): the wait is for the message to be opened, and it has
// been. The alternative's rule must hold for the remembered event.
func (j *journey) heard(m *matcher) (bool, error) {
	for i, a := range m.alts {
		ev, ok := j.messages[a.of].Events[a.event]
		if a.of == "" || !ok {
			continue
		}
		if a.when != nil {
			ok, err := j.decide(a.when, a.where, ev)
			if err != nil {
				return false, err
			}
			if !ok {
				continue
			}
		}
		j.logStep(j.stepID(j.pc), "event", a.event+" of "+a.of+" already received")
		m.hit, j.event = i, ev
		return true, nil
	}
	return false, nil
}

// eventOf names a waited-for event with the send step it is about, for
// the step log: "message_opened of welcome".
func eventOf(event, of string) string {
	if of == "" {
		return event
	}
	return event + " of " + of
}
