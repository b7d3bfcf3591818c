package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/reconcile"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store/storetest"
)

// fates is a reconcile.Workflows with made-up answers; enrollments it
// does not know are still running.
type fates struct {
	byEnrollment map[string]reconcile.Fate
	journeys     bool // the namespace holds Journey workflows
}

func (f fates) Fate(_ context.Context, _, enrollmentID string) (reconcile.Fate, error) {
	if fate, ok := f.byEnrollment[enrollmentID]; ok {
		return fate, nil
	}
	return reconcile.Fate{Open: true}, nil
}

func (fates) Retention(context.Context) (time.Duration, error) { return 7 * 24 * time.Hour, nil }

func (f fates) HasJourneys(context.Context) (bool, error) { return f.journeys, nil }

// TestReconcileNotFoundNeedsTheFlag: `rapport reconcile` lists an
// enrollment whose workflow Temporal does not find and leaves it active,
// unless --close-not-found; in a namespace without journeys (a wrong
// TEMPORAL_NAMESPACE) it fails naming the namespace, and closes nothing
// as not found even with the flag.
func TestReconcileNotFoundNeedsTheFlag(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	now := time.Now()
	for id, at := range map[string]time.Time{"gone": now.AddDate(0, 0, -30), "term": now.AddDate(0, 0, -29), "run": now.AddDate(0, 0, -28)} {
		if err := st.UpsertCustomer(ctx, rules.Customer{ID: "cust-" + id}); err != nil {
			t.Fatal(err)
		}
		e := activities.Enrollment{ID: id, WorkflowID: "wf-" + id, Playbook: "pb", Version: "v1", CustomerID: "cust-" + id}
		if res, err := st.RecordStart(ctx, activities.EntryRequest{Enrollment: e, Reentry: "always", At: at}); err != nil || !res.Admitted {
			t.Fatalf("start %s: %+v %v", id, res, err)
		}
	}
	status := func(id string) string {
		t.Helper()
		var s, reason string
		if err := st.Pool().QueryRow(ctx, `SELECT status, reason FROM enrollments WHERE id = $1`, id).Scan(&s, &reason); err != nil {
			t.Fatal(err)
		}
		return s + " " + reason
	}
	w := fates{journeys: true, byEnrollment: map[string]reconcile.Fate{
		"gone": {Ended: reconcile.EndedNotFound},
		"term": {Ended: reconcile.EndedTerminated, Detail: "bad deploy"},
	}}
	run := func(w reconcile.Workflows, o reconcileOptions) (string, string, error) {
		var out, errOut bytes.Buffer
		o.Grace, o.Namespace = time.Minute, "rapport"
		err := reconcileNow(ctx, &out, &errOut, st, w, o)
		return out.String(), errOut.String(), err
	}

	// A wrong TEMPORAL_NAMESPACE: nothing is found, nothing closed.
	out, _, err := run(fates{byEnrollment: map[string]reconcile.Fate{"gone": {Ended: reconcile.EndedNotFound}, "term": {Ended: reconcile.EndedNotFound},
		"run": {Ended: reconcile.EndedNotFound}}}, reconcileOptions{CloseNotFound: true})
	var wrong *reconcile.WrongNamespaceError
	if !errors.As(err, &wrong) || !strings.Contains(err.Error(), `namespace "rapport"`) || !strings.Contains(err.Error(), "TEMPORAL_NAMESPACE") {
		t.Fatalf("wrong namespace: %v, want an error naming the namespace and TEMPORAL_NAMESPACE\n%s", err, out)
	}
	for _, id := range []string{"gone", "term", "run"} {
		if s := status(id); s != "active " {
			t.Fatalf("wrong namespace: %s is %q, want still active", id, s)
		}
	}

	// Without --close-not-found: listed, left active.
	out, _, err = run(w, reconcileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"not found, left active gone  pb  customer cust-gone  started ",
		"closed term  pb  customer cust-term  workflow terminated → failed (workflow terminated: bad deploy)\n",
		"active enrollments older than 1m0s: 3 checked, 1 closed, 1 still running, 0 closed by their journey meanwhile, 1 not found left active (--close-not-found closes them)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("without --close-not-found printed\n%s\nwithout %q", out, want)
		}
	}
	if s := status("gone"); s != "active " {
		t.Errorf("without --close-not-found the enrollment not found is %q, want still active", s)
	}

	// With it: closed.
	out, _, err = run(w, reconcileOptions{CloseNotFound: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := "closed gone  pb  customer cust-gone  workflow not_found → failed (workflow not found)\n"; !strings.Contains(out, want) {
		t.Errorf("with --close-not-found printed\n%s\nwithout %q", out, want)
	}
	if s := status("gone"); s != "failed workflow not found" {
		t.Errorf("with --close-not-found the enrollment not found is %q, want failed", s)
	}
}
