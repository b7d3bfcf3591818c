package report

import (
	"strings"
	"testing"

	"github.com/rapport-crm/rapport/engine"
)

// The figures on the diagram are the report's: enrolled and converted
// summed over versions, reached and sent per step; another playbook's
// rows do not leak in.
func TestDiagramCounts(t *testing.T) {
	in := Input{
		Outcomes: []OutcomeRow{
			{Playbook: "complaint_recovery", Version: "a", Status: "completed", Count: 7, Converted: 5},
			{Playbook: "complaint_recovery", Version: "b", Status: "active", Count: 3, Converted: 1},
			{Playbook: "winback", Version: "a", Status: "completed", Count: 50, Converted: 20},
		},
		Steps: []StepRow{
			{Playbook: "complaint_recovery", Step: "acknowledge", Reached: 10, Sent: 9, Failed: 1},
			{Playbook: "complaint_recovery", Step: "hand_off", Reached: 10},
			{Playbook: "winback", Step: "acknowledge", Reached: 99, Sent: 99},
		},
	}
	c := DiagramCounts(Build(in), "complaint_recovery")
	if c.Enrolled != 10 || c.Converted != 6 || c.Steps["acknowledge"] != (engine.StepCounts{Reached: 10, Sent: 9}) || c.Steps["hand_off"].Reached != 10 {
		t.Fatalf("counts %+v", c)
	}
	p, err := engine.CompileFile("../playbooks/complaint_recovery.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := engine.Diagram(&b, p, engine.FormatMermaid, c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"enrolled 10", "reached 10, sent 9", "converted 6", `follow_up["follow_up<br/>send email follow_up<br/>reached 0, sent 0"]`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}
