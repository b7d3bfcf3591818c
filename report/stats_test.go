package report

import (
	"math"
	"strings"
	"testing"
)

func near(t *testing.T, what string, got *float64, want, tol float64) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s = nil, want %v", what, want)
	}
	if math.Abs(*got-want) > tol {
		t.Errorf("%s = %.10f, want %.10f (±%g)", what, *got, want, tol)
	}
}

// TestCompareByHand checks the holdout statistics on an example worked
// out by hand:
//
//	treated: n1 = 200, x1 = 60 → p1 = 0.30
//	control: n2 = 100, x2 = 15 → p2 = 0.15
//	lift     = p1 − p2 = 0.15 (15 points); relative lift 0.15/0.15 = 1.0
//	SE       = √(0.30·0.70/200 + 0.15·0.85/100) = √(0.00105 + 0.001275)
//	         = √0.002325 = 0.0482183
//	95% CI   = 0.15 ± 1.959964 · 0.0482183 = 0.15 ± 0.0945061
//	         = [0.0554939, 0.2445061]
//	pooled p = 75/300 = 0.25
//	SE0      = √(0.25·0.75·(1/200 + 1/100)) = √0.0028125 = 0.0530330
//	z        = 0.15 / 0.0530330 = 2.8284271 (= 2√2, since 0.0028125 = 0.15²/8)
//	p-value  = 2·(1 − Φ(2√2)) = erfc(2√2/√2) = erfc(2) = 0.0046777
func TestCompareByHand(t *testing.T) {
	c := Compare(NewGroup(200, 60), NewGroup(100, 15))
	if !c.EnoughData || c.Reason != "" {
		t.Fatalf("EnoughData = %v (%q), want true", c.EnoughData, c.Reason)
	}
	near(t, "treated rate", c.Treated.ConversionRate, 0.30, 1e-12)
	near(t, "control rate", c.Control.ConversionRate, 0.15, 1e-12)
	near(t, "lift", c.Lift, 0.15, 1e-12)
	near(t, "relative lift", c.RelativeLift, 1.0, 1e-12)
	near(t, "ci low", c.CILow, 0.0554939, 1e-7)
	near(t, "ci high", c.CIHigh, 0.2445061, 1e-7)
	near(t, "z", c.Z, 2*math.Sqrt2, 1e-9)
	near(t, "p", c.PValue, 0.0046777, 1e-7)
	if got := HoldoutLine(Comparison{Treated: c.Treated}); !strings.HasPrefix(got, "no enrollment in a control group") {
		t.Errorf("HoldoutLine without a control group = %q", got)
	}
	if got, want := HoldoutLine(c), "treated 60/200 (30.0%) vs control 15/100 (15.0%): lift +15.0 pts, 95% CI [+5.5, +24.5] pts, p = 0.0047"; got != want {
		t.Errorf("HoldoutLine =\n %s\nwant\n %s", got, want)
	}
}

// A negative lift gives an interval below zero and the same p-value as
// the mirrored case: the test is two-sided.
func TestCompareNegativeLiftIsSymmetric(t *testing.T) {
	c := Compare(NewGroup(100, 15), NewGroup(200, 60))
	near(t, "lift", c.Lift, -0.15, 1e-12)
	near(t, "p", c.PValue, 0.0046777, 1e-7)
	if *c.CIHigh >= 0 {
		t.Errorf("ci high = %v, want < 0", *c.CIHigh)
	}
}

// No difference: z = 0 and p = 1.
func TestCompareNoDifference(t *testing.T) {
	c := Compare(NewGroup(50, 10), NewGroup(50, 10))
	near(t, "lift", c.Lift, 0, 1e-12)
	near(t, "p", c.PValue, 1, 1e-12)
}

func TestCompareNotEnoughData(t *testing.T) {
	for _, tc := range []struct {
		name             string
		treated, control Group
		want             string
		enough           bool
	}{
		{"small control", NewGroup(200, 60), NewGroup(29, 10), "control group has 29 enrollments (need at least 30)", false},
		{"small treated", NewGroup(10, 5), NewGroup(100, 10), "treated group has 10 enrollments", false},
		{"few conversions", NewGroup(200, 4), NewGroup(100, 10), "treated group has 4 conversions (need at least 5)", false},
		{"few non-conversions", NewGroup(200, 100), NewGroup(30, 26), "control group has 4 non-conversions", false},
		{"no control", NewGroup(200, 60), NewGroup(0, 0), "control group has 0 enrollments", false},
		{"just enough", NewGroup(30, 5), NewGroup(30, 25), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Compare(tc.treated, tc.control)
			if c.EnoughData != tc.enough {
				t.Fatalf("EnoughData = %v, want %v (%s)", c.EnoughData, tc.enough, c.Reason)
			}
			if tc.enough {
				return
			}
			if !strings.HasPrefix(c.Reason, "not enough data: ") || !strings.Contains(c.Reason, tc.want) {
				t.Errorf("Reason = %q, want it to contain %q", c.Reason, tc.want)
			}
			if c.Lift != nil || c.CILow != nil || c.PValue != nil {
				t.Errorf("statistics reported without enough data: %+v", c)
			}
		})
	}
}

func TestMedianAndRate(t *testing.T) {
	if Median(nil) != nil || Rate(3, 0) != nil {
		t.Fatal("median of nothing / rate of nothing should be nil")
	}
	in := []float64{5, 1, 3}
	near(t, "odd median", Median(in), 3, 0)
	if in[0] != 5 {
		t.Error("Median sorted its input")
	}
	near(t, "even median", Median([]float64{4, 1, 3, 2}), 2.5, 0)
	near(t, "rate", Rate(1, 4), 0.25, 0)
}

func TestFormatDuration(t *testing.T) {
	for secs, want := range map[float64]string{
		12: "12s", 40 * 60: "40m", 5*3600 + 12*60 + 30: "5h 12m", 3*86400 + 4*3600 + 59*60: "3d 4h", 30 * 86400: "30d", 7200: "2h",
	} {
		if got := FormatDuration(secs); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", secs, got, want)
		}
	}
}
