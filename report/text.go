package report

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Suppression and deferral reasons shown as their own columns; any other
// suppression reason is summed under "other".
var (
	suppressedColumns = []string{"consent", "frequency_cap", "holdout"}
	deferredColumns   = []string{"quiet_hours", "frequency_cap"}
)

// WriteText writes the report as aligned tables, one section per playbook.
func WriteText(w io.Writer, r Report) error {
	ew := &errWriter{w: w}
	scope := "all time"
	if r.SinceSeconds > 0 {
		scope = "enrollments started in the last " + FormatDuration(r.SinceSeconds)
	}
	ew.printf("Rapport report — %s (generated %s)\n", scope, r.GeneratedAt.UTC().Format(time.RFC3339))
	if len(r.Playbooks) == 0 {
		ew.printf("\nno enrollments\n")
	}
	for _, p := range r.Playbooks {
		ew.printf("\n== %s ==\n", p.Name)
		writeFunnels(ew, p)
		writeSteps(ew, p.Steps)
		writeVariants(ew, p.Variants)
		ew.printf("\nholdout: %s\n", HoldoutLine(p.Holdout))
		ew.printf("engagement: response rate %s (%d of %d messaged), complaint rate %s (%d of %d enrolled)\n",
			pct(p.ResponseRate), p.Responded, p.Messaged, pct(p.ComplaintRate), p.Complained, p.Total.Enrolled)
	}
	if r.Programme.Treated.Enrolled+r.Programme.Control.Enrolled > 0 {
		ew.printf("\n== programme (playbooks in the global control group) ==\n")
		ew.printf("global control: %s\n", HoldoutLine(r.Programme))
	}
	return ew.err
}

func writeFunnels(ew *errWriter, p Playbook) {
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tENROLLED\tHOLDOUT\tACTIVE\tCOMPLETED\tEXITED\tFAILED\tENDED AT GOAL\tCONVERTED\tCONV.RATE\tMEDIAN TO CONVERT")
	row := func(name string, f Funnel) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", name, f.Enrolled, f.Holdout, f.Active,
			f.Completed, f.Exited, f.Failed, f.EndedAtGoal, f.Converted, pct(f.ConversionRate), dur(f.MedianTimeToConvertSeconds))
	}
	for _, v := range p.Versions {
		row(v.Version, v)
	}
	if len(p.Versions) != 1 {
		row("(all)", p.Total)
	}
	ew.flush(tw)
}

func writeSteps(ew *errWriter, steps []Step) {
	if len(steps) == 0 {
		return
	}
	ew.printf("\n")
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tREACHED\tSENT\tSUPPR:CONSENT\tSUPPR:CAP\tSUPPR:HOLDOUT\tSUPPR:OTHER\tDEFER:QUIET\tDEFER:CAP\tFAILED\tQUEUED")
	for _, s := range steps {
		other := 0
		for reason, n := range s.Suppressed {
			if !contains(suppressedColumns, reason) {
				other += n
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", s.Step, s.Reached, s.Sent,
			s.Suppressed["consent"], s.Suppressed["frequency_cap"], s.Suppressed["holdout"], other,
			s.Deferred["quiet_hours"], s.Deferred["frequency_cap"], s.Failed, s.Queued)
	}
	ew.flush(tw)
	writeEngagement(ew, steps)
}

// writeEngagement is the steps' delivery and engagement table, shown when
// any provider or tracking event came in.
func writeEngagement(ew *errWriter, steps []Step) {
	any := false
	for _, s := range steps {
		any = any || s.Delivered+s.Opened+s.Clicked+s.Bounced+s.Complained+s.Unsubscribed > 0
	}
	if !any {
		return
	}
	ew.printf("\n")
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSENT\tDELIVERED\tOPENED\tCLICKED\tBOUNCED\tCOMPLAINED\tUNSUBSCRIBED")
	cell := func(n int, r *float64) string { return fmt.Sprintf("%d (%s)", n, pct(r)) }
	for _, s := range steps {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Step, s.Sent, cell(s.Delivered, s.DeliveryRate),
			cell(s.Opened, s.OpenRate), cell(s.Clicked, s.ClickRate), cell(s.Bounced, s.BounceRate),
			cell(s.Complained, s.ComplaintRate), cell(s.Unsubscribed, s.UnsubscribeRate))
	}
	ew.flush(tw)
}

func writeVariants(ew *errWriter, vs []Variant) {
	if len(vs) == 0 {
		return
	}
	ew.printf("\n")
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SPLIT\tVARIANT\tENROLLED\tCONVERTED\tCONV.RATE")
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", v.Step, v.Variant, v.Enrolled, v.Converted, pct(v.ConversionRate))
	}
	ew.flush(tw)
}

// HoldoutLine says in one line how treated compares with the control
// group, e.g. "treated 30/100 (30.0%) vs control 10/100 (10.0%): lift
// +20.0 pts, 95% CI [+8.9, +31.1] pts, p = 0.0005".
func HoldoutLine(c Comparison) string {
	if c.Control.Enrolled == 0 {
		return "no enrollment in a control group (set entry.holdout to measure lift; with one set, nobody has been drawn into it yet)"
	}
	s := fmt.Sprintf("treated %d/%d (%s) vs control %d/%d (%s)", c.Treated.Converted, c.Treated.Enrolled,
		pct(c.Treated.ConversionRate), c.Control.Converted, c.Control.Enrolled, pct(c.Control.ConversionRate))
	if !c.EnoughData {
		return s + ": " + c.Reason
	}
	return s + fmt.Sprintf(": lift %s pts, 95%% CI [%s, %s] pts, p = %s", pts(*c.Lift), pts(*c.CILow), pts(*c.CIHigh), pvalue(*c.PValue))
}

func pct(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *r*100)
}

func pts(x float64) string { return fmt.Sprintf("%+.1f", x*100) }

func pvalue(p float64) string {
	if p < 0.0001 {
		return "< 0.0001"
	}
	return fmt.Sprintf("%.4f", p)
}

func dur(s *float64) string {
	if s == nil {
		return "-"
	}
	return FormatDuration(*s)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// errWriter keeps the first write error, so the table code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

func (e *errWriter) flush(tw *tabwriter.Writer) {
	if err := tw.Flush(); err != nil && e.err == nil {
		e.err = err
	}
}
