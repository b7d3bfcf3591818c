package engine

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Diagram formats: Mermaid, which GitHub renders in pull requests and
// READMEs, and Graphviz dot.
const (
	FormatMermaid = "mermaid"
	FormatDot     = "dot"
)

// DiagramCounts are live figures drawn on a journey's diagram (`rapport
// report --format mermaid`): how many enrollments entered and converted,
// and what each step did.
type DiagramCounts struct {
	Enrolled, Converted int
	Steps               map[string]StepCounts // by step ID
}

// StepCounts are one step's figures: enrollments that reached it and,
// for a send, messages sent.
type StepCounts struct{ Reached, Sent int }

// Diagram writes a picture of p's journey in format (FormatMermaid or
// FormatDot): the trigger as the start node, every step with the labels
// of its outgoing edges (if conditions, split weights, wait events and
// timeouts, gotos), exits and the end as terminal nodes, and the goal and
// exit_when as notes. It is drawn from the plan's successors, the graph the
// workflow follows, so a picture cannot show a path the journey does not
// take. counts, when not nil, adds live figures to the nodes.
func Diagram(w io.Writer, p *Plan, format string, counts *DiagramCounts) error {
	g := buildGraph(p, counts)
	var out string
	switch format {
	case FormatMermaid:
		out = g.mermaid()
	case FormatDot:
		out = g.dot(p.Name)
	default:
		return fmt.Errorf("diagram format %q: use %s or %s", format, FormatMermaid, FormatDot)
	}
	_, err := io.WriteString(w, out)
	return err
}

// nodeShape is how a node is drawn.
type nodeShape int

const (
	shapeBox      nodeShape = iota // an action or wait
	shapeTerminal                  // trigger, exit, end
	shapeDecision                  // if, split
	shapeJump                      // goto
	shapeNote                      // goal, exit_when
)

type diagramNode struct {
	id    string
	lines []string
	shape nodeShape
}

type diagramEdge struct {
	from, to, label string
	jump            bool // a goto: drawn dotted
}

type diagramGraph struct {
	nodes []diagramNode
	edges []diagramEdge
}

// Special nodes start with a capital letter; step IDs are lowercase, so
// they never collide.
const (
	nodeTrigger  = "Trigger"
	nodeDone     = "Completed"
	nodeGoal     = "Goal"
	nodeExitWhen = "ExitWhen"
)

// safeIDRe is a step ID usable as a node ID as it is; IDs with "-" (which
// Mermaid would read as part of an arrow) get a positional ID.
var safeIDRe = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// mermaidWords are lowercase words Mermaid reads as keywords, not node IDs.
var mermaidWords = []string{"end", "graph", "subgraph", "flowchart", "style", "class", "classdef", "click", "linkstyle", "direction", "default", "call", "href"}

func nodeID(p *Plan, idx int) string {
	if idx == End || idx < 0 || idx >= len(p.Steps) {
		return nodeDone
	}
	id := p.Steps[idx].ID
	if safeIDRe.MatchString(id) && !slices.Contains(mermaidWords, id) {
		return id
	}
	return "step" + strconv.Itoa(idx)
}

func buildGraph(p *Plan, counts *DiagramCounts) *diagramGraph {
	g := &diagramGraph{}
	start := []string{"trigger: " + describeTrigger(p.Trigger)}
	if counts != nil {
		start = append(start, fmt.Sprintf("enrolled %d", counts.Enrolled))
	}
	g.nodes = append(g.nodes, diagramNode{id: nodeTrigger, lines: start, shape: shapeTerminal})
	g.edges = append(g.edges, diagramEdge{from: nodeTrigger, to: nodeID(p, firstStep(p))})
	ended := len(p.Steps) == 0
	for i := range p.Steps {
		g.nodes = append(g.nodes, stepNode(p, i, counts))
		for _, e := range stepEdges(p, i) {
			ended = ended || e.to == nodeDone
			g.edges = append(g.edges, e)
		}
	}
	if ended {
		g.nodes = append(g.nodes, diagramNode{id: nodeDone, lines: []string{"completed"}, shape: shapeTerminal})
	}
	g.notes(p, counts)
	return g
}

