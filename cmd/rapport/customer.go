package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rapport-crm/rapport/report"
	"github.com/rapport-crm/rapport/store"
)

func init() {
	cmd := &cobra.Command{
		Use:   "customer ID [--json] [--limit N]",
		Short: "Everything Rapport knows about one customer: profile, metrics, refunds, groups, consents, points, coupons, tasks, contact log, enrollments (--json: the complete record, for access requests)",
		Long: `customer prints the profile as rules see it, the customer metrics
(docs/metrics.md) and refunds (Order Refunded, already off the revenue),
the accounts (Segment groups) the customer belongs to, consent
decisions, the points balance and ledger,
coupons, open tasks, the two-way contact log (messages out, events in,
newest first) and every enrollment with its status and a link to its
journey in the Temporal Web UI ($RAPPORT_TEMPORAL_UI, default
http://localhost:8233; namespace $TEMPORAL_NAMESPACE).

--json prints the complete record, the answer to an access request
(GET /v1/customers/{id} returns the same): all of the above without
--limit, plus every event with its properties, every message with its
status history, every enrollment step, every task (done ones too), the
anonymous ids tied to the customer with their traits and events, and the
suppression-list entries of every address the customer had.`,
		Args: cobra.ExactArgs(1),
		RunE: runCustomer,
	}
	cmd.Flags().Bool("json", false, "print JSON")
	cmd.Flags().Int("limit", store.DefaultContactLimit, "newest contact-log lines and ledger entries to show (not with --json, which shows all)")
	rootCmd.AddCommand(cmd)
}

func runCustomer(cmd *cobra.Command, args []string) error {
	st, err := openStoreEnv(cmd.Context())
	if err != nil {
		return err
	}
	defer st.Close()
	limit, _ := cmd.Flags().GetInt("limit")
	links := temporalLinks{base: os.Getenv("RAPPORT_TEMPORAL_UI"), namespace: temporalNamespace()}
	if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
		x, err := st.CustomerExport(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		return writeCustomerJSON(cmd.OutOrStdout(), x, links)
	}
	v, err := st.CustomerView(cmd.Context(), args[0], limit)
	if err != nil {
		return err
	}
	return writeCustomer(cmd.OutOrStdout(), v, links)
}

// temporalLinks builds Temporal UI links to enrollments.
type temporalLinks struct{ base, namespace string }

func (l temporalLinks) of(e store.EnrollmentSummary) string {
	run := ""
	if report.IsRunID(e.ID) {
		run = e.ID
	}
	return report.TemporalRunURL(l.base, l.namespace, e.WorkflowID, run)
}

