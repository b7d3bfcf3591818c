package engine

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The expected graph is written by reading playbooks/complaint_recovery.yaml,
// not copied from the output: the trigger, each step in document order
// with its automatic id (<kind>_<position>), the if's condition with > and
// < as entities, the task titles' quotes as #quot;, both waits' event and
// timeout edges, the exit, the end, and the goal as a note.
const complaintRecoveryMermaid = `flowchart TD
  Trigger(["trigger: event complaint_filed"])
  acknowledge["acknowledge<br/>send email acknowledgement (transactional)"]
  mark_open["mark_open<br/>update add tags complaint_open"]
  hand_off{"hand_off<br/>if [localHour(customer.timezone) #gt;= 8 && localHour(customer.timezone) #lt; 20]"}
  task_4["task_4<br/>task for service_desk (high, due 4h): Complaint from {{ customer.name }}: {{ event.props.subject ?? #quot;see case#quot; }} — call within 4 hours"]
  send_5["send_5<br/>send sms call_tomorrow (transactional)"]
  task_6["task_6<br/>task for service_desk (high, due 16h): Complaint from {{ customer.name }}: {{ event.props.subject ?? #quot;see case#quot; }} — call first thing in the morning"]
  await_resolution["await_resolution<br/>wait for event complaint_resolved"]
  task_8["task_8<br/>task for service_manager (high, due 1d): ESCALATION: complaint of {{ customer.name }} unresolved after 3 days"]
  await_escalated["await_escalated<br/>wait for event complaint_resolved"]
  update_10["update_10<br/>update add tags complaint_unresolved"]
  exit_11(["exit_11<br/>exit unresolved"])
  close["close<br/>update add tags complaint_recovered; remove tags complaint_open"]
  unexpected_extra["unexpected_extra<br/>points award [200] reason complaint_apology"]
  if_14{"if_14<br/>if [customer.lifetime_value #gt;= 1000]"}
  coupon_15["coupon_15<br/>coupon amount value [20] expires 60d prefix SORRY"]
  wait_16["wait_16<br/>wait until 10:00 local time"]
  send_17["send_17<br/>send email resolved_extra (transactional)"]
  wait_18["wait_18<br/>wait 7d"]
  follow_up["follow_up<br/>send email follow_up"]
  Completed(["completed"])
  Goal>"goal: complaint_resolved within 7d<br/>the journey goes on"]
  Trigger --> acknowledge
  acknowledge --> mark_open
  mark_open --> hand_off
  hand_off -->|"then"| task_4
  hand_off -->|"else"| send_5
  task_4 --> await_resolution
  send_5 --> task_6
  task_6 --> await_resolution
  await_resolution -->|"complaint_resolved"| close
  await_resolution -->|"timeout 3d"| task_8
  task_8 --> await_escalated
  await_escalated -->|"complaint_resolved"| close
  await_escalated -->|"timeout 7d"| update_10
  update_10 --> exit_11
  close --> unexpected_extra
  unexpected_extra --> if_14
  if_14 -->|"then"| coupon_15
  if_14 -->|"else"| wait_16
  coupon_15 --> wait_16
  wait_16 --> send_17
  send_17 --> wait_18
  wait_18 --> follow_up
  follow_up --> Completed
`

func TestMermaidComplaintRecovery(t *testing.T) {
	p, err := CompileFile("../playbooks/complaint_recovery.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := Diagram(&b, p, FormatMermaid, nil); err != nil {
		t.Fatal(err)
	}
	if b.String() != complaintRecoveryMermaid {
		t.Errorf("mermaid differs from the hand-written graph:\n--- got\n%s--- want\n%s", b.String(), complaintRecoveryMermaid)
	}
}

var (
	mermaidNodeRe = regexp.MustCompile(`^  ([A-Za-z][A-Za-z0-9_]*)(\(\[|\[|\{|\(\(|>)"([^"]*)"(\]\)|\]|\}|\)\))$`)
	mermaidEdgeRe = regexp.MustCompile(`^  ([A-Za-z][A-Za-z0-9_]*) (-->|-\.->)(?:\|"([^"]*)"\|)? ([A-Za-z][A-Za-z0-9_]*)$`)
	dotEdgeRe     = regexp.MustCompile(`^  "([^"]+)" -> "([^"]+)"(?: \[(?:label="((?:[^"\\]|\\.)*)")?.*\])?;$`)
)

// Every sample's diagram is well formed: each line is a quoted node or an
// edge between declared nodes, each step is a node with one edge per
// successor (End included), and the dot form has the same edges.
func TestDiagramSamplesWellFormed(t *testing.T) {
	for _, path := range samplePaths(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			p, err := CompileFile(path)
			if err != nil {
				t.Fatal(err)
			}
			edges := checkMermaid(t, p)
			if dot := dotEdges(t, p); strings.Join(dot, "\n") != strings.Join(edges, "\n") {
				t.Errorf("dot edges differ from mermaid's:\n%s\n---\n%s", strings.Join(dot, "\n"), strings.Join(edges, "\n"))
			}
		})
	}
}

