package engine

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// FuzzCompile checks that Compile never panics (not even into its recover
// guard), that every diagnostic is positioned, and that every plan it
// returns is well-formed. The seed corpus (all samples and all broken
// cases, plus testdata/fuzz) runs in the normal test run.
func FuzzCompile(f *testing.F) {
	for _, path := range samplePaths(f) {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, tc := range brokenCases {
		f.Add([]byte(tc.src))
	}
	for _, tc := range messageCases {
		f.Add([]byte(tc.src))
	}
	f.Add([]byte(flow))
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Compile("f.yaml", src)
		if err != nil {
			var ds Diagnostics
			if !errors.As(err, &ds) || len(ds) == 0 {
				t.Fatalf("error %T %v is not a non-empty Diagnostics", err, err)
			}
			for _, d := range ds {
				if d.Line < 1 || d.Col < 1 || d.Msg == "" {
					t.Errorf("bad diagnostic %+v", d)
				}
				if strings.Contains(d.Msg, "internal compiler error") {
					t.Fatalf("compiler panicked: %s", d.Msg)
				}
			}
			return
		}
		checkPlan(t, p)
	})
}

// checkPlan asserts the invariants the workflow interpreter relies on.
func checkPlan(t *testing.T, p *Plan) {
	t.Helper()
	if len(p.Steps) == 0 {
		t.Fatal("plan without steps")
	}
	valid := func(i int) bool { return i == End || (i >= 0 && i < len(p.Steps)) }
	for i, s := range p.Steps {
		if p.StepIndex[s.ID] != i {
			t.Errorf("step %d id %q indexed at %d", i, s.ID, p.StepIndex[s.ID])
		}
		targets := []int{s.Next}
		if s.If != nil {
			targets = append(targets, s.If.Then, s.If.Else)
		}
		if s.Wait != nil {
			targets = append(targets, s.Wait.OnEvent, s.Wait.OnTimeout)
		}
		if s.Split != nil {
			for _, b := range s.Split.Branches {
				targets = append(targets, b.Start)
			}
		}
		for _, target := range targets {
			if !valid(target) {
				t.Errorf("step %s points at %d", s.ID, target)
			}
		}
	}
	for name := range p.Templates {
		if v, _ := p.Template(name, "en"); v == nil {
			t.Errorf("template %s has no en variant", name)
		}
	}
	if err := Explain(io.Discard, p); err != nil {
		t.Error(err)
	}
}