// writeCustomerJSON is the complete record (an access request's answer)
// with a temporal_url on each enrollment.
func writeCustomerJSON(w io.Writer, x store.CustomerExport, links temporalLinks) error {
	type enrollment struct {
		store.EnrollmentSummary
		TemporalURL string `json:"temporal_url"`
	}
	out := struct {
		store.CustomerExport
		Enrollments []enrollment `json:"enrollments"`
	}{CustomerExport: x, Enrollments: []enrollment{}}
	for _, e := range x.Enrollments {
		out.Enrollments = append(out.Enrollments, enrollment{e, links.of(e)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// writeCustomer prints the view as sections of aligned tables.
func writeCustomer(w io.Writer, v store.CustomerView, links temporalLinks) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p, m := v.Profile, v.Metrics
	fmt.Fprintf(tw, "Customer %s — %s\n", p.ID, cvOrDash(p.Name))
	for _, kv := range [][2]string{
		{"email", p.Email}, {"phone", p.Phone}, {"locale", p.Locale}, {"timezone", p.Timezone},
		{"tier", p.Tier}, {"stage", p.Stage}, {"tags", strings.Join(p.Tags, ", ")}, {"attrs", cvAttrsLine(p.Attrs)},
		{"signup", cvDay(p.SignupAt)}, {"birthday", cvDay(p.Birthday)},
	} {
		fmt.Fprintf(tw, "  %s:\t%s\n", kv[0], cvOrDash(kv[1]))
	}
	cvSection(tw, "Metrics")
	fmt.Fprintf(tw, "  orders:\t%d (%d repeat)\n", m.OrderCount, m.RepeatPurchases)
	fmt.Fprintf(tw, "  revenue:\t%.2f (average order %.2f)\n", m.Revenue, m.AvgOrderValue)
	fmt.Fprintf(tw, "  lifetime value:\t%.2f\n", m.LifetimeValue)
	fmt.Fprintf(tw, "  refunds:\t%s\n", cvRefunds(v.Refunds))
	fmt.Fprintf(tw, "  last purchase:\t%s\n", cvLastPurchase(m))
	fmt.Fprintf(tw, "  usual gap:\t%.1f days (mean gap %.1f)\n", m.UsualGapDays, m.PurchaseGapDays)
	fmt.Fprintf(tw, "  churn risk:\t%s\n", cvYesNo(m.ChurnRisk))

	cvSection(tw, "Groups (accounts)")
	cvTable(tw, len(v.Groups), "GROUP\tTRAITS\tUPDATED", func(i int) string {
		g := v.Groups[i]
		return fmt.Sprintf("%s\t%s\t%s", g.ID, cvOrDash(cvAttrsLine(g.Traits)), cvStamp(g.UpdatedAt))
	})
	cvSection(tw, "Consents (opt-out: channels and topics not listed are allowed)")
	cvTable(tw, len(v.Consents), "CHANNEL\tTOPIC\tGRANTED\tSOURCE\tUPDATED", func(i int) string {
		c := v.Consents[i]
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", c.Channel, c.Topic, cvYesNo(c.Granted), cvOrDash(c.Source), cvStamp(c.UpdatedAt))
	})
	cvSection(tw, "Suppressed addresses (bounces and complaints stop mail to them)")
	cvTable(tw, len(v.Suppressions), "CHANNEL\tADDRESS\tREASON\tSINCE\tSOURCE", func(i int) string {
		s := v.Suppressions[i]
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", s.Channel, s.Address, s.Reason, cvStamp(s.SuppressedAt), cvOrDash(s.Source))
	})
	cvSection(tw, fmt.Sprintf("Points: balance %d", p.Points))
	cvTable(tw, len(v.Ledger), "AT\tDELTA\tREASON\tBALANCE\tENROLLMENT", func(i int) string {
		l := v.Ledger[i]
		return fmt.Sprintf("%s\t%+d\t%s\t%d\t%s", cvStamp(l.At), l.Delta, cvOrDash(l.Reason), l.BalanceAfter, cvOrDash(l.EnrollmentID))
	})
	cvSection(tw, "Coupons")
	cvTable(tw, len(v.Coupons), "CODE\tKIND\tVALUE\tEXPIRES\tREDEEMED", func(i int) string {
		c := v.Coupons[i]
		redeemed := "-"
		if c.RedeemedAt != nil {
			redeemed = cvStamp(*c.RedeemedAt)
		}
		return fmt.Sprintf("%s\t%s\t%g\t%s\t%s", c.Code, c.Kind, c.Value, cvStamp(c.ExpiresAt), redeemed)
	})
	cvSection(tw, "Open tasks")
	cvTable(tw, len(v.OpenTasks), "DUE\tASSIGNEE\tPRIORITY\tTITLE", func(i int) string {
		t := v.OpenTasks[i]
		return fmt.Sprintf("%s\t%s\t%s\t%s", cvStamp(t.DueAt), t.Assignee, t.Priority, t.Title)
	})
	cvSection(tw, "Contact log (newest first)")
	cvTable(tw, len(v.Contacts), "AT\tDIR\tWHAT\tOUTCOME\tVIA", func(i int) string { return cvContactLine(v.Contacts[i]) })
	cvSection(tw, "Enrollments")
	cvTable(tw, len(v.Enrollments), "PLAYBOOK\tVERSION\tSTATUS\tLAST DECISION\tSTARTED\tENDED\tTEMPORAL", func(i int) string {
		e := v.Enrollments[i]
		status := e.Status
		if e.Reason != "" {
			status += " (" + e.Reason + ")"
		}
		if e.ConvertedAt != nil && e.Status != "converted" {
			status += " [converted " + cvStamp(*e.ConvertedAt) + "]"
		}
		if e.Holdout {
			status += " [holdout]"
		}
		ended := "-"
		if e.EndedAt != nil {
			ended = cvStamp(*e.EndedAt)
		}
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", e.Playbook, e.Version, status, cvOrDash(e.CurrentStep), cvStamp(e.StartedAt), ended, links.of(e))
	})
	return tw.Flush()
}

func cvSection(w io.Writer, title string) { fmt.Fprintf(w, "\n%s\n", title) }

// table writes a header and n rows, or "  (none)".
func cvTable(w io.Writer, n int, header string, row func(int) string) {
	if n == 0 {
		fmt.Fprintln(w, "  (none)")
		return
	}
	fmt.Fprintln(w, "  "+header)
	for i := 0; i < n; i++ {
		fmt.Fprintln(w, "  "+row(i))
	}
}

func cvContactLine(c store.Contact) string {
	if c.Direction == "in" {
		what := c.Event
		if c.Amount != 0 {
			what += fmt.Sprintf(" %.2f %s", c.Amount, c.Currency)
		}
		if c.OrderID != "" {
			what += " order " + c.OrderID
		}
		return fmt.Sprintf("%s\tin\t%s\t-\t-", cvStamp(c.At), strings.TrimSpace(what))
	}
	what := fmt.Sprintf("%s %s (%s) → %s", c.Channel, c.Template, cvOrDash(c.Locale), cvOrDash(c.Recipient))
	outcome := c.Status
	if c.Reason != "" {
		outcome += " (" + c.Reason + ")"
	}
	return fmt.Sprintf("%s\tout\t%s\t%s\t%s/%s", cvStamp(c.At), what, outcome, cvOrDash(c.Playbook), cvOrDash(c.Step))
}

// cvRefunds says how many refunds and how much: the amount is already off
// the revenue (and so the lifetime value) shown above, which would
// otherwise drop unexplained.
func cvRefunds(r store.Refunds) string {
	if r.Count == 0 {
		return "none"
	}
	return fmt.Sprintf("%d (%.2f refunded, already off the revenue)", r.Count, r.Amount)
}

func cvLastPurchase(m store.CustomerMetrics) string {
	if m.LastPurchaseAt.IsZero() {
		return "never"
	}
	return fmt.Sprintf("%s (%d days ago)", cvDay(m.LastPurchaseAt), m.DaysSinceLastPurchase)
}

func cvAttrsLine(attrs map[string]any) string {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		b, _ := json.Marshal(attrs[k])
		parts = append(parts, k+"="+string(b))
	}
	return strings.Join(parts, " ")
}

func cvStamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func cvDay(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02")
}

func cvOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cvYesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
