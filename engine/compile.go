package engine

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/rapport-crm/rapport/rules"
)

// MaxSourceSize bounds a playbook file; real ones are a few kilobytes.
const MaxSourceSize = 1 << 20

var (
	nameRe     = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	wordRe     = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// yamlParserProblems are the messages of yaml.v3's parser (as opposed to
// its scanner); the parser's line numbers are 0-based.
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// compiler holds the state of one Compile call.
type compiler struct {
	file string
	// started compiles the source of a journey already running: rules and
	// texts that the release which started it accepted compile (see
	// CompileStarted).
	started bool
	lines   []string
	diags   Diagnostics
	plan    *Plan
	visited int

	// collected while parsing steps, checked once everything is known
	sends       []sendRef
	gotos       []gotoRef
	lists       [][]int // every step list, as step indexes
	idNodes     map[int]*yaml.Node
	tplNodes    map[string]*yaml.Node // declared templates, by name
	variantRefs map[string][]variantRef
	nested      map[int]*nested
	ids         map[string]int // explicit step ids
	stepsBad    bool
	// unreadSend: a send step's template could not be read (reported
	// there), so a template that looks unused may be that step's.
	unreadSend bool

	// ws is the workspace declaration rules are checked against (nil: none);
	// propsOf is the event whose props the when rule being compiled reads.
	ws      *Workspace
	propsOf *string

	// msgRefs are the send steps named by of and message(), checked once
	// every step is known; messageBan says why the rules being compiled
	// cannot read message() ("": they can).
	msgRefs    []messageRef
	messageBan string
}

// sendRef is one use of a template by a send step.
type sendRef struct {
	template string
	channel  Channel
	node     *yaml.Node
}

// gotoRef is one goto, resolved once every step id is known.
type gotoRef struct {
	step   int
	target string
	node   *yaml.Node
}

// CompileFile reads and compiles the playbook at path.
func CompileFile(path string) (*Plan, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read playbook: %w", err)
	}
	return Compile(path, src)
}

// Compile parses and checks one playbook. file is used in diagnostics only.
// When the playbook is invalid the error is Diagnostics listing every
// problem found, sorted by position. Compile never panics: a bug that
// would panic is reported as a diagnostic instead.
func Compile(file string, src []byte) (plan *Plan, err error) {
	return compileWith(file, src, false, nil)
}

// CompileIn is Compile that also checks the playbook against the workspace
// declaration ws (nil: none); the plan is the same as Compile's.
func CompileIn(ws *Workspace, file string, src []byte) (*Plan, error) {
	return compileWith(file, src, false, ws)
}

// compileWith is Compile; started compiles the source of a journey already
// running (CompileStarted), ws is CompileIn's.
func compileWith(file string, src []byte, started bool, ws *Workspace) (plan *Plan, err error) {
	defer func() {
		if r := recover(); r != nil {
			plan, err = nil, Diagnostics{{File: file, Line: 1, Col: 1, Msg: fmt.Sprintf("internal compiler error: %v (please report this playbook)", r)}}
		}
	}()
	c := &compiler{
		file:        file,
		started:     started,
		idNodes:     map[int]*yaml.Node{},
		tplNodes:    map[string]*yaml.Node{},
		variantRefs: map[string][]variantRef{},
		nested:      map[int]*nested{},
		ids:         map[string]int{},
		ws:          ws,
	}
	p := c.compile(src)
	if len(c.diags) > 0 {
		return nil, sortDiagnostics(c.diags)
	}
	return p, nil
}

func (c *compiler) compile(src []byte) *Plan {
	if len(src) > MaxSourceSize {
		c.errorAt(1, 1, fmt.Sprintf("playbook is %d bytes; the limit is %d", len(src), MaxSourceSize))
		return nil
	}
	c.plan = &Plan{
		Version:   VersionOf(src),
		Source:    append([]byte(nil), src...),
		File:      c.file,
		Topic:     "marketing",
		Entry:     Entry{Reentry: ReentryNever},
		Templates: map[string]*Template{},
		StepIndex: map[string]int{},
	}
	c.lines = strings.Split(string(src), "\n")
	root, ok := c.parseYAML(src)
	if !ok {
		return nil
	}
	top, ok := c.mapping(root, "playbook", "playbook")
	if !ok {
		return nil
	}
	c.header(top)
	if f, ok := top["trigger"]; ok {
		c.trigger(f)
	}
	c.plan.Entry.GlobalControl = GlobalControlByDefault(c.plan.Stage)
	if f, ok := top["entry"]; ok {
		c.entry(f)
	}
	if f, ok := top["goal"]; ok {
		c.goal(f)
	}
	if f, ok := top["exit_when"]; ok {
		c.plan.ExitWhen, _ = c.rule(f, rules.Bool)
	}
	if f, ok := top["policies"]; ok {
		c.policies(f)
	}
	if f, ok := top["tracking"]; ok {
		c.tracking(f)
	}
	if f, ok := top["templates"]; ok {
		c.templates(f)
	}
	if f, ok := top["steps"]; ok {
		c.steps(f)
	}
	c.checkMessageRefs()
	c.checkTemplateUse()
	c.warnGoalWaits()
	return c.plan
}

