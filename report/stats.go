package report

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Minimum sample for the holdout comparison. The normal approximation
// behind the z-interval and z-test is poor for small groups and for
// proportions near 0 or 1, so a comparison is only reported when each
// group has at least MinGroupSize enrollments and at least MinOutcomes
// conversions and MinOutcomes non-conversions (the usual "n·p ≥ 5 and
// n·(1−p) ≥ 5" rule of thumb).
const (
	MinGroupSize = 30
	MinOutcomes  = 5
)

// z975 is the 97.5th percentile of the standard normal distribution: a
// two-sided 95% interval is estimate ± z975 · SE.
const z975 = 1.959963984540054

// Rate is converted/n, or nil when n is 0 (a rate of nothing is not 0%).
func Rate(converted, n int) *float64 {
	if n <= 0 {
		return nil
	}
	r := float64(converted) / float64(n)
	return &r
}

// Median is the median of xs (the mean of the two middle values for an
// even count), or nil for none. xs is not modified.
func Median(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &m
}

// Group is one arm of the holdout comparison.
type Group struct {
	Enrolled       int      `json:"enrolled"`
	Converted      int      `json:"converted"`
	ConversionRate *float64 `json:"conversion_rate"`
}

// NewGroup is the arm with n enrolled and x converted.
func NewGroup(n, x int) Group {
	return Group{Enrolled: n, Converted: x, ConversionRate: Rate(x, n)}
}

// Comparison is treated (received the playbook's marketing) against the
// held-out control group. Lift is the absolute difference of conversion
// rates, treated − control, with a 95% two-proportion z-interval using the
// unpooled standard error, and PValue is the two-sided p-value of the
// pooled two-proportion z-test of "no difference". The statistics are nil
// unless EnoughData; Reason then says which rule failed.
type Comparison struct {
	Treated      Group    `json:"treated"`
	Control      Group    `json:"control"`
	EnoughData   bool     `json:"enough_data"`
	Reason       string   `json:"reason,omitempty"`
	Lift         *float64 `json:"lift"`
	CILow        *float64 `json:"ci_low"`
	CIHigh       *float64 `json:"ci_high"`
	RelativeLift *float64 `json:"relative_lift"` // lift / control rate; nil when the control rate is 0
	Z            *float64 `json:"z"`
	PValue       *float64 `json:"p_value"`
}

// Compare computes the holdout comparison of treated and control.
func Compare(treated, control Group) Comparison {
	c := Comparison{Treated: treated, Control: control}
	if reason := tooSmall("treated", treated); reason != "" {
		c.Reason = reason
		return c
	}
	if reason := tooSmall("control", control); reason != "" {
		c.Reason = reason
		return c
	}
	n1, x1 := float64(treated.Enrolled), float64(treated.Converted)
	n2, x2 := float64(control.Enrolled), float64(control.Converted)
	p1, p2 := x1/n1, x2/n2
	diff := p1 - p2
	se := math.Sqrt(p1*(1-p1)/n1 + p2*(1-p2)/n2)
	pool := (x1 + x2) / (n1 + n2)
	sePooled := math.Sqrt(pool * (1 - pool) * (1/n1 + 1/n2))
	z := diff / sePooled
	p := math.Erfc(math.Abs(z) / math.Sqrt2)
	lo, hi := diff-z975*se, diff+z975*se
	c.EnoughData = true
	c.Lift, c.CILow, c.CIHigh, c.Z, c.PValue = &diff, &lo, &hi, &z, &p
	if p2 > 0 {
		rel := diff / p2
		c.RelativeLift = &rel
	}
	return c
}

// tooSmall names the first sample-size rule g breaks, or "".
func tooSmall(name string, g Group) string {
	switch {
	case g.Enrolled < MinGroupSize:
		return fmt.Sprintf("not enough data: %s group has %d enrollments (need at least %d)", name, g.Enrolled, MinGroupSize)
	case g.Converted < MinOutcomes:
		return fmt.Sprintf("not enough data: %s group has %d conversions (need at least %d)", name, g.Converted, MinOutcomes)
	case g.Enrolled-g.Converted < MinOutcomes:
		return fmt.Sprintf("not enough data: %s group has %d non-conversions (need at least %d)", name, g.Enrolled-g.Converted, MinOutcomes)
	}
	return ""
}

// FormatDuration writes a duration in seconds the way marketers read it:
// "3d 4h", "30d", "5h 12m", "2h", "40m", "12s".
func FormatDuration(seconds float64) string {
	d := time.Duration(seconds * float64(time.Second)).Round(time.Second)
	days := int(d / (24 * time.Hour))
	d -= time.Duration(days) * 24 * time.Hour
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case days > 0 && h == 0:
		return fmt.Sprintf("%dd", days)
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, h)
	case h > 0 && m == 0:
		return fmt.Sprintf("%dh", h)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%ds", s)
}
