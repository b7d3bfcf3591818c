// Package report turns the counts the store reads from PostgreSQL into the
// figures a marketer asks of a playbook: the enrollment funnel and
// conversion per playbook version, what each step did (reached, sent,
// suppressed by reason, deferred, failed), conversion per split variant,
// and whether the playbook beats its holdout group (lift with a 95%
// confidence interval and a p-value).
//
// Everything here is a pure function of its input, so every figure can be
// checked by hand in a test; the SQL lives in store/report.go.
package report

import (
	"sort"
	"time"
)

// Input is what the store reads for a report.
type Input struct {
	GeneratedAt time.Time
	Since       time.Duration // 0: all time
	Playbook    string        // "": every playbook
	Outcomes    []OutcomeRow
	Steps       []StepRow
	Variants    []VariantRow
	Engagement  []EngagementRow
	// Programme counts the enrollments in playbooks that take part in the
	// global control group: treated (neither in the group nor in the
	// playbook's own holdout) and in the group, with their conversions.
	Programme [2]Group // [treated, global control]
}

// OutcomeRow counts the admitted enrollments (rejected ones excluded) of
// one playbook version, holdout arm and status.
type OutcomeRow struct {
	Playbook, Version string
	Holdout           bool
	// GlobalControl: the customers were in the global control group (and
	// so holdouts). They count in the funnel, but not in the playbook's
	// holdout comparison: they received nothing from any playbook, so
	// against them the lift would include every other playbook's effect.
	GlobalControl bool
	Status        string // active, completed, converted, exited, failed
	Count         int
	// Converted is how many of Count reached the goal, whatever they did
	// next (status converted: the goal ended the journey).
	Converted int
	// ConvertSeconds holds each converted enrollment's time from start
	// to conversion.
	ConvertSeconds []float64
}

// StepRow is what one step of a playbook did.
type StepRow struct {
	Playbook, Step string
	Reached        int            // distinct enrollments with a record of the step
	Sent, Failed   int            // messages
	Queued         int            // messages not yet delivered (in flight or retrying)
	Suppressed     map[string]int // messages by suppression reason
	Deferred       map[string]int // deferrals by reason (quiet_hours, frequency_cap)
	First          time.Time      // first record, to order steps
	// Engagement counts the step's sent messages by what providers and
	// tracking reported of them: each message once per kind (delivered,
	// opened, clicked, bounced, complained, unsubscribed).
	Engagement map[string]int
}

// VariantRow counts the treated enrollments that went down one branch of
// a split step, and how many of them converted.
type VariantRow struct {
	Playbook, Step, Variant string
	Enrolled, Converted     int
}

// EngagementRow counts, per playbook, enrollments that were sent at least
// one message, those of them in which the customer then did anything
// (any event after the first message, before the enrollment ended), and
// enrollments during which the customer complained.
type EngagementRow struct {
	Playbook                      string
	Enrolled, Messaged, Responded int
	Complained                    int
}

// Report is the whole report; its JSON form is the stable interface of
// `rapport report --json` (see docs/metrics.md).
type Report struct {
	GeneratedAt  time.Time  `json:"generated_at"`
	SinceSeconds float64    `json:"since_seconds,omitempty"`
	Playbooks    []Playbook `json:"playbooks"`
	// Programme compares, over every playbook that takes part in the
	// global control group, the conversion of treated enrollments with
	// that of enrollments of customers in the group (who received
	// nothing): the whole programme's lift.
	Programme Comparison `json:"programme"`
}

// Playbook is one playbook's section.
type Playbook struct {
	Name          string     `json:"playbook"`
	Total         Funnel     `json:"total"`
	Versions      []Funnel   `json:"versions"`
	Steps         []Step     `json:"steps"`
	Variants      []Variant  `json:"variants"`
	Holdout       Comparison `json:"holdout"`
	ResponseRate  *float64   `json:"response_rate"`
	ComplaintRate *float64   `json:"complaint_rate"`
	Messaged      int        `json:"messaged"`
	Responded     int        `json:"responded"`
	Complained    int        `json:"complained"`
}

