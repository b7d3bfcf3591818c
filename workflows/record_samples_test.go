package workflows

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/simulate/simfile"
)

// The recorder runs in real time on a dev server, where a playbook's days
// would take days. Sample playbooks are recorded compressed: every
// duration shrinks from days to seconds (1d → 1s, 12h → 1s), and every
// wait-until is moved to a minute or two ahead in the customer's zone, so
// each sample walks its whole main path in a minute or so. The histories
// carry the compressed source, which is what replay compiles, and the
// step kinds, branches and events are the sample's own.

// durationValue matches a duration written as a YAML value ("timeout: 3d").
var durationValue = regexp.MustCompile(`(\b[a-z_]+:\s+)(\d+(?:w|d|h|m)(?:\d+(?:w|d|h|m|s))*)([\s,}]|$)`)

// untilValue matches a wait-until time.
var untilValue = regexp.MustCompile(`until:\s*"\d\d:\d\d"`)

// compressPlaybook rewrites src for recording in real time: durations in
// seconds per day, wait-until a little ahead of now in loc.
func compressPlaybook(src string, now time.Time, loc *time.Location) string {
	src = durationValue.ReplaceAllStringFunc(src, func(m string) string {
		p := durationValue.FindStringSubmatch(m)
		d, err := rules.ParseDuration(p[2])
		if err != nil || strings.HasPrefix(p[1], "every:") {
			return m // scan intervals are not part of a journey
		}
		secs := max(1, int(math.Ceil(d.Hours()/24)))
		return fmt.Sprintf("%s%ds%s", p[1], secs, p[3])
	})
	ahead := now.Add(2 * time.Minute).In(loc)
	return untilValue.ReplaceAllString(src, fmt.Sprintf(`until: "%02d:%02d"`, ahead.Hour(), ahead.Minute()))
}

// daytimeZone is the zone among a few where the local time is nearest to
// 13:00, so that the samples' quiet hours (evening to morning) do not hold
// their sends for hours while recording.
func daytimeZone(now time.Time) *time.Location {
	best, bestGap := time.UTC, 24.0
	for _, name := range []string{"UTC", "Europe/Berlin", "Asia/Kolkata", "Asia/Shanghai", "Asia/Tokyo", "Pacific/Auckland", "America/Los_Angeles", "America/New_York", "America/Sao_Paulo"} {
		loc := rules.Location(name)
		l := now.In(loc)
		if gap := math.Abs(float64(l.Hour()) + float64(l.Minute())/60 - 13); gap < bestGap {
			best, bestGap = loc, gap
		}
	}
	return best
}

