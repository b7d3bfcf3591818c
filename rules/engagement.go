package rules

import (
	"strconv"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser/lexer"
)

// MessageEvents are the events that tell what became of a message the
// journey sent (the provider's delivery, open, click, bounce, complaint
// and unsubscribe reports, in that order of how far the message got).
// Their props name the message: enrollment_id, step_id and message_key
// (the send's outbox key), with playbook, template, channel and provider,
// url for a click and bounce (hard or soft) for a bounce.
var MessageEvents = []string{
	"message_delivered", "message_opened", "message_clicked",
	"message_bounced", "message_complained", "message_unsubscribed",
}

// MessageEventProps are the props every message event carries, all text.
var MessageEventProps = []string{"message_key", "enrollment_id", "step_id", "playbook", "template", "channel", "provider", "url", "bounce"}

// IsMessageEvent reports whether name is one of MessageEvents.
func IsMessageEvent(name string) bool {
	for _, m := range MessageEvents {
		if m == name {
			return true
		}
	}
	return false
}

// Message statuses besides the send results (sent, suppressed, failed)
// and the message events' names without the message_ prefix.
const (
	// MessageNotSent: the send step has not run in this enrollment (yet).
	MessageNotSent = "not_sent"
)

// Message is what a rule sees as message("step"): what became of the
// message the send step of that id sent last in this enrollment. Status
// is how far it got: not_sent, suppressed, failed or sent, then
// delivered, opened, clicked, bounced, complained, unsubscribed (the last
// of these reports received, in that order); the flags say which reports
// came. A click implies an open, and an open a delivery, since providers
// do not always report both.
type Message struct {
	Status       string `expr:"status" json:"status"`
	Sent         bool   `expr:"sent" json:"sent,omitempty"`
	Delivered    bool   `expr:"delivered" json:"delivered,omitempty"`
	Opened       bool   `expr:"opened" json:"opened,omitempty"`
	Clicked      bool   `expr:"clicked" json:"clicked,omitempty"`
	Bounced      bool   `expr:"bounced" json:"bounced,omitempty"`
	Complained   bool   `expr:"complained" json:"complained,omitempty"`
	Unsubscribed bool   `expr:"unsubscribed" json:"unsubscribed,omitempty"`
}

// NewMessage is the Message of a send whose result was sendStatus (sent,
// suppressed, failed; "" for a step that has not run) after the message
// events received, named as MessageEvents.
func NewMessage(sendStatus string, received []string) Message {
	if sendStatus == "" {
		return Message{Status: MessageNotSent}
	}
	m := Message{Status: sendStatus, Sent: sendStatus == "sent"}
	rank := -1
	for _, name := range received {
		i := indexOf(MessageEvents, name)
		if i < 0 {
			continue
		}
		m.Sent = true
		if i > rank {
			rank, m.Status = i, name[len("message_"):]
		}
		switch name {
		case "message_clicked":
			m.Clicked = true
			fallthrough
		case "message_opened":
			m.Opened = true
			fallthrough
		case "message_delivered":
			m.Delivered = true
		case "message_bounced":
			m.Bounced = true
		case "message_complained":
			m.Complained = true
		case "message_unsubscribed":
			m.Unsubscribed = true
		}
	}
	return m
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// message is the message() built-in: the status the journey put in the
// environment for step, or not_sent.
func message(env any, step string) Message {
	var msgs map[string]Message
	switch e := env.(type) {
	case *Env:
		msgs = e.Messages
	case Env:
		msgs = e.Messages
	}
	if m, ok := msgs[step]; ok {
		return m
	}
	return Message{Status: MessageNotSent}
}

// MessageRef is one call message("id") in a rule, at a 1-based line and
// column of the rule's source.
type MessageRef struct {
	Step         string
	Line, Column int
}

// MessageRefs lists the message() calls of a rule source. The step id must
// be written out in quotes, so that the compiler can check it names a
// send step; a call with anything else is an error.
func MessageRefs(src string) ([]MessageRef, *Error) {
	tokens, err := lexer.Lex(file.NewSource(src))
	if err != nil {
		return nil, nil // the rule compiler reports it
	}
	var refs []MessageRef
	for i, tok := range tokens {
		if tok.Kind != lexer.Identifier || tok.Value != "message" || i+1 >= len(tokens) || !tokens[i+1].Is(lexer.Bracket, "(") {
			continue
		}
		if i > 0 && (tokens[i-1].Is(lexer.Operator, ".") || tokens[i-1].Is(lexer.Operator, "?.")) {
			continue
		}
		pos := at(src, tok.Location)
		if i+3 >= len(tokens) || tokens[i+2].Kind != lexer.String || !tokens[i+3].Is(lexer.Bracket, ")") {
			pos.Msg = `message() takes the id of a send step in quotes, like message("welcome")`
			return nil, pos
		}
		refs = append(refs, MessageRef{Step: unquote(tokens[i+2].Value), Line: pos.Line, Column: pos.Column})
	}
	return refs, nil
}

// at is the 1-based line and column of loc in src.
func at(src string, loc file.Location) *Error {
	fe := (&file.Error{Location: loc}).Bind(file.NewSource(src))
	return &Error{Line: max(fe.Line, 1), Column: fe.Column + 1}
}

// unquote is the text of a string token (the lexer has already removed
// the quotes and escapes in current expr; a quoted form is unquoted).
func unquote(s string) string {
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	return s
}