func firstStep(p *Plan) int {
	if len(p.Steps) == 0 {
		return End
	}
	return 0
}

// notes adds the goal and exit_when, which apply at any step, as notes.
func (g *diagramGraph) notes(p *Plan, counts *DiagramCounts) {
	if goal := p.Goal; goal != nil {
		s := fmt.Sprintf("goal: %s within %s", goal.Event, formatDuration(goal.Within))
		if goal.When != nil {
			s += " when " + ruleText(goal.When)
		}
		lines := []string{s, "the journey goes on"}
		if !goal.Continue {
			lines[1] = "the journey ends (exit)"
		}
		if counts != nil {
			lines = append(lines, fmt.Sprintf("converted %d", counts.Converted))
		}
		g.nodes = append(g.nodes, diagramNode{id: nodeGoal, lines: lines, shape: shapeNote})
	}
	if p.ExitWhen != nil {
		g.nodes = append(g.nodes, diagramNode{id: nodeExitWhen, lines: []string{"exits at any step when " + ruleText(p.ExitWhen)}, shape: shapeNote})
	}
}

func stepNode(p *Plan, i int, counts *DiagramCounts) diagramNode {
	st := &p.Steps[i]
	n := diagramNode{id: nodeID(p, i), lines: []string{st.ID, stepLabel(st)}, shape: shapeBox}
	switch {
	case st.Exit != nil:
		n.shape = shapeTerminal
	case st.If != nil || st.Split != nil:
		n.shape = shapeDecision
	case st.Kind == KindGoto:
		n.shape = shapeJump
	}
	if counts != nil {
		c := counts.Steps[st.ID]
		s := fmt.Sprintf("reached %d", c.Reached)
		if st.Send != nil {
			s += fmt.Sprintf(", sent %d", c.Sent)
		}
		n.lines = append(n.lines, s)
	}
	return n
}

// stepLabel says what a step does, without where it goes (the edges say).
func stepLabel(st *Step) string {
	switch {
	case st.Send != nil:
		s := fmt.Sprintf("send %s %s", st.Send.Channel, st.Send.Template)
		if st.Send.Transactional {
			s += " (transactional)"
		}
		return s
	case st.Wait != nil:
		return waitLabel(st.Wait)
	case st.If != nil:
		return "if " + ruleText(st.If.Cond)
	case st.Split != nil:
		return "split"
	case st.Exit != nil:
		return "exit " + st.Exit.Reason
	case st.Kind == KindGoto:
		return "goto"
	case st.Task != nil:
		// The title unquoted: a quoted one would escape its quotes twice.
		return fmt.Sprintf("task for %s (%s, due %s): %s", st.Task.Assignee, st.Task.Priority, formatDuration(st.Task.Due), st.Task.Title)
	}
	// The other actions read as explain writes them, minus the successor.
	e := &explainer{p: &Plan{}}
	s := e.describeStep(st)
	return strings.TrimSuffix(s, " -> end")
}

func waitLabel(w *WaitStep) string {
	switch w.Kind {
	case WaitEvent:
		s := "wait for event " + eventOf(w.Event, w.Of)
		if w.When != nil {
			s += " when " + ruleText(w.When)
		}
		return s
	case WaitEvents:
		return "wait for the first of " + strings.Join(w.Events(), ", ")
	}
	e := &explainer{p: &Plan{}}
	return e.describeWait(w)
}

