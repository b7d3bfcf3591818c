package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/rapport-crm/rapport/rules"
)

// PlanFormat is the version of the JSON form of a Plan that a journey
// carries in its input (see Pin). The form is a contract with every journey
// in flight: fields are only ever added, never renamed, removed or given
// another meaning. A change that cannot be made that way takes a new
// format number, and DecodePlan keeps reading every older one.
const PlanFormat = 1

// ErrNewerFormat is what DecodePlan answers for a plan pinned by a newer
// Rapport than this one: nothing is wrong with the journey, this worker is
// too old to run it.
var ErrNewerFormat = errors.New("the plan was pinned by a newer Rapport")

// pinned is the JSON form of a plan: the format number and the plan, its
// rules as source text (compiled again on decoding).
type pinned struct {
	Format int   `json:"format"`
	Plan   *Plan `json:"plan"`
}

// VersionOf is the version of a playbook source: the first 12 hex digits
// of its sha256.
func VersionOf(src []byte) string {
	sum := sha256.Sum256(src)
	return hex.EncodeToString(sum[:])[:12]
}

// Pin encodes the compiled plan for a journey to carry. A running journey
// decodes this plan instead of compiling its source again, so a later
// compiler that numbers, names or orders steps differently cannot move the
// step ids, indexes or idempotency keys under it.
func Pin(p *Plan) (json.RawMessage, error) {
	data, err := json.Marshal(pinned{Format: PlanFormat, Plan: p})
	if err != nil {
		return nil, fmt.Errorf("pin plan %s version %s: %w", p.Name, p.Version, err)
	}
	return data, nil
}

// pinCache shares decoded plans between the journeys that carry the same
// pinned plan (keyed by the sha256 of its JSON), as CompileCached shares
// compiled ones: thousands of cached journeys hold one *Plan.
var pinCache sync.Map // [32]byte → cachedPlan

// DecodePlan reads a plan written by Pin, in any format this engine has
// ever written, and checks that its steps form a program the interpreter
// can run. It is deterministic: the same bytes give the same plan.
func DecodePlan(data []byte) (*Plan, error) {
	key := sha256.Sum256(data)
	if v, ok := pinCache.Load(key); ok {
		c := v.(cachedPlan)
		return c.plan, c.err
	}
	p, err := decodePlan(data)
	v, _ := pinCache.LoadOrStore(key, cachedPlan{p, err})
	c := v.(cachedPlan)
	return c.plan, c.err
}

func decodePlan(data []byte) (*Plan, error) {
	var pin pinned
	// A field this engine does not know means a newer Rapport pinned the
	// plan and gave the field a meaning: running it without would change
	// what the journey does, so it is an error (the journey waits for a
	// worker that knows the field).
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pin); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			err = fmt.Errorf("%w: %w", err, ErrNewerFormat)
		}
		return nil, fmt.Errorf("decode pinned plan: %w", err)
	}
	if pin.Format > PlanFormat {
		return nil, fmt.Errorf("decode pinned plan: format %d; this engine reads formats 1 to %d: %w", pin.Format, PlanFormat, ErrNewerFormat)
	}
	if pin.Format < 1 {
		return nil, fmt.Errorf("decode pinned plan: format %d; this engine reads formats 1 to %d", pin.Format, PlanFormat)
	}
	if pin.Plan == nil {
		return nil, fmt.Errorf("decode pinned plan: no plan")
	}
	if err := pin.Plan.checkProgram(); err != nil {
		return nil, fmt.Errorf("decode pinned plan %s version %s: %w", pin.Plan.Name, pin.Plan.Version, err)
	}
	return pin.Plan, nil
}

