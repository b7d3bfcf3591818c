package engine

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rapport-crm/rapport/rules"
)

// The compiler's side of engagement: a wait for a message event may name
// the send step whose message it is about (`of: welcome`), and rules read
// what became of a message with message("welcome"). Both name send steps,
// which are only all known once every step is read, so the names are
// collected while compiling and checked at the end (checkMessageRefs);
// the steps they name become Plan.Watched.

// messageRef is one send step named by an of or a message() call.
type messageRef struct {
	step string
	// wait is the index of the wait whose of it is, -1 for message().
	wait      int
	node      *yaml.Node // the of value (wait >= 0)
	line, col int        // the call's position in the file (message())
}

// triggerHasNoMessages is why a trigger's rules cannot read message().
const triggerHasNoMessages = "a trigger's rules decide whether a journey starts, before it has sent anything"

// messageOf reads the of of a wait (or a branch of one) for event.
func (c *compiler) messageOf(f field, event string, wait int) string {
	id, ok := c.word(f, wordRe, "step id (the id of a send step, like welcome)")
	if !ok {
		return ""
	}
	if event != "" && !rules.IsMessageEvent(event) {
		c.errorf(f.key, "of: only a message event is about a message (%s); %s is not one", strings.Join(rules.MessageEvents, ", "), event)
		return ""
	}
	c.msgRefs = append(c.msgRefs, messageRef{step: id, wait: wait, node: f.val})
	return id
}

// noteMessageCalls collects the message("id") calls of rule n (which
// compiled), or reports them where rules cannot read messages.
func (c *compiler) noteMessageCalls(n *yaml.Node, key string) {
	refs, _ := rules.MessageRefs(n.Value)
	for _, r := range refs {
		line, col := c.scalarPos(n, r.Line, r.Column)
		if c.messageBan != "" {
			c.errorAt(line, col, fmt.Sprintf("%s: message() is not available here: %s", key, c.messageBan))
			continue
		}
		c.msgRefs = append(c.msgRefs, messageRef{step: r.Step, wait: -1, line: line, col: col})
	}
}

// checkMessageRefs checks that every of and message() names a send step,
// and that the send step of an of can run before its wait; the send
// steps named make up Plan.Watched.
func (c *compiler) checkMessageRefs() {
	var sends []string
	for _, st := range c.plan.Steps {
		if st.Kind == KindSend {
			sends = append(sends, st.ID)
		}
	}
	slices.Sort(sends)
	var watched []string
	for _, r := range c.msgRefs {
		if msg := c.messageRefProblem(r, sends); msg != "" {
			if r.wait >= 0 {
				c.errorf(r.node, "of: %s", msg)
			} else {
				c.errorAt(r.line, r.col, "message(): "+msg)
			}
			continue
		}
		watched = append(watched, r.step)
	}
	slices.Sort(watched)
	c.plan.Watched = slices.Compact(watched)
}

// messageRefProblem says what is wrong with r, "" when nothing is.
func (c *compiler) messageRefProblem(r messageRef, sends []string) string {
	idx, ok := c.plan.StepIndex[r.step]
	switch {
	case !ok && len(sends) == 0:
		return fmt.Sprintf("there is no step %q, and the playbook has no send step", r.step)
	case !ok:
		return fmt.Sprintf("there is no step %q%s", r.step, didYouMean(r.step, sends))
	case c.plan.Steps[idx].Kind != KindSend:
		return fmt.Sprintf("step %q is %s step, not a send; name the send step whose message it is%s", r.step, article(string(c.plan.Steps[idx].Kind)), didYouMean(r.step, sends))
	case r.wait >= 0 && !c.stepsBad && !c.plan.leadsTo(idx, r.wait):
		return fmt.Sprintf("send step %q cannot run before this wait, so the wait could never hear of its message", r.step)
	}
	return ""
}

// leadsTo reports whether some path of the step graph goes from step
// from to step to.
func (p *Plan) leadsTo(from, to int) bool {
	seen := map[int]bool{from: true}
	queue := []int{from}
	for len(queue) > 0 {
		idx := queue[0]
		queue = queue[1:]
		for _, s := range p.successors(idx) {
			if s == to {
				return true
			}
			if !seen[s] {
				seen[s] = true
				queue = append(queue, s)
			}
		}
	}
	return false
}

// noMessageInText refuses message() in a template placeholder: a message
// is rendered by the send, which does not see the journey's messages.
func noMessageInText(s string) error {
	_, err := parseText(s, func(src string, kind rules.Kind) (*rules.Rule, error) {
		if refs, _ := rules.MessageRefs(src); len(refs) > 0 {
			return nil, &rules.Error{Line: refs[0].Line, Column: refs[0].Column,
				Msg: "message() is not available in a template; branch on it with an if step and send another template"}
		}
		return compileRule(src, kind)
	})
	return err
}

// messageEventProps are the props of the message events, as a workspace
// would declare them: all text.
func messageEventProps() map[string]rules.Type {
	props := map[string]rules.Type{}
	for _, name := range rules.MessageEventProps {
		props[name] = rules.TypeText
	}
	return props
}

// eventOf names a waited-for event with the send step it is about, for
// explain and the diagram: "message_opened of welcome".
func eventOf(event, of string) string {
	if of == "" {
		return event
	}
	return event + " of " + of
}
