package rules

import (
	"strings"
	"testing"
)

func TestNewMessageStatusIsHowFarTheMessageGot(t *testing.T) {
	cases := []struct {
		send     string
		received []string
		want     Message
	}{
		{"", nil, Message{Status: MessageNotSent}},
		{"suppressed", nil, Message{Status: "suppressed"}},
		{"sent", nil, Message{Status: "sent", Sent: true}},
		{"sent", []string{"message_opened", "message_delivered"}, Message{Status: "opened", Sent: true, Delivered: true, Opened: true}},
		{"sent", []string{"message_clicked"}, Message{Status: "clicked", Sent: true, Delivered: true, Opened: true, Clicked: true}},
		{"sent", []string{"message_bounced"}, Message{Status: "bounced", Sent: true, Bounced: true}},
		{"sent", []string{"message_unsubscribed", "message_opened"}, Message{Status: "unsubscribed", Sent: true, Delivered: true, Opened: true, Unsubscribed: true}},
		{"sent", []string{"purchase"}, Message{Status: "sent", Sent: true}},
	}
	for _, c := range cases {
		if got := NewMessage(c.send, c.received); got != c.want {
			t.Errorf("NewMessage(%q, %v) = %+v, want %+v", c.send, c.received, got, c.want)
		}
	}
}

func TestMessageReadsTheEnvironment(t *testing.T) {
	r, err := Compile(`message("welcome").opened && message("other").status == "not_sent"`, Bool)
	if err != nil {
		t.Fatal(err)
	}
	env := Env{Messages: map[string]Message{"welcome": NewMessage("sent", []string{"message_opened"})}}
	if ok, err := r.Bool(env); err != nil || !ok {
		t.Errorf("opened welcome: %v, %v; want true", ok, err)
	}
	env.Messages["welcome"] = NewMessage("sent", nil)
	if ok, err := r.Bool(env); err != nil || ok {
		t.Errorf("unopened welcome: %v, %v; want false", ok, err)
	}
}

func TestMessageRefs(t *testing.T) {
	refs, err := MessageRefs(`customer.tier == "gold" &&
  message("welcome").opened || message('resend').clicked`)
	if err != nil {
		t.Fatal(err)
	}
	want := []MessageRef{{Step: "welcome", Line: 2, Column: 3}, {Step: "resend", Line: 2, Column: 32}}
	if len(refs) != len(want) || refs[0] != want[0] || refs[1] != want[1] {
		t.Errorf("refs = %+v, want %+v", refs, want)
	}
}

func TestMessageNeedsAQuotedStepID(t *testing.T) {
	for _, src := range []string{`message(event.props.step_id).opened`, `message().opened`, `message("a" + "b").opened`} {
		_, err := Compile(src, Bool)
		if err == nil || !strings.Contains(err.Error(), `like message("welcome")`) {
			t.Errorf("%s: err = %v, want the quoted-id advice", src, err)
		}
	}
	if _, err := Compile(`message("welcome").opend`, Bool); err == nil || !strings.Contains(err.Error(), `did you mean "opened"`) {
		t.Errorf("misspelt field: err = %v", err)
	}
	if _, err := Compile(`customer.attrs.message == "x"`, Bool); err != nil {
		t.Errorf("an attr named message is not a call: %v", err)
	}
}