// stepEdges are the edges out of step i, one per successor, labelled with
// what takes the journey there.
func stepEdges(p *Plan, i int) []diagramEdge {
	st := &p.Steps[i]
	from := nodeID(p, i)
	edge := func(to int, label string) diagramEdge {
		return diagramEdge{from: from, to: nodeID(p, to), label: label}
	}
	switch {
	case st.Exit != nil:
		return nil
	case st.If != nil:
		return []diagramEdge{edge(st.If.Then, "then"), edge(st.If.Else, "else")}
	case st.Split != nil:
		var out []diagramEdge
		for _, b := range st.Split.Branches {
			out = append(out, edge(b.Start, fmt.Sprintf("%s %s%%", b.Name, formatNumber(b.Weight))))
		}
		return out
	case st.Wait != nil && st.Wait.Kind == WaitEvent:
		return []diagramEdge{edge(st.Wait.OnEvent, st.Wait.Event), edge(st.Wait.OnTimeout, "timeout "+st.Wait.Length(st.Wait.Timeout))}
	case st.Wait != nil && st.Wait.Kind == WaitEvents:
		var out []diagramEdge
		for _, b := range st.Wait.Branches {
			label := eventOf(b.Event, b.Of)
			if b.When != nil {
				label += " when " + ruleText(b.When)
			}
			out = append(out, edge(b.Start, label))
		}
		return append(out, edge(st.Wait.OnTimeout, "timeout "+st.Wait.Length(st.Wait.Timeout)))
	case st.Kind == KindGoto:
		e := edge(st.Next, "")
		e.jump = true
		return []diagramEdge{e}
	}
	return []diagramEdge{edge(st.Next, "")}
}

// mermaid writes the graph as a Mermaid flowchart. Every label is quoted
// and escaped (mermaidText), so rule text with quotes, brackets or
// comparison signs cannot break the syntax.
func (g *diagramGraph) mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	for _, n := range g.nodes {
		open, close := mermaidShape(n.shape)
		texts := make([]string, len(n.lines))
		for i, l := range n.lines {
			texts[i] = mermaidText(l)
		}
		fmt.Fprintf(&b, "  %s%s\"%s\"%s\n", n.id, open, strings.Join(texts, "<br/>"), close)
	}
	for _, e := range g.edges {
		arrow := "-->"
		if e.jump {
			arrow = "-.->"
		}
		if e.label != "" {
			arrow += "|\"" + mermaidText(e.label) + "\"|"
		}
		fmt.Fprintf(&b, "  %s %s %s\n", e.from, arrow, e.to)
	}
	return b.String()
}

func mermaidShape(s nodeShape) (string, string) {
	switch s {
	case shapeTerminal:
		return "([", "])"
	case shapeDecision:
		return "{", "}"
	case shapeJump:
		return "((", "))"
	case shapeNote:
		return ">", "]"
	}
	return "[", "]"
}

// mermaidText escapes a label for a quoted Mermaid string: quotes, angle
// brackets, the bar that closes an edge label and the entity sign itself
// become Mermaid entities.
var mermaidText = strings.NewReplacer("#", "#35;", `"`, "#quot;", "<", "#lt;", ">", "#gt;", "|", "#124;", "\n", " ").Replace

// dot writes the graph as a Graphviz digraph with the same nodes and edges.
func (g *diagramGraph) dot(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n  node [shape=box];\n", dotText(name))
	for _, n := range g.nodes {
		texts := make([]string, len(n.lines))
		for i, l := range n.lines {
			texts[i] = dotEscape(l)
		}
		fmt.Fprintf(&b, "  %s [label=\"%s\"%s];\n", dotText(n.id), strings.Join(texts, `\n`), dotShape(n.shape))
	}
	for _, e := range g.edges {
		var attrs []string
		if e.label != "" {
			attrs = append(attrs, "label="+dotText(e.label))
		}
		if e.jump {
			attrs = append(attrs, "style=dashed")
		}
		a := ""
		if len(attrs) > 0 {
			a = " [" + strings.Join(attrs, ", ") + "]"
		}
		fmt.Fprintf(&b, "  %s -> %s%s;\n", dotText(e.from), dotText(e.to), a)
	}
	b.WriteString("}\n")
	return b.String()
}

func dotShape(s nodeShape) string {
	switch s {
	case shapeTerminal:
		return ", shape=oval"
	case shapeDecision:
		return ", shape=diamond"
	case shapeJump:
		return ", shape=circle"
	case shapeNote:
		return ", shape=note"
	}
	return ""
}

// dotText quotes a dot ID or label.
func dotText(s string) string { return `"` + dotEscape(s) + `"` }

var dotEscape = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace
