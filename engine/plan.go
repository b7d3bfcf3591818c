// Package engine holds the playbook language: the YAML model with source
// positions, the compiler that turns a playbook into an immutable Plan of
// flat steps with type-checked rules, and the registry of compiled plans.
package engine

import (
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
	Name        string
	Version     string // hex sha256 of the source, first 12 characters
	Description string
	Stage       Stage
	Owner       string
	Topic       string // consent topic of the marketing messages; default "marketing"
	Source      []byte // the YAML the plan was compiled from
	File        string // path the source was read from, for messages

	Trigger   Trigger
	Entry     Entry
	Goal      *Goal
	ExitWhen  *rules.Rule
	Policies  Policies
	Templates map[string]*Template

	// Steps is the flattened program: Steps[0] runs first; each step names
	// its successor(s) by index, and End (-1) finishes the journey.
	Steps []Step
	// StepIndex maps step IDs to indexes.
	StepIndex map[string]int
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
	Kind  TriggerKind
	Event string        // TriggerEvent: event name
	When  *rules.Rule   // TriggerEvent: optional rule over customer and event
	Every time.Duration // TriggerSegment: scan interval (or Cron)
	Cron  string        // TriggerSegment: cron spec, UTC
	Where *rules.Rule   // TriggerSegment and TriggerDate: optional rule over the customer
	Date  string        // TriggerDate: "birthday" or "signup_anniversary"
	At    TimeOfDay     // TriggerDate: local time of day the journey starts
}

// TimeOfDay is a wall-clock time in the customer's zone, minutes after midnight.
type TimeOfDay struct{ Minutes int }

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
	Reentry  Reentry
	Cooldown time.Duration
	Audience *rules.Rule // optional: who may enter at all
	Holdout  float64     // percent (0–50) kept as control group
}

// Goal is the conversion the playbook works towards.
type Goal struct {
	Event  string
	When   *rules.Rule // optional rule over customer and event
	Within time.Duration
}

// Policies are constraints on the whole journey.
type Policies struct {
	QuietHours   *QuietHours
	FrequencyCap *FrequencyCap
}

// QuietHours: no send between Start and End in the customer's local time
// (the window may wrap midnight, e.g. 21:00–08:00).
type QuietHours struct{ Start, End TimeOfDay }

// CapAction is what happens to a send over the frequency cap.
type CapAction string

const (
	CapSkip  CapAction = "skip"  // record as suppressed and go on
	CapDefer CapAction = "defer" // wait until the cap allows it, then send
)

// FrequencyCap limits sends of this playbook to one customer.
type FrequencyCap struct {
	Max    int
	Per    time.Duration
	Action CapAction
}

// Template is a message with locale variants; Default is the locale used
// when the customer's locale has no variant (the first one declared).
type Template struct {
	Name     string
	Default  string
	Variants map[string]*Variant
}

// Variant is one locale of a template. Each text field is a sequence of
// literal text and {{ rule }} placeholders, type-checked at compile time.
type Variant struct {
	Locale  string
	Subject string
	Text    string
	HTML    string
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
	ID   string
	Kind StepKind
	Line int // position in the playbook, for messages and the simulator
	Col  int
	Next int // index of the following step, or End

	Send   *SendStep
	Wait   *WaitStep
	If     *IfStep
	Split  *SplitStep
	Update *UpdateStep
	Points *PointsStep
	Coupon *CouponStep
	Task   *TaskStep
	Exit   *ExitStep
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
// complaint acknowledgements) ignore marketing consent, holdout and caps.
type SendStep struct {
	Channel       Channel
	Template      string
	Transactional bool
}

// WaitKind is the flavour of a wait.
type WaitKind string

const (
	WaitFor   WaitKind = "for"   // a fixed duration
	WaitUntil WaitKind = "until" // next local time of day in the customer's zone
	WaitEvent WaitKind = "event" // an event, with a timeout
)

// WaitStep pauses the journey.
type WaitStep struct {
	Kind      WaitKind
	Duration  time.Duration // WaitFor
	Until     TimeOfDay     // WaitUntil
	Event     string        // WaitEvent: event name
	When      *rules.Rule   // WaitEvent: optional rule over customer and event
	Timeout   time.Duration // WaitEvent
	OnEvent   int           // WaitEvent: index when the event happened (often Next)
	OnTimeout int           // WaitEvent: index when the timeout fired
}

// IfStep branches on a rule.
type IfStep struct {
	Cond *rules.Rule
	Then int
	Else int
}

// SplitStep sends each customer down one weighted branch, chosen by a
// deterministic hash of playbook, step and customer.
type SplitStep struct {
	Branches []SplitBranch
}

// SplitBranch is one variant of a split; weights of a split add up to 100.
type SplitBranch struct {
	Name   string
	Weight float64
	Start  int
}

// UpdateStep changes the customer record.
type UpdateStep struct {
	Set        map[string]*rules.Rule // attribute name → value rule (Text kind); core fields or attrs.<name>
	AddTags    []string
	RemoveTags []string
	Tier       string
	Stage      string // a customer lifecycle stage, one of CustomerStages
}

// CustomerStages are the lifecycle stages a customer record can be in
// (customer.stage), as opposed to the Stage a playbook serves.
var CustomerStages = []string{"prospect", "new", "active", "loyal", "at_risk", "lapsed"}

// PointsStep awards (positive) or deducts (negative) loyalty points.
type PointsStep struct {
	Amount *rules.Rule // Number; rounded to whole points
	Deduct bool
	Reason string
}

// CouponStep issues a unique coupon code.
type CouponStep struct {
	Kind    string      // "percent" or "amount"
	Value   *rules.Rule // Number
	Expires time.Duration
	Prefix  string
}

// TaskStep hands work to a person.
type TaskStep struct {
	Assignee string // a role or queue, e.g. relationship_manager, service_desk
	Title    string // may contain {{ placeholders }}
	Due      time.Duration
	Priority string // low, normal, high
}

// ExitStep ends the journey with a reason.
type ExitStep struct {
	Reason string
}
