// Package workflows runs each enrollment of a customer in a playbook as a
// durable Temporal workflow, Journey, that interprets the compiled
// engine.Plan step by step, and offers the client helpers to start it
// (Enroll) and feed it events (SignalEvent). Package simulate runs it
// without a server; it is apart because it links the SDK's test suite.
//
// The workflow carries the compiled plan (engine.Pin) and the playbook
// source in its input, so an enrollment always finishes on the version and
// the very program it started with, whatever is deployed or whichever
// compiler the worker has later, and any worker can run any version.
package workflows

import (
	"encoding/json"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/rules"
)

// Names shared by the workflow, the worker and the clients.
const (
	// WorkflowName is the registered workflow type.
	WorkflowName = "Journey"
	// TaskQueue is the task queue journeys run on.
	TaskQueue = "rapport"
	// EventSignal is the signal channel that delivers customer events
	// (payload rules.Event) to a running journey.
	EventSignal = "event"
	// StateQuery answers the journey's State.
	StateQuery = "state"
)

// Error types of the journey's non-retryable failures.
const (
	ErrTypeInvalidPlaybook = "InvalidPlaybook"
	ErrTypeRule            = "RuleError"
	ErrTypeRunaway         = "RunawayLoop"
)

// JourneyInput starts (or, with Resume, continues) one enrollment.
//
// Every field is part of the contract with journeys in flight: fields are
// added, never renamed, removed or re-typed (changing Source from []byte to
// string once broke every running journey; see sourceBytes).
type JourneyInput struct {
	Playbook string `json:"playbook"`
	Version  string `json:"version"`
	// Source is the playbook YAML the enrollment is pinned to; a string so
	// the Temporal UI shows it as text.
	Source string `json:"source"`
	// Plan is the compiled plan (engine.Pin) the journey runs. Journeys
	// started before plans were pinned have none and compile Source.
	Plan       json.RawMessage `json:"plan,omitempty"`
	CustomerID string          `json:"customer_id"`
	Trigger    rules.Event     `json:"trigger"`
	Resume     *Checkpoint     `json:"resume,omitempty"` // set on continue-as-new
	// Edition is the set of workflow changes the journey follows from
	// its start without asking workflow.GetVersion (see Edition1); 0 for
	// journeys started without one (before editions, or without
	// RAPPORT_JOURNEY_EDITION), which ask.
	Edition int `json:"edition,omitempty"`
}

// JourneyResult is how an enrollment ended.
type JourneyResult struct {
	EnrollmentID string            `json:"enrollment_id"`
	Status       activities.Status `json:"status"`
	Reason       string            `json:"reason,omitempty"`
	Holdout      bool              `json:"holdout,omitempty"`
	// Converted: the enrollment reached its goal (and went on, unless
	// Status is converted).
	Converted bool     `json:"converted,omitempty"`
	Counters  Counters `json:"counters"`
}

// Counters summarise an enrollment across continue-as-new.
type Counters struct {
	Steps  int `json:"steps"`  // steps executed
	Sends  int `json:"sends"`  // send steps executed (sent or not)
	Events int `json:"events"` // distinct events received
	Runs   int `json:"runs"`   // workflow runs (1 + continue-as-new count)
	// Messages counts what became of the sends, by outcome: "sent",
	// "failed (no_address)", "suppressed (consent)", … so an operator
	// reading the result sees what the customer actually received.
	// (Journeys recorded before it have none.)
	Messages map[string]int `json:"messages,omitempty"`
}

// countMessage adds one send's outcome to c.Messages.
func (c *Counters) countMessage(res activities.SendResult) {
	if c.Messages == nil {
		c.Messages = map[string]int{}
	}
	outcome := string(res.Status)
	switch {
	case res.Status == activities.SendDeferred:
		outcome = string(activities.SendSuppressed) + " (deferred too often)"
	case res.Status != activities.SendSent && res.Reason != "":
		outcome += " (" + reasonWord(res.Reason) + ")"
	}
	c.Messages[outcome]++
}