// parseYAML parses src into its single document's root node.
func (c *compiler) parseYAML(src []byte) (*yaml.Node, bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		line, msg := 1, strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLineRe.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
			if yamlParserProblems[msg] {
				line++ // yaml.v3 reports parser (not scanner) errors with 0-based lines
			}
		}
		if tl, tc, ok := c.indentTab(line, msg); ok {
			c.errorAt(tl, tc, "tabs cannot indent YAML; use spaces")
			return nil, false
		}
		c.errorAt(max(line, 1), 1, "YAML syntax error: "+msg)
		return nil, false
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		c.errorAt(1, 1, "playbook is empty")
		return nil, false
	}
	return doc.Content[0], true
}

// indentTab finds the tab behind a YAML error about one. yaml.v3 reports
// a tab in the indentation as "found character that cannot start any
// token" on the tab's line, as "found a tab character that violates
// indentation" on the line before it, and, in a block scalar (|, >), as
// "found a tab character where an indentation space is expected" on the
// line of the indicator; none says where the tab is. The tab is looked for
// in the leading blanks (and list dashes) of the reported line, and for
// the tab messages also of the lines after it. line is 1-based.
func (c *compiler) indentTab(line int, msg string) (int, int, bool) {
	last := line
	switch {
	case strings.Contains(msg, "tab character"):
		last = len(c.lines)
	case msg != "found character that cannot start any token":
		return 0, 0, false
	}
	for l := max(line, 1); l <= last && l <= len(c.lines); l++ {
		lead := strings.TrimLeft(c.lines[l-1], " -\t")
		prefix := c.lines[l-1][:len(c.lines[l-1])-len(lead)]
		if i := strings.IndexByte(prefix, '\t'); i >= 0 {
			return l, i + 1, true
		}
	}
	return 0, 0, false
}

// header reads the descriptive top-level keys.
func (c *compiler) header(top map[string]field) {
	if f, ok := top["playbook"]; ok {
		if s, ok := c.str(f); ok {
			if !nameRe.MatchString(s) {
				c.errorf(f.val, "playbook: name %q must start with a lowercase letter and contain only a-z, 0-9, _ and - (at most 63 characters)", truncate(s, 70))
			}
			c.plan.Name = s
		}
	}
	if f, ok := top["description"]; ok {
		c.plan.Description, _ = c.str(f)
	}
	if f, ok := top["owner"]; ok {
		c.plan.Owner, _ = c.str(f)
	}
	if f, ok := top["topic"]; ok {
		c.plan.Topic, _ = c.word(f, wordRe, "topic (a lowercase word like marketing or service)")
	}
	if f, ok := top["stage"]; ok {
		names := make([]string, len(Stages))
		for i, s := range Stages {
			names[i] = string(s)
		}
		s, _ := c.enum(f, names)
		c.plan.Stage = Stage(s)
	}
}