// sampleRecordings records every sample playbook on its main path: with
// the scenario events of its simulate golden file when it has one, else
// with no events (the timeouts' path).
func sampleRecordings(now time.Time) ([]recording, error) {
	loc := daytimeZone(now)
	paths, err := filepath.Glob(filepath.Join("..", "playbooks", "*.yaml"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no sample playbooks: %v", err)
	}
	var out []recording
	for _, path := range paths {
		if engine.IsWorkspaceFile(path) {
			continue // the workspace declaration, not a playbook
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		c := SampleCustomer(now)
		c.ID, c.Timezone = "sample-"+name, loc.String()
		rec := recording{name: "sample-" + name, source: compressPlaybook(string(src), now, loc), customer: c}
		if data, err := os.ReadFile(filepath.Join("..", "simulate", "testdata", "simulate", name+".events.yaml")); err == nil {
			all, err := simfile.ParseEvents(name+".events.yaml", data)
			if err != nil {
				return nil, err
			}
			events, trigger := simfile.Split(all)
			rec.trigger = trigger
			rec.drive = driveCompressed(events)
		}
		out = append(out, rec)
	}
	return out, nil
}

// driveCompressed delivers events at their offsets, a day of the events
// file taking a second, as the event API does (stored, then signalled).
func driveCompressed(events []simfile.Event) func(context.Context, client.Client, string, recorderWorld) error {
	return func(ctx context.Context, c client.Client, wfID string, w recorderWorld) error {
		start := time.Now()
		for _, ev := range events {
			at := time.Duration(math.Ceil(ev.At.Hours()/24)) * time.Second
			time.Sleep(time.Until(start.Add(at + 500*time.Millisecond)))
			e := ev.Event
			e.Time = time.Now().UTC()
			w.record(e)
			err := c.SignalWorkflow(ctx, wfID, "", EventSignal, e)
			var done *serviceerror.NotFound
			if errors.As(err, &done) {
				// The journey has ended (one without waits ends at once);
				// later events would start new enrollments, which a
				// recording of one journey leaves out.
				return nil
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
}

// scenarioRecordings cover what the samples do not reach in real time:
// quiet hours, a frequency-cap deferral cut by continue-as-new under an
// event storm, and an outage ridden out on local-activity backoff timers.
func scenarioRecordings(now time.Time) []recording {
	bo := rules.Customer{ID: "scenario", Name: "Bo", Email: "bo@example.com", Phone: "+4915100000007", Locale: "en", Timezone: "UTC", Tier: "standard"}
	quietStart := now.UTC().Truncate(time.Minute)
	quietEnd := quietStart.Add(2 * time.Minute)
	quiet := fmt.Sprintf(`playbook: quiet_scenario
stage: care
trigger: { manual: true }
entry: { reentry: always }
policies:
  quiet_hours: { start: "%02d:%02d", end: "%02d:%02d" }
templates:
  hi:
    en: { subject: "Hi {{ customer.name }}", text: "Hello {{ customer.name }}" }
steps:
  - send: { channel: email, template: hi }
  - send: { channel: email, template: hi, transactional: true }
`, quietStart.Hour(), quietStart.Minute(), quietEnd.Hour(), quietEnd.Minute())
	deferral := `playbook: deferral_scenario
stage: care
trigger: { manual: true }
entry: { reentry: always }
goal: { event: purchase, within: 10m }
policies:
  frequency_cap: { max: 1, per: 40s, action: defer }
templates:
  hi:
    en: { subject: "Hi {{ customer.name }}", text: "Hello {{ customer.name }}" }
  ping:
    en: { text: "Ping {{ customer.name }}" }
steps:
  - send: { channel: email, template: hi }
  - send: { channel: sms, template: ping }
  - wait: { event: purchase, timeout: 20s }
`
	outage := `playbook: outage_scenario
stage: care
trigger: { manual: true }
entry: { reentry: always }
templates:
  hi:
    en: { subject: "Hi {{ customer.name }}", text: "Hello {{ customer.name }}" }
steps:
  - send: { channel: email, template: hi }
  - wait: 2s
  - send: { channel: email, template: hi }
`
	with := func(id string) rules.Customer { c := bo; c.ID = id; return c }
	return []recording{
		{name: "scenario-quiet-hours", source: quiet, customer: with("scenario-quiet")},
		{name: "scenario-cap-deferral-storm", source: deferral, customer: with("scenario-deferral"), drive: func(ctx context.Context, c client.Client, wfID string, w recorderWorld) error {
			time.Sleep(3 * time.Second) // the second send is deferred by then
			for i := range 600 {
				if err := c.SignalWorkflow(ctx, wfID, "", EventSignal, rules.Event{ID: fmt.Sprintf("visit-%d", i), Name: "visit"}); err != nil {
					return err
				}
			}
			time.Sleep(45 * time.Second)
			return c.SignalWorkflow(ctx, wfID, "", EventSignal, rules.Event{ID: "purchase-1", Name: "purchase", Amount: 20})
		}},
		{name: "scenario-outage", source: outage, customer: with("scenario-outage"), alone: true, drive: func(ctx context.Context, c client.Client, wfID string, w recorderWorld) error {
			time.Sleep(time.Second) // after the first send, during the wait
			w.outage(true)
			time.Sleep(40 * time.Second) // past the local retries: backoff timers
			w.outage(false)
			return nil
		}},
	}
}

// compile compiles a recording's playbook: its file or its source.
func (rec recording) compile() (*engine.Plan, error) {
	if rec.source != "" {
		return engine.Compile(rec.name+".yaml", []byte(rec.source))
	}
	return engine.CompileFile(rec.playbook)
}