// reasonWord keeps a reason that is a word (consent, no_address); a long
// failure text is counted under its status alone.
func reasonWord(reason string) string {
	for _, r := range reason {
		if !(r == '_' || r >= 'a' && r <= 'z') {
			return "error"
		}
	}
	return reason
}

// Checkpoint is everything a journey needs to carry on in a fresh run after
// continue-as-new.
type Checkpoint struct {
	EnrollmentID string         `json:"enrollment_id"`
	PC           int            `json:"pc"`                 // step to run next
	Deadline     time.Time      `json:"deadline,omitzero"`  // pending wait of step PC, when cut mid-wait
	Deferral     *Deferral      `json:"deferral,omitempty"` // set when cut mid-deferral of the send at PC
	Visits       map[string]int `json:"visits"`             // how often each step was reached
	Seen         []string       `json:"seen,omitempty"`     // recent event IDs, oldest first
	EnrolledAt   time.Time      `json:"enrolled_at"`        // start of the first run
	GoalDeadline time.Time      `json:"goal_deadline,omitzero"`
	Holdout      bool           `json:"holdout,omitempty"`
	Converted    bool           `json:"converted,omitempty"` // reached a goal that continues
	Coupon       rules.Coupon   `json:"coupon"`
	Event        rules.Event    `json:"event"` // the event rules currently see
	Steps        []StepLog      `json:"steps,omitempty"`
	Seq          int            `json:"seq"`
	Counters     Counters       `json:"counters"`
	// SinceWait counts the steps since the last wait that waited, so the
	// runaway guard holds across runs.
	SinceWait int `json:"since_wait,omitempty"`
	// Messages are the messages of the plan's watched send steps, by step
	// id (see engagement.go); none for a plan that watches none.
	Messages map[string]MessageState `json:"messages,omitempty"`
}

// MessageState is what a journey knows of the message a watched send step
// sent last: the send's key and result, and the message events received
// about it, the first of each name (a wait with `of` that starts after
// one arrived ends at once, its rule judging that event).
type MessageState struct {
	Key    string                 `json:"key"`
	Status string                 `json:"status"` // sent, suppressed or failed
	Events map[string]rules.Event `json:"events,omitempty"`
}

// Deferral is a send step waiting to be tried again: Attempt is the try
// that was deferred, Reason why (activities.ReasonQuietHours or
// activities.ReasonFrequencyCap), Until when it may be tried. (Checkpoints
// written on 2026-11-25 before Until existed carry it in
// Checkpoint.Deadline.)
type Deferral struct {
	Reason  string    `json:"reason"`
	Attempt int       `json:"attempt"`
	Until   time.Time `json:"until,omitzero"`
}

// StepLog is one thing the journey did, for the state query and the
// simulator. Seq numbers entries across continue-as-new.
type StepLog struct {
	Seq    int       `json:"seq"`
	At     time.Time `json:"at"`
	StepID string    `json:"step"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail,omitempty"`
}

// State is the answer to the "state" query.
type State struct {
	Playbook     string            `json:"playbook"`
	Version      string            `json:"version"`
	CustomerID   string            `json:"customer_id"`
	EnrollmentID string            `json:"enrollment_id"`
	Status       activities.Status `json:"status"`
	CurrentStep  string            `json:"current_step,omitempty"`
	WaitingFor   string            `json:"waiting_for,omitempty"`
	Holdout      bool              `json:"holdout,omitempty"`
	Converted    bool              `json:"converted,omitempty"` // reached the goal
	Steps        []StepLog         `json:"steps"`
	Outcome      activities.Status `json:"outcome,omitempty"`
	Reason       string            `json:"reason,omitempty"`
	Counters     Counters          `json:"counters"`
	// Messages is what became of the messages of the plan's watched send
	// steps, as message("step") reads it.
	Messages map[string]rules.Message `json:"messages,omitempty"`
	// EstimatedEvents is the journey's own count of the history events of
	// the current run (exact on a server: see GetCurrentHistoryLength).
	EstimatedEvents int `json:"estimated_events"`
}