// checkProgram verifies what the interpreter relies on: every step has the
// part its kind needs, every jump lands on a step or End, every step ID
// indexes its own step, and every send names a template with its default
// variant. The compiler guarantees all of it; a decoded plan is checked
// because a bad one would otherwise panic inside workflow code.
func (p *Plan) checkProgram() error {
	n := len(p.Steps)
	jump := func(i int, step *Step, what string, to int) error {
		if to != End && (to < 0 || to >= n) {
			return fmt.Errorf("step %d (%s): %s jumps to %d, outside 0..%d", i, step.ID, what, to, n-1)
		}
		return nil
	}
	if len(p.StepIndex) != n {
		return fmt.Errorf("the step index has %d entries for %d steps", len(p.StepIndex), n)
	}
	if err := p.checkHeader(); err != nil {
		return err
	}
	for i := range p.Steps {
		s := &p.Steps[i]
		if j, ok := p.StepIndex[s.ID]; !ok {
			return fmt.Errorf("step %d (%s): not in the step index", i, s.ID)
		} else if j != i {
			return fmt.Errorf("step %d (%s): the step index names step %d", i, s.ID, j)
		}
		jumps := []target{{"next", s.Next}}
		var missing bool
		switch s.Kind {
		case KindSend:
			missing = s.Send == nil
			if !missing {
				err := p.checkTemplate(s.Send.Template)
				if err == nil {
					err = oneOf("channel", string(s.Send.Channel), ChannelEmail, ChannelSMS, ChannelWebhook)
				}
				if err != nil {
					return fmt.Errorf("step %d (%s): %w", i, s.ID, err)
				}
			}
		case KindWait:
			missing = s.Wait == nil
			if !missing {
				err := oneOf("wait kind", string(s.Wait.Kind), WaitFor, WaitUntil, WaitEvent, WaitAfterEntry, WaitEvents)
				if err == nil {
					err = ruleOf("when", s.Wait.When, rules.Bool, true)
				}
				for _, b := range s.Wait.Branches {
					if err == nil {
						err = ruleOf(b.Event+" when", b.When, rules.Bool, true)
					}
					jumps = append(jumps, target{b.Event, b.Start})
				}
				if err == nil && s.Wait.Kind == WaitEvents && len(s.Wait.Branches) == 0 {
					err = errors.New("a wait for several events without events")
				}
				if err != nil {
					return fmt.Errorf("step %d (%s): %w", i, s.ID, err)
				}
				switch s.Wait.Kind {
				case WaitEvent:
					jumps = append(jumps, target{"on_event", s.Wait.OnEvent}, target{"on_timeout", s.Wait.OnTimeout})
				case WaitEvents:
					jumps = append(jumps, target{"on_timeout", s.Wait.OnTimeout})
				}
			}
		case KindIf:
			missing = s.If == nil || s.If.Cond == nil
			if !missing {
				if err := ruleOf("if", s.If.Cond, rules.Bool, false); err != nil {
					return fmt.Errorf("step %d (%s): %w", i, s.ID, err)
				}
				jumps = append(jumps, target{"then", s.If.Then}, target{"else", s.If.Else})
			}
		case KindSplit:
			missing = s.Split == nil || len(s.Split.Branches) == 0
			for b, br := range sliceOrNil(s.Split) {
				jumps = append(jumps, target{fmt.Sprintf("branch %d", b), br.Start})
			}
		case KindUpdate:
			missing = s.Update == nil
			if !missing {
				for _, name := range slices.Sorted(maps.Keys(s.Update.Set)) {
					if err := ruleOf("set "+name, s.Update.Set[name], rules.Text, false); err != nil {
						return fmt.Errorf("step %d (%s): %w", i, s.ID, err)
					}
				}
			}
		case KindPoints:
			missing = s.Points == nil || s.Points.Amount == nil
			if !missing {
				if err := ruleOf("amount", s.Points.Amount, rules.Number, false); err != nil {
					return fmt.Errorf("step %d (%s): %w", i, s.ID, err)
				}
			}
		case KindCoupon:
			missing = s.Coupon == nil || s.Coupon.Value == nil
			if !missing {
				if err := ruleOf("value", s.Coupon.Value, rules.Number, false); err != nil {
					return fmt.Errorf("step %d (%s): %w", i, s.ID, err)
				}
			}
		case KindTask:
			missing = s.Task == nil
		case KindExit:
			missing = s.Exit == nil
		case KindGoto:
		default:
			return fmt.Errorf("step %d (%s): unknown kind %q", i, s.ID, s.Kind)
		}
		if missing {
			return fmt.Errorf("step %d (%s): a %s step without its %s part", i, s.ID, s.Kind, s.Kind)
		}
		for _, t := range jumps {
			if err := jump(i, s, t.what, t.to); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkHeader checks the plan's rules outside the steps and the values
// the interpreter switches on.
func (p *Plan) checkHeader() error {
	checks := []error{
		oneOf("reentry", string(p.Entry.Reentry), ReentryNever, ReentryAlways, ReentryAfter),
		ruleOf("trigger when", p.Trigger.When, rules.Bool, true),
		ruleOf("trigger where", p.Trigger.Where, rules.Bool, true),
		ruleOf("entry audience", p.Entry.Audience, rules.Bool, true),
		ruleOf("exit_when", p.ExitWhen, rules.Bool, true),
	}
	for _, et := range p.Trigger.Events {
		checks = append(checks, ruleOf("trigger "+et.Event+" when", et.When, rules.Bool, true))
	}
	if p.Goal != nil {
		checks = append(checks, ruleOf("goal when", p.Goal.When, rules.Bool, true))
	}
	if fc := p.Policies.FrequencyCap; fc != nil {
		checks = append(checks, oneOf("frequency cap action", string(fc.Action), CapSkip, CapDefer))
	}
	return errors.Join(checks...)
}

// oneOf checks that value is one of the allowed ones.
func oneOf[T ~string](what, value string, allowed ...T) error {
	for _, a := range allowed {
		if string(a) == value {
			return nil
		}
	}
	return fmt.Errorf("%s %q is not one of %v", what, value, allowed)
}

// ruleOf checks that a rule slot holds a rule of the kind it needs
// (optional slots may be empty).
func ruleOf(what string, r *rules.Rule, kind rules.Kind, optional bool) error {
	switch {
	case r == nil && optional:
		return nil
	case r == nil:
		return fmt.Errorf("%s: no rule", what)
	case r.Kind != kind:
		return fmt.Errorf("%s: a %s rule where a %s rule belongs", what, r.Kind, kind)
	}
	return nil
}

// target is one jump of a step, named for messages.
type target struct {
	what string
	to   int
}

func sliceOrNil(s *SplitStep) []SplitBranch {
	if s == nil {
		return nil
	}
	return s.Branches
}

func (p *Plan) checkTemplate(name string) error {
	t := p.Templates[name]
	if t == nil {
		return fmt.Errorf("template %q is not in the plan", name)
	}
	if t.Variants[t.Default] == nil {
		return fmt.Errorf("template %q has no variant for its default locale %q", name, t.Default)
	}
	return nil
}