// checkMermaid parses p's Mermaid diagram line by line and returns its
// edges as "from>to:label".
func checkMermaid(t *testing.T, p *Plan) []string {
	t.Helper()
	var b strings.Builder
	if err := Diagram(&b, p, FormatMermaid, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if lines[0] != "flowchart TD" {
		t.Fatalf("first line %q", lines[0])
	}
	nodes, out := map[string]bool{}, map[string]int{}
	var edges []string
	for _, l := range lines[1:] {
		if m := mermaidNodeRe.FindStringSubmatch(l); m != nil {
			if nodes[m[1]] {
				t.Errorf("node %s declared twice", m[1])
			}
			nodes[m[1]] = true
			continue
		}
		m := mermaidEdgeRe.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not a node or an edge: %q", l)
		}
		if !nodes[m[1]] || !nodes[m[4]] {
			t.Errorf("edge between undeclared nodes: %q", l)
		}
		out[m[1]]++
		edges = append(edges, m[1]+">"+m[4]+":"+m[3])
	}
	for i, st := range p.Steps {
		if got, want := out[nodeID(p, i)], exits(st); got != want {
			t.Errorf("step %s: %d edges, want %d", st.ID, got, want)
		}
		for _, next := range p.successors(i) {
			if !slices.ContainsFunc(edges, func(e string) bool { return strings.HasPrefix(e, nodeID(p, i)+">"+nodeID(p, next)+":") }) {
				t.Errorf("no edge from %s to %s", st.ID, p.Steps[next].ID)
			}
		}
	}
	return edges
}

// exits is how many ways control leaves st, End included.
func exits(st Step) int {
	switch {
	case st.Exit != nil:
		return 0
	case st.If != nil:
		return 2
	case st.Split != nil:
		return len(st.Split.Branches)
	case st.Wait != nil && st.Wait.Kind == WaitEvent:
		return 2
	case st.Wait != nil && st.Wait.Kind == WaitEvents:
		return len(st.Wait.Branches) + 1
	}
	return 1
}

// dotEdges returns the edges of p's dot diagram as checkMermaid does.
func dotEdges(t *testing.T, p *Plan) []string {
	t.Helper()
	var b strings.Builder
	if err := Diagram(&b, p, FormatDot, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "digraph \""+p.Name+"\" {\n") || !strings.HasSuffix(b.String(), "}\n") {
		t.Fatalf("not a digraph:\n%s", b.String())
	}
	var edges []string
	for _, l := range strings.Split(b.String(), "\n") {
		if m := dotEdgeRe.FindStringSubmatch(l); m != nil {
			label := strings.NewReplacer(`\"`, "#quot;", "<", "#lt;", ">", "#gt;", "|", "#124;").Replace(m[3])
			edges = append(edges, m[1]+">"+m[2]+":"+label)
		}
	}
	return edges
}

// Labels carrying Mermaid's syntax characters are escaped, never raw.
func TestMermaidEscapesLabels(t *testing.T) {
	got := mermaidText(`a "b" <c> | #d`)
	if want := "a #quot;b#quot; #lt;c#gt; #124; #35;d"; got != want {
		t.Errorf("mermaidText = %q, want %q", got, want)
	}
	if got := dotEscape(`say "hi" \ there`); got != `say \"hi\" \\ there` {
		t.Errorf("dotEscape = %q", got)
	}
}

// Counts appear on the trigger, each step (sent on sends) and the goal.
func TestDiagramCounts(t *testing.T) {
	p, err := CompileFile("../playbooks/complaint_recovery.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	counts := &DiagramCounts{Enrolled: 40, Converted: 31, Steps: map[string]StepCounts{"acknowledge": {Reached: 40, Sent: 39}, "hand_off": {Reached: 40}}}
	if err := Diagram(&b, p, FormatMermaid, counts); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`Trigger(["trigger: event complaint_filed<br/>enrolled 40"])`,
		`acknowledge["acknowledge<br/>send email acknowledgement (transactional)<br/>reached 40, sent 39"]`,
		`mark_open["mark_open<br/>update add tags complaint_open<br/>reached 0"]`,
		`<br/>reached 40"}`,
		`Goal>"goal: complaint_resolved within 7d<br/>the journey goes on<br/>converted 31"]`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %s in\n%s", want, b.String())
		}
	}
}

func TestDiagramUnknownFormat(t *testing.T) {
	if err := Diagram(&strings.Builder{}, &Plan{}, "svg", nil); err == nil || !strings.Contains(err.Error(), "svg") {
		t.Errorf("err = %v", err)
	}
}
