// Package engine holds the playbook language: the YAML model with source
// positions, the compiler that turns a playbook into an immutable Plan of
// flat steps with type-checked rules, and the registry of compiled plans.
package engine

import (
	"slices"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

// Stage is the lifecycle stage a playbook serves (start → stabilise →
// strengthen → reactivate, plus care and service).
type Stage string

const (
	StageOnboard    Stage = "onboard"
	StageNurture    Stage = "nurture"
	StageLoyalty    Stage = "loyalty"
	StageReactivate Stage = "reactivate"
	StageCare       Stage = "care"
	StageService    Stage = "service"
)

// Stages lists the valid lifecycle stages in lifecycle order.
var Stages = []Stage{StageOnboard, StageNurture, StageLoyalty, StageReactivate, StageCare, StageService}

// Plan is a compiled playbook: immutable once built and safe to share
// between goroutines. Version is the content hash of the source, so the same
// file always compiles to the same version and an in-flight enrollment can
// pin the exact plan it started on.
type Plan struct {
	Name        string `json:"name,omitempty"`
	Version     string `json:"version,omitempty"` // hex sha256 of the source, first 12 characters
	Description string `json:"description,omitempty"`
	Stage       Stage  `json:"stage,omitempty"`
	Owner       string `json:"owner,omitempty"`
	Topic       string `json:"topic,omitempty"` // consent topic of the marketing messages; default "marketing"
	Source      []byte `json:"-"`               // the YAML the plan was compiled from
	File        string `json:"-"`               // path the source was read from, for messages

	Trigger   Trigger              `json:"trigger,omitempty"`
	Entry     Entry                `json:"entry,omitempty"`
	Goal      *Goal                `json:"goal,omitempty"`
	ExitWhen  *rules.Rule          `json:"exit_when,omitempty"`
	Policies  Policies             `json:"policies,omitempty"`
	Tracking  Tracking             `json:"tracking,omitzero"`
	Templates map[string]*Template `json:"templates,omitempty"`

	// Steps is the flattened program: Steps[0] runs first; each step names
	// its successor(s) by index, and End (-1) finishes the journey.
	Steps []Step `json:"steps,omitempty"`
	// StepIndex maps step IDs to indexes.
	StepIndex map[string]int `json:"step_index,omitempty"`
	// Watched are the send steps, sorted, whose messages the journey
	// follows: a wait names one (of) or a rule reads message("id"). The
	// journey keeps what became of their messages only; plans compiled
	// before engagement waits have none and keep nothing.
	Watched []string `json:"watched,omitempty"`

	// Warnings are problems that do not stop the playbook from running,
	// such as steps that can never run (validate prints them).
	Warnings Diagnostics `json:"-"`
}

// End is the Next index that finishes the journey as "completed".
const End = -1

// TriggerKind says what starts an enrollment.
type TriggerKind string

const (
	TriggerEvent   TriggerKind = "event"   // a customer event, optional When rule
	TriggerSegment TriggerKind = "segment" // a scheduled scan with a Where rule
	TriggerDate    TriggerKind = "date"    // a date field of the customer (birthday, signup anniversary)
	TriggerManual  TriggerKind = "manual"  // API or CLI start only
)

// Trigger describes how customers enter the playbook.
type Trigger struct {
	Kind  TriggerKind   `json:"kind,omitempty"`
	Event string        `json:"event,omitempty"` // TriggerEvent: event name
	When  *rules.Rule   `json:"when,omitempty"`  // TriggerEvent: optional rule over customer and event
	Every time.Duration `json:"every,omitempty"` // TriggerSegment: scan interval (or Cron)
	Cron  string        `json:"cron,omitempty"`  // TriggerSegment: cron spec, UTC
	Where *rules.Rule   `json:"where,omitempty"` // TriggerSegment and TriggerDate: optional rule over the customer
	Date  string        `json:"date,omitempty"`  // TriggerDate: "birthday" or "signup_anniversary"
	At    TimeOfDay     `json:"at,omitempty"`    // TriggerDate: local time of day the journey starts
	// Events are the events of a trigger that listens for several (the
	// events form); Event and When are then empty.
	Events []EventTrigger `json:"events,omitempty"`
}

// EventTrigger is one event that starts an enrollment, with its optional
// rule over customer and event.
type EventTrigger struct {
	Event string      `json:"event,omitempty"`
	When  *rules.Rule `json:"when,omitempty"`
}

// EventTriggers lists the events that start an enrollment of an event
// trigger, whichever form the playbook used (none for other triggers).
func (t Trigger) EventTriggers() []EventTrigger {
	switch {
	case t.Kind != TriggerEvent:
		return nil
	case len(t.Events) > 0:
		return t.Events
	}
	return []EventTrigger{{Event: t.Event, When: t.When}}
}

// Listens reports whether a journey of p may react to an event named name:
// its goal or a wait names the event, it has an exit_when rule (checked
// whenever an event arrives), or it is a message event and the journey
// watches its messages (rules read message()). The dispatcher signals
// only the journeys that listen; the simulator does the same.
func (p *Plan) Listens(name string) bool {
	if p.ExitWhen != nil || (p.Goal != nil && p.Goal.Event == name) {
		return true
	}
	if len(p.Watched) > 0 && rules.IsMessageEvent(name) {
		return true
	}
	for _, s := range p.Steps {
		if s.Wait != nil && slices.Contains(s.Wait.Events(), name) {
			return true
		}
	}
	return false
}

// TimeOfDay is a wall-clock time in the customer's zone, minutes after midnight.
type TimeOfDay struct {
	Minutes int `json:"minutes"`
}

func (t TimeOfDay) Hour() int   { return t.Minutes / 60 }
func (t TimeOfDay) Minute() int { return t.Minutes % 60 }

// Reentry is the policy for a customer entering again.
type Reentry string

const (
	ReentryNever  Reentry = "never"  // once per customer, ever
	ReentryAlways Reentry = "always" // whenever the trigger fires and no enrollment is running
	ReentryAfter  Reentry = "after"  // only when the last enrollment started more than Cooldown ago
)

// Entry is the entry policy.
type Entry struct {
	Reentry  Reentry       `json:"reentry,omitempty"`
	Cooldown time.Duration `json:"cooldown,omitempty"`
	Audience *rules.Rule   `json:"audience,omitempty"` // optional: who may enter at all
	Holdout  float64       `json:"holdout,omitempty"`  // percent (0–50) kept as control group
	// GlobalControl: the playbook takes part in the global control group
	// (a stable share of all customers who receive nothing from any
	// playbook that takes part). Default by stage: GlobalControlByDefault.
	GlobalControl bool `json:"global_control,omitempty"`
}

// GlobalControlByDefault says whether a playbook of stage takes part in the
// global control group when its entry does not say: the marketing stages
// (onboard, nurture, reactivate, care) do; loyalty (promised points and
// tiers) and service (complaints, recalls) do not.
func GlobalControlByDefault(s Stage) bool {
	switch s {
	case StageOnboard, StageNurture, StageReactivate, StageCare:
		return true
	}
	return false
}

// Goal is the conversion the playbook works towards. Reaching it (the
// event, its rule holding, within the window) records the conversion; then
// the journey goes on along its path (Continue), so a wait for the same
// event still runs its on_event steps, or, with `exit: true` in the
// playbook, ends at once as converted.
type Goal struct {
	Event  string        `json:"event,omitempty"`
	When   *rules.Rule   `json:"when,omitempty"` // optional rule over customer and event
	Within time.Duration `json:"within,omitempty"`
	// Continue: the journey goes on after the conversion. Plans pinned
	// before goals measured have no Continue and end at the goal, as
	// they did when they started; so does a playbook that says exit: true.
	Continue bool `json:"continue,omitempty"`
}

// Policies are constraints on the whole journey.
type Policies struct {
	QuietHours   *QuietHours   `json:"quiet_hours,omitempty"`
	FrequencyCap *FrequencyCap `json:"frequency_cap,omitempty"`
}

// QuietHours: no send between Start and End in the customer's local time
// (the window may wrap midnight, e.g. 21:00–08:00).
type QuietHours struct {
	Start TimeOfDay `json:"start"`
	End   TimeOfDay `json:"end"`
}

// CapAction is what happens to a send over the frequency cap.
type CapAction string

const (
	CapSkip  CapAction = "skip"  // record as suppressed and go on
	CapDefer CapAction = "defer" // wait until the cap allows it, then send
)

// FrequencyCap limits sends of this playbook to one customer.
type FrequencyCap struct {
	Max    int           `json:"max,omitempty"`
	Per    time.Duration `json:"per,omitempty"`
	Action CapAction     `json:"action,omitempty"`
}

// Tracking is the playbook's first-party engagement tracking of email
// (package tracking): Clicks rewrites links through signed redirects,
// Opens adds an open pixel. Rapport's worker applies it at send time.
type Tracking struct {
	Clicks bool `json:"clicks,omitempty"`
	Opens  bool `json:"opens,omitempty"`
}

// Template is a message with locale variants; Default is the locale used
// when the customer's locale has no variant (the first one declared).
type Template struct {
	Name     string              `json:"name,omitempty"`
	Default  string              `json:"default,omitempty"`
	Variants map[string]*Variant `json:"variants,omitempty"`
}

// Variant is one locale of a template. Each text field is a sequence of
// literal text and {{ rule }} placeholders, type-checked at compile time.
type Variant struct {
	Locale  string `json:"locale,omitempty"`
	Subject string `json:"subject,omitempty"`
	Text    string `json:"text,omitempty"`
	HTML    string `json:"html,omitempty"`
}

// StepKind names what a step does.
type StepKind string

const (
	KindSend   StepKind = "send"
	KindWait   StepKind = "wait"
	KindIf     StepKind = "if"
	KindSplit  StepKind = "split"
	KindUpdate StepKind = "update"
	KindPoints StepKind = "points"
	KindCoupon StepKind = "coupon"
	KindTask   StepKind = "task"
	KindGoto   StepKind = "goto"
	KindExit   StepKind = "exit"
)

// Step is one instruction of the flattened plan. Exactly one of the kind
// specific fields is set, matching Kind.
type Step struct {
	ID   string   `json:"id,omitempty"`
	Kind StepKind `json:"kind,omitempty"`
	Line int      `json:"line,omitempty"` // position in the playbook, for messages and the simulator
	Col  int      `json:"col,omitempty"`
	Next int      `json:"next,omitempty"` // index of the following step, or End

	Send   *SendStep   `json:"send,omitempty"`
	Wait   *WaitStep   `json:"wait,omitempty"`
	If     *IfStep     `json:"if,omitempty"`
	Split  *SplitStep  `json:"split,omitempty"`
	Update *UpdateStep `json:"update,omitempty"`
	Points *PointsStep `json:"points,omitempty"`
	Coupon *CouponStep `json:"coupon,omitempty"`
	Task   *TaskStep   `json:"task,omitempty"`
	Exit   *ExitStep   `json:"exit,omitempty"`
	// KindGoto jumps to Next, which is the target.
}

// Channel is a delivery channel.
type Channel string

const (
	ChannelEmail   Channel = "email"
	ChannelSMS     Channel = "sms"
	ChannelWebhook Channel = "webhook"
)

// SendStep sends a template on a channel. Transactional sends (receipts,
// complaint acknowledgements) ignore marketing consent and caps, but not
// the holdout, which receives nothing.
type SendStep struct {
	Channel       Channel `json:"channel,omitempty"`
	Template      string  `json:"template,omitempty"`
	Transactional bool    `json:"transactional,omitempty"`
}

// WaitKind is the flavour of a wait.
type WaitKind string

const (
	WaitFor   WaitKind = "for"   // a fixed duration
	WaitUntil WaitKind = "until" // next local time of day in the customer's zone
	WaitEvent WaitKind = "event" // an event, with a timeout
	// WaitAfterEntry waits until Span after the journey's entry, on the
	// customer's calendar.
	WaitAfterEntry WaitKind = "after_entry"
	// WaitEvents waits for the first of several events, each with its own
	// branch (Branches), or the timeout (OnTimeout).
	WaitEvents WaitKind = "events"
)

// WaitStep pauses the journey.
type WaitStep struct {
	Kind      WaitKind      `json:"kind,omitempty"`
	Duration  time.Duration `json:"duration,omitempty"`   // WaitFor
	Until     TimeOfDay     `json:"until,omitempty"`      // WaitUntil
	Event     string        `json:"event,omitempty"`      // WaitEvent: event name
	Of        string        `json:"of,omitempty"`         // WaitEvent: the send step whose message the event is about ("": any)
	When      *rules.Rule   `json:"when,omitempty"`       // WaitEvent: optional rule over customer and event
	Timeout   time.Duration `json:"timeout,omitempty"`    // WaitEvent
	OnEvent   int           `json:"on_event,omitempty"`   // WaitEvent: index when the event happened (often Next)
	OnTimeout int           `json:"on_timeout,omitempty"` // WaitEvent, WaitEvents: index when the timeout fired
	// Branches are the events a WaitEvents listens for, in the order the
	// playbook lists them; the first whose event arrives (and whose rule
	// holds) ends the wait.
	Branches []EventBranch `json:"branches,omitempty"`
	// Span is the wait's length on the customer's calendar (WaitFor's
	// duration, WaitEvent's timeout, WaitAfterEntry's offset); Duration
	// and Timeout hold its Approx. Plans compiled before calendar waits
	// have none and wait the fixed Duration or Timeout.
	Span *Span `json:"span,omitempty"`
}

// EventBranch is one event of a wait for several events, and where the
// journey goes when it arrives.
type EventBranch struct {
	Event string      `json:"event,omitempty"`
	Of    string      `json:"of,omitempty"`   // as WaitStep.Of
	When  *rules.Rule `json:"when,omitempty"` // optional rule over customer and event
	Start int         `json:"start,omitempty"`
}

// Events names the events a wait listens for: its one event, or each
// branch's.
func (w *WaitStep) Events() []string {
	switch w.Kind {
	case WaitEvent:
		return []string{w.Event}
	case WaitEvents:
		names := make([]string, len(w.Branches))
		for i, b := range w.Branches {
			names[i] = b.Event
		}
		return names
	}
	return nil
}

// IfStep branches on a rule.
type IfStep struct {
	Cond *rules.Rule `json:"cond,omitempty"`
	Then int         `json:"then,omitempty"`
	Else int         `json:"else,omitempty"`
}

// SplitStep sends each customer down one weighted branch, chosen by a
// deterministic hash of playbook, step and customer.
type SplitStep struct {
	Branches []SplitBranch `json:"branches,omitempty"`
}

// SplitBranch is one variant of a split; weights of a split add up to 100.
type SplitBranch struct {
	Name   string  `json:"name,omitempty"`
	Weight float64 `json:"weight,omitempty"`
	Start  int     `json:"start,omitempty"`
}

// UpdateStep changes the customer record.
type UpdateStep struct {
	Set        map[string]*rules.Rule `json:"set,omitempty"` // attribute name → value rule (Text kind); core fields or attrs.<name>
	AddTags    []string               `json:"add_tags,omitempty"`
	RemoveTags []string               `json:"remove_tags,omitempty"`
	Tier       string                 `json:"tier,omitempty"`
	Stage      string                 `json:"stage,omitempty"` // a customer lifecycle stage, one of CustomerStages
}

// CustomerStages are the lifecycle stages a customer record can be in
// (customer.stage), as opposed to the Stage a playbook serves.
var CustomerStages = []string{"prospect", "new", "active", "loyal", "at_risk", "lapsed"}

// PointsStep awards (positive) or deducts (negative) loyalty points.
type PointsStep struct {
	Amount *rules.Rule `json:"amount,omitempty"` // Number; rounded to whole points
	Deduct bool        `json:"deduct,omitempty"`
	Reason string      `json:"reason,omitempty"`
}

// CouponStep issues a unique coupon code.
type CouponStep struct {
	Kind    string        `json:"kind,omitempty"`  // "percent" or "amount"
	Value   *rules.Rule   `json:"value,omitempty"` // Number
	Expires time.Duration `json:"expires,omitempty"`
	Prefix  string        `json:"prefix,omitempty"`
}

// TaskStep hands work to a person.
type TaskStep struct {
	Assignee string        `json:"assignee,omitempty"` // a role or queue, e.g. relationship_manager, service_desk
	Title    string        `json:"title,omitempty"`    // may contain {{ placeholders }}
	Due      time.Duration `json:"due,omitempty"`
	Priority string        `json:"priority,omitempty"` // low, normal, high
}

// ExitStep ends the journey with a reason.
type ExitStep struct {
	Reason string `json:"reason,omitempty"`
}
