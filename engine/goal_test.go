package engine

import (
	"strings"
	"testing"
)

const goalPlaybook = `playbook: survey
stage: service
trigger: { event: service_completed }
goal: { event: survey_answered, within: 10d%s }
templates:
  ask:
    en: { text: "How did we do?" }
steps:
  - send: { channel: sms, template: ask }
  - id: await
    wait: { event: survey_answered, timeout: 4d }
    on_event:
      - exit: answered
`

func compileGoal(t *testing.T, goalExtra string) *Plan {
	t.Helper()
	p, err := Compile("survey.yaml", []byte(strings.Replace(goalPlaybook, "%s", goalExtra, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGoalContinuesUnlessItExits: by default a goal records the conversion
// and the journey goes on; exit: true ends it. The source of a journey
// started before goals measured (CompileStarted) keeps ending at its goal.
func TestGoalContinuesUnlessItExits(t *testing.T) {
	if p := compileGoal(t, ""); !p.Goal.Continue || len(p.Warnings) != 0 {
		t.Errorf("default goal: continue %v, warnings %v; want continue, no warning", p.Goal.Continue, p.Warnings)
	}
	if p := compileGoal(t, ", exit: false"); !p.Goal.Continue {
		t.Error("exit: false does not continue")
	}
	p := compileGoal(t, ", exit: true")
	if p.Goal.Continue {
		t.Error("exit: true continues")
	}
	want := "survey.yaml:10:5: step await never sees survey_answered while the goal window is open (10d from entry): the goal (exit: true) ends the journey when survey_answered arrives, so the steps for the event never run; remove exit: true to record the conversion and go on"
	if len(p.Warnings) != 1 || p.Warnings[0].String() != want {
		t.Errorf("warnings %v, want\n%s", p.Warnings, want)
	}
	// A goal with a rule may let the event through to the wait: no warning.
	if p := compileGoal(t, `, exit: true, when: "event.score > 8"`); len(p.Warnings) != 0 {
		t.Errorf("goal with when: warnings %v, want none", p.Warnings)
	}
	started, err := compileWith("survey.yaml", []byte(strings.Replace(goalPlaybook, "%s", "", 1)), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if started.Goal.Continue {
		t.Error("the source of a journey already running compiles to a goal that continues; it ended at its goal when it started")
	}
}

func TestGoalExitMustBeYesOrNo(t *testing.T) {
	_, err := Compile("survey.yaml", []byte(strings.Replace(goalPlaybook, "%s", ", exit: soon", 1)))
	if err == nil || !strings.Contains(err.Error(), `survey.yaml:4:52: exit: expected true or false, got "soon"`) {
		t.Fatalf("err = %v, want an error at the exit value", err)
	}
}
