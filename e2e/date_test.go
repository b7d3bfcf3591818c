package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// TestDateScanEnrollsTodaysBirthdays: a birthday playbook whose `at` time
// passed ten minutes ago (in UTC, the customers' zone) enrolls, when its
// hourly schedule is triggered, the customers whose birthday is that day —
// and not those whose birthday is tomorrow or who have none.
func TestDateScanEnrollsTodaysBirthdays(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nsDate)
	ctx := context.Background()
	at := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Minute)
	src := fmt.Sprintf(`playbook: e2e_birthday
stage: care
trigger: { date: birthday, at: %q }
entry: { reentry: after, cooldown: 300d }
steps:
  - update: { add_tags: [birthday_greeted] }
  - wait: 1h
`, at.Format("15:04"))
	plan, err := engine.Compile("e2e_birthday.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	born := func(d time.Time) time.Time { return time.Date(1990, d.Month(), d.Day(), 0, 0, 0, 0, time.UTC) }
	for _, c := range []rules.Customer{
		{ID: "today1", Timezone: "UTC", Birthday: born(at)},
		{ID: "today2", Timezone: "UTC", Birthday: born(at)},
		{ID: "tomorrow", Timezone: "UTC", Birthday: born(at.AddDate(0, 0, 1))},
		{ID: "unknown", Timezone: "UTC"},
	} {
		if err := e.st.UpsertCustomer(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.stack.Deploy(ctx, plan); err != nil {
		t.Fatal(err)
	}
	res := e.triggerScan("e2e_birthday", "")
	// Only today's birthdays are read (an index on zone and month-day).
	if res.Scanned != 2 || res.Matched != 2 || res.Started != 2 {
		t.Errorf("scan %+v, want 2 scanned, 2 matched, 2 started", res.Counts)
	}
	e.eventually(time.Minute, func() string {
		got := e.enrollments("e2e_birthday")
		if len(got) != 2 || got["today1"].ID == "" || got["today2"].ID == "" {
			return errorf("enrolled %v, want today1 and today2", got)
		}
		if !contains(e.customerTags("today1"), "birthday_greeted") {
			return "today1 not greeted yet"
		}
		return ""
	})
}