// Funnel is the enrollment funnel of a playbook version (or all versions:
// Version "").
type Funnel struct {
	Version   string `json:"version,omitempty"`
	Enrolled  int    `json:"enrolled"`
	Holdout   int    `json:"holdout"`
	Active    int    `json:"active"`
	Completed int    `json:"completed"`
	Exited    int    `json:"exited"`
	Failed    int    `json:"failed"`
	// EndedAtGoal counts the journeys the goal ended (exit: true, or
	// started before goals measured); with Active, Completed, Exited and
	// Failed it adds up to Enrolled.
	EndedAtGoal int `json:"ended_at_goal"`
	// Converted counts the enrollments that reached the goal within its
	// window, whether the goal ended them or they went on.
	Converted                  int      `json:"converted"`
	ConversionRate             *float64 `json:"conversion_rate"`
	MedianTimeToConvertSeconds *float64 `json:"median_time_to_convert_seconds"`

	convertSeconds []float64
}

// Step is one step's figures.
type Step struct {
	Step       string         `json:"step"`
	Reached    int            `json:"reached"`
	Sent       int            `json:"sent"`
	Suppressed map[string]int `json:"suppressed"`
	Deferred   map[string]int `json:"deferred"`
	Failed     int            `json:"failed"`
	Queued     int            `json:"queued"`
	// Delivered … Unsubscribed count the step's messages that providers or
	// tracking reported so (each message once per kind); each rate is the
	// count over sent, null without sent messages (docs/metrics.md).
	Delivered       int      `json:"delivered"`
	Opened          int      `json:"opened"`
	Clicked         int      `json:"clicked"`
	Bounced         int      `json:"bounced"`
	Complained      int      `json:"complained"`
	Unsubscribed    int      `json:"unsubscribed"`
	DeliveryRate    *float64 `json:"delivery_rate"`
	OpenRate        *float64 `json:"open_rate"`
	ClickRate       *float64 `json:"click_rate"`
	BounceRate      *float64 `json:"bounce_rate"`
	ComplaintRate   *float64 `json:"complaint_rate"`
	UnsubscribeRate *float64 `json:"unsubscribe_rate"`
}

// withEngagement fills the engagement counts and their rates over sent.
func (s Step) withEngagement(e map[string]int) Step {
	s.Delivered, s.Opened, s.Clicked = e["delivered"], e["opened"], e["clicked"]
	s.Bounced, s.Complained, s.Unsubscribed = e["bounced"], e["complained"], e["unsubscribed"]
	s.DeliveryRate, s.OpenRate, s.ClickRate = Rate(s.Delivered, s.Sent), Rate(s.Opened, s.Sent), Rate(s.Clicked, s.Sent)
	s.BounceRate, s.ComplaintRate, s.UnsubscribeRate = Rate(s.Bounced, s.Sent), Rate(s.Complained, s.Sent), Rate(s.Unsubscribed, s.Sent)
	return s
}

// Variant is one branch of a split.
type Variant struct {
	Step           string   `json:"step"`
	Variant        string   `json:"variant"`
	Enrolled       int      `json:"enrolled"`
	Converted      int      `json:"converted"`
	ConversionRate *float64 `json:"conversion_rate"`
}

