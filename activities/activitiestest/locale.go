package activitiestest

import (
	"fmt"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/activities"
	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
)

// localePlaybook has a template in four locales whose subject shows the
// customer's birthday.
const localePlaybook = `playbook: loc
stage: care
trigger: { manual: true }
templates:
  hi:
    zh: { subject: "简体 [{{ customer.birthday }}]", text: "t" }
    en: { subject: "English [{{ customer.birthday }}]", text: "t" }
    zh-TW: { subject: "繁體 [{{ customer.birthday }}]", text: "t" }
    pt-BR: { subject: "Português [{{ customer.birthday }}]", text: "t" }
steps:
  - send: { channel: email, template: hi }
`

// localeCases: the variant a journey picks for a customer's locale
// (engine's BCP 47 matching) is the one recorded and delivered, and an
// unset date renders as nothing, never 0001-01-01.
func localeCases() []contractCase {
	return []contractCase{{name: "send/the locale's variant is recorded, an unset date renders empty", run: func(t *testing.T, w World) {
		plan, err := engine.Compile("loc.yaml", []byte(localePlaybook))
		if err != nil {
			t.Fatal(err)
		}
		birthday := time.Date(1990, 4, 12, 0, 0, 0, 0, time.UTC)
		for i, tc := range []struct {
			locale, variant, subject string
			birthday                 time.Time
		}{
			{"zh_CN", "zh", "简体 []", time.Time{}},
			{"ZH", "zh", "简体 []", time.Time{}},
			{"zh-Hans", "zh", "简体 []", time.Time{}},
			{"zh-HK", "zh-TW", "繁體 []", time.Time{}},
			{"zh-TW", "zh-TW", "繁體 []", time.Time{}},
			{"zh-Hant", "zh-TW", "繁體 []", time.Time{}},
			{"en-GB", "en", "English [1990-04-12]", birthday},
			{"pt_BR", "pt-BR", "Português []", time.Time{}},
			{"", "en", "English []", time.Time{}},
			{"xx", "en", "English [1990-04-12]", birthday},
		} {
			id := fmt.Sprint("c", i)
			c := rules.Customer{ID: id, Email: id + "@example.com", Locale: tc.locale, Birthday: tc.birthday}
			w.Put(t, c)
			v, locale := plan.Template("hi", c.Locale)
			if v == nil || locale != tc.variant {
				t.Errorf("locale %q: variant %q, want %q", tc.locale, locale, tc.variant)
				continue
			}
			key := "en-" + id + "/send_1/1"
			r := activities.SendRequest{
				Enrollment: activities.Enrollment{ID: "en-" + id, WorkflowID: "wf-" + id, Playbook: "loc", Version: "v1", CustomerID: id},
				Key:        key, StepID: "send_1", Channel: "email", Template: "hi", Locale: locale, Topic: "marketing",
				Subject: v.Subject, Text: v.Text, Customer: c, Now: T0,
			}
			wantSend(t, send(t, w, r), activities.SendSent, "")
			gotLocale, gotSubject := w.Recorded(t, key)
			if gotLocale != tc.variant || gotSubject != tc.subject {
				t.Errorf("locale %q: recorded %q %q, want %q %q", tc.locale, gotLocale, gotSubject, tc.variant, tc.subject)
			}
		}
	}}}
}