// trigger reads the one trigger form.
func (c *compiler) trigger(f field) {
	m, ok := c.mapping(f.val, "trigger", "trigger")
	if !ok {
		return
	}
	var forms []string
	for _, k := range triggerForms {
		if _, ok := m[k]; ok {
			forms = append(forms, k)
		}
	}
	if len(forms) != 1 {
		at := f.key
		if len(forms) > 1 {
			at = m[forms[1]].key
		}
		c.errorf(at, "trigger: use exactly one of event, events, every, cron, date, manual")
		return
	}
	t := &c.plan.Trigger
	form := forms[0]
	c.messageBan = triggerHasNoMessages
	defer func() { c.messageBan = "" }()
	c.onlyWith(m, "when", form == "event", "an event trigger (with events, give each event its own when)")
	c.onlyWith(m, "where", form != "event" && form != "events" && form != "manual", "an every, cron or date trigger")
	c.onlyWith(m, "at", form == "date", "a date trigger")
	switch form {
	case "event":
		t.Kind = TriggerEvent
		t.Event = c.eventName(m["event"])
		if w, ok := m["when"]; ok {
			t.When, _ = c.whenRule(w, t.Event)
		}
	case "events":
		t.Kind = TriggerEvent
		t.Events = c.triggerEvents(m["events"])
	case "every", "cron":
		t.Kind = TriggerSegment
		if form == "every" {
			if d, ok := c.duration(m["every"]); ok {
				if d.Hours() < 1 {
					c.errorf(m["every"].val, "every: %s is too often; segment scans run at most once an hour (every: 1h or more)", formatDuration(d))
				}
				t.Every = d
			}
		} else {
			t.Cron, _ = c.cron(m["cron"])
		}
		if w, ok := m["where"]; ok {
			t.Where, _ = c.rule(w, rules.Bool)
		} else {
			c.errorf(m[form].key, "trigger: a segment trigger (%s) needs a where rule choosing the customers", form)
		}
	case "date":
		t.Kind = TriggerDate
		t.Date, _ = c.enum(m["date"], triggerDates)
		t.At = TimeOfDay{Minutes: 9 * 60}
		if a, ok := m["at"]; ok {
			t.At, _ = c.timeOfDay(a)
		}
		if w, ok := m["where"]; ok {
			t.Where, _ = c.rule(w, rules.Bool)
		}
	case "manual":
		t.Kind = TriggerManual
		if b, ok := c.boolean(m["manual"]); ok && !b {
			c.errorf(m["manual"].val, "manual: must be true (remove the trigger form you do not want)")
		}
	}
}

// triggerEvents reads the events form of a trigger: a list whose items
// are event names or { event, when }.
func (c *compiler) triggerEvents(f field) []EventTrigger {
	n := c.deref(f.val)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		c.errorf(n, "events: expected a list of events, like [payment_failed, subscription_cancelled], got %s", describe(n))
		return nil
	}
	var out []EventTrigger
	seen := map[string]bool{}
	for _, item := range n.Content {
		var et EventTrigger
		if it := c.deref(item); it != nil && it.Kind == yaml.MappingNode {
			m, ok := c.mapping(it, "events item", "event_trigger")
			if !ok || m["event"].key == nil {
				continue
			}
			et.Event = c.eventName(m["event"])
			if w, ok := m["when"]; ok {
				et.When, _ = c.whenRule(w, et.Event)
			}
		} else {
			et.Event = c.eventName(field{f.key, item})
		}
		if et.Event == "" {
			continue
		}
		if seen[et.Event] {
			c.errorf(item, "events: %s is listed twice; list each event once (one when per event)", et.Event)
			continue
		}
		seen[et.Event] = true
		out = append(out, et)
	}
	return out
}

// onlyWith reports key when present but allowed is false.
func (c *compiler) onlyWith(m map[string]field, key string, allowed bool, with string) {
	if f, ok := m[key]; ok && !allowed {
		c.errorf(f.key, "%s is only allowed with %s", key, with)
	}
}

var cronFieldRe = regexp.MustCompile(`^[0-9A-Za-z*/,?-]+$`)

// cron checks the shape of a five-field cron spec.
func (c *compiler) cron(f field) (string, bool) {
	s, ok := c.str(f)
	if !ok {
		return "", false
	}
	fields := strings.Fields(s)
	valid := len(fields) == 5
	for _, x := range fields {
		valid = valid && cronFieldRe.MatchString(x)
	}
	if !valid {
		c.errorf(f.val, "cron: %q is not a cron spec; expected five fields: minute hour day-of-month month day-of-week, e.g. \"0 9 * * 1\"", truncate(s, 40))
		return "", false
	}
	return s, true
}

// entry reads the entry policy.
func (c *compiler) entry(f field) {
	m, ok := c.mapping(f.val, "entry", "entry")
	if !ok {
		return
	}
	e := &c.plan.Entry
	if r, ok := m["reentry"]; ok {
		s, _ := c.enum(r, reentryValues)
		e.Reentry = Reentry(s)
	}
	if cd, ok := m["cooldown"]; ok {
		e.Cooldown, _ = c.duration(cd)
		if e.Reentry != ReentryAfter {
			c.errorf(cd.key, "cooldown is only allowed with reentry: after")
		}
	} else if e.Reentry == ReentryAfter {
		c.errorf(m["reentry"].val, "reentry: after needs a cooldown (e.g. cooldown: 180d)")
	}
	if a, ok := m["audience"]; ok {
		e.Audience, _ = c.rule(a, rules.Bool)
	}
	if h, ok := m["holdout"]; ok {
		if v, ok := c.number(h); ok {
			if v < 0 || v > 50 {
				c.errorf(h.val, "holdout: %s%% is out of range; keep between 0 and 50 percent as a control group", h.val.Value)
			}
			e.Holdout = v
		}
	}
	if g, ok := m["global_control"]; ok {
		if v, ok := c.boolean(g); ok {
			e.GlobalControl = v
		}
	}
}

// goal reads the conversion goal.
func (c *compiler) goal(f field) {
	m, ok := c.mapping(f.val, "goal", "goal")
	if !ok {
		return
	}
	g := &Goal{}
	if e, ok := m["event"]; ok {
		g.Event = c.eventName(e)
	}
	if w, ok := m["when"]; ok {
		g.When, _ = c.whenRule(w, g.Event)
	}
	if w, ok := m["within"]; ok {
		g.Within, _ = c.duration(w)
	}
	exit := false
	if x, ok := m["exit"]; ok {
		exit, _ = c.boolean(x)
	}
	// A journey started before goals measured ended at its goal, and its
	// source (compiled again when it has no pinned plan) has no exit key.
	g.Continue = !exit && !c.started
	c.plan.Goal = g
}

// policies reads quiet hours and the frequency cap.
func (c *compiler) policies(f field) {
	m, ok := c.mapping(f.val, "policies", "policies")
	if !ok {
		return
	}
	if q, ok := m["quiet_hours"]; ok {
		if qm, ok := c.mapping(q.val, "quiet_hours", "quiet_hours"); ok {
			qh := &QuietHours{}
			s, okS := qm["start"]
			e, okE := qm["end"]
			if okS && okE {
				var good1, good2 bool
				qh.Start, good1 = c.timeOfDay(s)
				qh.End, good2 = c.timeOfDay(e)
				if good1 && good2 && qh.Start == qh.End {
					c.errorf(e.val, "quiet_hours: start and end are both %s; the window would be empty", e.val.Value)
				}
			}
			c.plan.Policies.QuietHours = qh
		}
	}
	if fc, ok := m["frequency_cap"]; ok {
		if fm, ok := c.mapping(fc.val, "frequency_cap", "frequency_cap"); ok {
			cp := &FrequencyCap{Action: CapSkip}
			if mx, ok := fm["max"]; ok {
				if v, ok := c.number(mx); ok {
					if v < 1 || v != float64(int(v)) {
						c.errorf(mx.val, "max: must be a whole number of at least 1, got %s", mx.val.Value)
					}
					cp.Max = int(v)
				}
			}
			if p, ok := fm["per"]; ok {
				cp.Per, _ = c.duration(p)
			}
			if a, ok := fm["action"]; ok {
				s, _ := c.enum(a, capActions)
				cp.Action = CapAction(s)
			}
			c.plan.Policies.FrequencyCap = cp
		}
	}
}

// tracking reads the first-party engagement tracking of the playbook's
// email (click-tracking links, the open pixel); both are off unless asked
// for, because rewriting links and adding a pixel changes what the
// customer receives.
func (c *compiler) tracking(f field) {
	m, ok := c.mapping(f.val, "tracking", "tracking")
	if !ok {
		return
	}
	if v, ok := m["clicks"]; ok {
		c.plan.Tracking.Clicks, _ = c.boolean(v)
	}
	if v, ok := m["opens"]; ok {
		c.plan.Tracking.Opens, _ = c.boolean(v)
	}
}

// CompileAll compiles many playbooks on all CPUs; plans[i] and errs[i]
// belong to srcs[i] (files[i] names it in diagnostics). Playbooks are
// deployed by name, so a file whose playbook: name an earlier file already
// has is an error too (naming both files), and its plan is nil.
func CompileAll(files []string, srcs [][]byte) (plans []*Plan, errs []error) {
	return CompileAllIn(nil, files, srcs)
}

// CompileAllIn is CompileAll checking every playbook against the workspace
// declaration ws (nil: none), as CompileIn.
func CompileAllIn(ws *Workspace, files []string, srcs [][]byte) (plans []*Plan, errs []error) {
	plans, errs = make([]*Plan, len(srcs)), make([]error, len(srcs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(srcs), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				plans[i], errs[i] = CompileIn(ws, files[i], srcs[i])
			}
		}()
	}
	for i := range srcs {
		next <- i
	}
	close(next)
	wg.Wait()
	checkNames(files, plans, errs)
	return plans, errs
}