// Build assembles the report. Playbooks are sorted by name, versions by
// name, steps by their first record (the order customers reach them),
// variants by step and name.
func Build(in Input) Report {
	r := Report{GeneratedAt: in.GeneratedAt, SinceSeconds: in.Since.Seconds(), Playbooks: []Playbook{}}
	byName := map[string]*Playbook{}
	get := func(name string) *Playbook {
		if p, ok := byName[name]; ok {
			return p
		}
		p := &Playbook{Name: name, Versions: []Funnel{}, Steps: []Step{}, Variants: []Variant{}}
		byName[name] = p
		return p
	}
	arms := map[string]*[2]Group{} // playbook → [treated, control]
	for _, o := range in.Outcomes {
		p := get(o.Playbook)
		addOutcome(&p.Total, o)
		addOutcome(version(p, o.Version), o)
		if arms[o.Playbook] == nil {
			arms[o.Playbook] = &[2]Group{}
		}
		if o.GlobalControl {
			continue // measured by the programme comparison instead
		}
		arm := &arms[o.Playbook][0]
		if o.Holdout {
			arm = &arms[o.Playbook][1]
		}
		arm.Enrolled += o.Count
		arm.Converted += o.Converted
	}
	addSteps(get, in.Steps)
	for _, v := range in.Variants {
		p := get(v.Playbook)
		p.Variants = append(p.Variants, Variant{Step: v.Step, Variant: v.Variant, Enrolled: v.Enrolled,
			Converted: v.Converted, ConversionRate: Rate(v.Converted, v.Enrolled)})
	}
	for _, e := range in.Engagement {
		p := get(e.Playbook)
		p.Messaged, p.Responded, p.Complained = e.Messaged, e.Responded, e.Complained
		p.ResponseRate, p.ComplaintRate = Rate(e.Responded, e.Messaged), Rate(e.Complained, e.Enrolled)
	}
	for name, p := range byName {
		a := arms[name]
		if a == nil {
			a = &[2]Group{}
		}
		p.Holdout = Compare(NewGroup(a[0].Enrolled, a[0].Converted), NewGroup(a[1].Enrolled, a[1].Converted))
		finish(p)
		r.Playbooks = append(r.Playbooks, *p)
	}
	sort.Slice(r.Playbooks, func(i, j int) bool { return r.Playbooks[i].Name < r.Playbooks[j].Name })
	r.Programme = Compare(in.Programme[0], in.Programme[1])
	return r
}

// version finds or adds the funnel of one version.
func version(p *Playbook, v string) *Funnel {
	for i := range p.Versions {
		if p.Versions[i].Version == v {
			return &p.Versions[i]
		}
	}
	p.Versions = append(p.Versions, Funnel{Version: v})
	return &p.Versions[len(p.Versions)-1]
}

func addOutcome(f *Funnel, o OutcomeRow) {
	f.Enrolled += o.Count
	if o.Holdout {
		f.Holdout += o.Count
	}
	switch o.Status {
	case "active":
		f.Active += o.Count
	case "completed":
		f.Completed += o.Count
	case "exited":
		f.Exited += o.Count
	case "failed":
		f.Failed += o.Count
	case "converted":
		f.EndedAtGoal += o.Count
	}
	f.Converted += o.Converted
	f.convertSeconds = append(f.convertSeconds, o.ConvertSeconds...)
}

func addSteps(get func(string) *Playbook, rows []StepRow) {
	sorted := append([]StepRow(nil), rows...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i].First, sorted[j].First
		if a.IsZero() != b.IsZero() {
			return b.IsZero() // steps never reached (updates) after the others
		}
		if !a.Equal(b) {
			return a.Before(b)
		}
		return sorted[i].Step < sorted[j].Step
	})
	for _, s := range sorted {
		p := get(s.Playbook)
		p.Steps = append(p.Steps, Step{Step: s.Step, Reached: s.Reached, Sent: s.Sent, Failed: s.Failed,
			Queued: s.Queued, Suppressed: nonNil(s.Suppressed), Deferred: nonNil(s.Deferred)}.withEngagement(s.Engagement))
	}
}

func nonNil(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

// finish computes the rates and orders the lists.
func finish(p *Playbook) {
	rate := func(f *Funnel) {
		f.ConversionRate = Rate(f.Converted, f.Enrolled)
		f.MedianTimeToConvertSeconds = Median(f.convertSeconds)
	}
	rate(&p.Total)
	for i := range p.Versions {
		rate(&p.Versions[i])
	}
	sort.Slice(p.Versions, func(i, j int) bool { return p.Versions[i].Version < p.Versions[j].Version })
	sort.Slice(p.Variants, func(i, j int) bool {
		a, b := p.Variants[i], p.Variants[j]
		if a.Step != b.Step {
			return a.Step < b.Step
		}
		return a.Variant < b.Variant
	})
}
