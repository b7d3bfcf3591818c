package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
)

// compile builds a one-step playbook with the given header lines (trigger,
// goal, …) and extra steps.
func compile(t *testing.T, name, header, steps string) *engine.Plan {
	t.Helper()
	src := fmt.Sprintf("playbook: %s\nstage: loyalty\n%s\nsteps:\n  - update: { add_tags: [seen] }\n%s", name, header, steps)
	p, err := engine.Compile(name+".yaml", []byte(src))
	if err != nil {
		t.Fatalf("compile %s: %v\n%s", name, err, src)
	}
	return p
}

// fakeJourneys records starts and signals; running says which
// playbook/customer journeys already run, so Enroll answers started false
// for them.
type fakeJourneys struct {
	mu      sync.Mutex // Dispatch signals concurrently
	running map[string]bool
	enrolls []string
	signals []string
	fail    error
	// missing are the playbook/customer journeys whose workflow does not
	// exist: a signal to them fails with ErrNoJourney.
	missing map[string]bool
}

func (f *fakeJourneys) Enroll(_ context.Context, p *engine.Plan, customerID string, ev rules.Event) (EnrollResult, error) {
	if f.fail != nil {
		return EnrollResult{}, f.fail
	}
	f.enrolls = append(f.enrolls, p.Name+"/"+customerID+"/"+ev.ID)
	started := !f.running[p.Name+"/"+customerID]
	return EnrollResult{Started: started, WorkflowID: p.Name + "/" + customerID}, nil
}

func (f *fakeJourneys) Signal(_ context.Context, playbook, customerID string, ev rules.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	if f.missing[playbook+"/"+customerID] {
		return fmt.Errorf("signal %s/%s: %w", playbook, customerID, ErrNoJourney)
	}
	f.signals = append(f.signals, playbook+"/"+customerID+"/"+ev.ID)
	return nil
}

// fakeEnrollments are customers' running enrollments. A noted start
// joins them, as in the store (journey_starts), and is listed in notes;
// drops lists the notes dropped.
type fakeEnrollments struct {
	mu           sync.Mutex
	running      map[string][]ActiveEnrollment
	notes, drops []string
}

// enrollmentsOf is a fakeEnrollments with a copy of running.
func enrollmentsOf(running map[string][]ActiveEnrollment) *fakeEnrollments {
	f := &fakeEnrollments{running: map[string][]ActiveEnrollment{}}
	for id, a := range running {
		f.running[id] = slices.Clone(a)
	}
	return f
}

func (f *fakeEnrollments) ActiveEnrollments(_ context.Context, id string) ([]ActiveEnrollment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.running[id]), nil
}

func (f *fakeEnrollments) NoteStart(_ context.Context, s store.JourneyStart) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running[s.CustomerID] = append(f.running[s.CustomerID], ActiveEnrollment{Playbook: s.Playbook, Version: s.Version})
	f.notes = append(f.notes, s.Playbook+"/"+s.CustomerID+"/"+s.TriggerID)
	return nil
}

func (f *fakeEnrollments) DropStartNote(_ context.Context, s store.JourneyStart) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drops = append(f.drops, s.Playbook+"/"+s.CustomerID+"/"+s.TriggerID)
	return nil
}

func TestDispatcher(t *testing.T) {
	reg := engine.NewRegistry()
	big := compile(t, "big_spender", "trigger: { event: purchase, when: 'event.amount >= 100 && customer.tier != \"gold\"' }", "")
	anyBuy := compile(t, "any_purchase", "trigger: { event: purchase }\ngoal: { event: purchase, within: 30d }", "")
	signup := compile(t, "welcome", "trigger: { event: signup }", "  - wait: { event: profile_completed, timeout: 3d }\n")
	exits := compile(t, "quiet", "trigger: { manual: true }\nexit_when: customer.attrs.stop == true", "")
	manual := compile(t, "vip", "trigger: { manual: true }", "")
	for _, p := range []*engine.Plan{big, anyBuy, signup, exits, manual} {
		reg.Add(p)
	}
	active := map[string][]ActiveEnrollment{"c1": {
		{Playbook: "any_purchase", Version: anyBuy.Version}, // goal purchase
		{Playbook: "welcome", Version: signup.Version},      // waits for profile_completed
		{Playbook: "quiet", Version: exits.Version},         // exit_when: every event
		{Playbook: "vip", Version: manual.Version},          // nothing to hear
		{Playbook: "retired", Version: "abc"},               // unknown version: signalled to be safe
	}}
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	// c1 runs any_purchase already; c2 runs nothing.
	running := map[string]bool{"any_purchase/c1": true, "welcome/c1": true}
	tests := []struct {
		name     string
		customer rules.Customer
		ev       rules.Event
		enrolls  []string
		signals  []string
	}{
		{"purchase reaches the running goal", rules.Customer{ID: "c1"}, rules.Event{ID: "e1", Name: "purchase", Amount: 150, Time: at},
			[]string{"any_purchase/c1/e1", "big_spender/c1/e1"},
			[]string{"any_purchase/c1/e1", "quiet/c1/e1", "retired/c1/e1"}},
		{"when rule sees the stored customer", rules.Customer{ID: "c1", Tier: "gold"}, rules.Event{ID: "e2", Name: "purchase", Amount: 150, Time: at},
			[]string{"any_purchase/c1/e2"},
			[]string{"any_purchase/c1/e2", "quiet/c1/e2", "retired/c1/e2"}},
		{"small purchase", rules.Customer{ID: "c1"}, rules.Event{ID: "e3", Name: "purchase", Amount: 5, Time: at},
			[]string{"any_purchase/c1/e3"},
			[]string{"any_purchase/c1/e3", "quiet/c1/e3", "retired/c1/e3"}},
		{"a fresh journey is not signalled its own trigger", rules.Customer{ID: "c2"}, rules.Event{ID: "e4", Name: "purchase", Amount: 150, Time: at},
			[]string{"any_purchase/c2/e4", "big_spender/c2/e4"},
			nil},
		{"wait event", rules.Customer{ID: "c1"}, rules.Event{ID: "e5", Name: "profile_completed", Time: at},
			nil,
			[]string{"quiet/c1/e5", "retired/c1/e5", "welcome/c1/e5"}},
		{"a customer in no journey hears nothing", rules.Customer{ID: "c2"}, rules.Event{ID: "e6", Name: "profile_completed", Time: at},
			nil,
			nil},
		{"name is exact", rules.Customer{ID: "c1"}, rules.Event{ID: "e7", Name: "Purchase", Time: at},
			nil,
			[]string{"quiet/c1/e7", "retired/c1/e7"}},
		{"signup starts welcome", rules.Customer{ID: "c2"}, rules.Event{ID: "e8", Name: "signup", Time: at},
			[]string{"welcome/c2/e8"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &fakeJourneys{running: running}
			en := enrollmentsOf(active)
			d := NewEventDispatcher(reg, j, en, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err := d.Dispatch(context.Background(), tt.customer, tt.ev); err != nil {
				t.Fatal(err)
			}
			// Every start is noted before it is asked for; those that
			// found the journey running drop their note.
			slices.Sort(en.notes)
			if !slices.Equal(en.notes, tt.enrolls) {
				t.Errorf("notes %v, want one per enroll %v", en.notes, tt.enrolls)
			}
			var drops []string
			for _, e := range tt.enrolls {
				if running[e[:strings.LastIndex(e, "/")]] { // playbook/customer
					drops = append(drops, e)
				}
			}
			if !slices.Equal(en.drops, drops) {
				t.Errorf("dropped notes %v, want %v (the starts of running journeys)", en.drops, drops)
			}
			slices.Sort(j.enrolls)
			slices.Sort(j.signals)
			want := slices.Sorted(slices.Values(tt.signals))
			if !slices.Equal(j.enrolls, tt.enrolls) {
				t.Errorf("enrolls %v, want %v", j.enrolls, tt.enrolls)
			}
			if !slices.Equal(j.signals, want) {
				t.Errorf("signals %v, want %v", j.signals, want)
			}
		})
	}
}

func TestDispatcherFailureIsReturned(t *testing.T) {
	reg := engine.NewRegistry()
	reg.Add(compile(t, "welcome", "trigger: { event: signup }", ""))
	j := &fakeJourneys{fail: fmt.Errorf("start: %w", ErrUnavailable)}
	d := NewEventDispatcher(reg, j, enrollmentsOf(nil), nil)
	err := d.Dispatch(context.Background(), rules.Customer{ID: "c1"}, rules.Event{ID: "e1", Name: "signup"})
	if !IsUnavailable(err) || !strings.Contains(err.Error(), "enroll c1 in welcome") {
		t.Fatalf("error %v: want an unavailable error naming the enrollment", err)
	}
}

func TestDispatcherTriggerRuleErrorSkipsPlaybook(t *testing.T) {
	reg := engine.NewRegistry()
	// Indexing past the end of a list fails at run time, not compile time.
	reg.Add(compile(t, "broken", "trigger: { event: signup, when: 'customer.tags[3] == \"vip\"' }", ""))
	reg.Add(compile(t, "welcome", "trigger: { event: signup }", ""))
	j := &fakeJourneys{}
	var log strings.Builder
	d := NewEventDispatcher(reg, j, enrollmentsOf(nil), slog.New(slog.NewTextHandler(&log, nil)))
	if err := d.Dispatch(context.Background(), rules.Customer{ID: "c1"}, rules.Event{ID: "e1", Name: "signup"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(j.enrolls, []string{"welcome/c1/e1"}) {
		t.Errorf("enrolls %v", j.enrolls)
	}
	if !strings.Contains(log.String(), "trigger rule failed") || !strings.Contains(log.String(), "playbook=broken") {
		t.Errorf("the failing rule was not logged: %s", log.String())
	}
}

func TestManualEnroll(t *testing.T) {
	reg := engine.NewRegistry()
	reg.Add(compile(t, "vip", "trigger: { manual: true }", ""))
	reg.Add(compile(t, "welcome", "trigger: { event: signup }", ""))
	j := &fakeJourneys{}
	d := NewEventDispatcher(reg, j, enrollmentsOf(nil), nil)
	c := rules.Customer{ID: "c1"}
	if _, err := d.Enroll(context.Background(), "vip", c, rules.Event{Name: "manual"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Enroll(context.Background(), "welcome", c, rules.Event{}); !errors.Is(err, ErrNotManual) {
		t.Errorf("event playbook: %v, want ErrNotManual", err)
	}
	if _, err := d.Enroll(context.Background(), "nope", c, rules.Event{}); !errors.Is(err, ErrUnknownPlaybook) {
		t.Errorf("unknown playbook: %v, want ErrUnknownPlaybook", err)
	}
	if len(j.enrolls) != 1 {
		t.Errorf("enrolls %v", j.enrolls)
	}
}

// TestDispatcherSeveralEvents: a trigger with several events starts on any
// of them (each with its own when), and a running journey whose wait
// listens for several events is signalled each of them.
func TestDispatcherSeveralEvents(t *testing.T) {
	reg := engine.NewRegistry()
	milk := compile(t, "milk", "trigger:\n  events: [subscription_started, { event: payment_failed, when: 'event.amount > 0' }]",
		"  - wait: { for: { payment_succeeded: [], subscription_cancelled: [] }, timeout: 2d }\n")
	reg.Add(milk)
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	active := map[string][]ActiveEnrollment{"c1": {{Playbook: "milk", Version: milk.Version}}}
	for _, tt := range []struct {
		customer, event string
		amount          float64
		enrolls         []string
		signals         []string
	}{
		{"c2", "subscription_started", 0, []string{"milk/c2/x"}, nil},
		{"c2", "payment_failed", 12, []string{"milk/c2/x"}, nil},
		{"c2", "payment_failed", 0, nil, nil}, // its when is false
		{"c1", "payment_succeeded", 12, nil, []string{"milk/c1/x"}},
		{"c1", "subscription_cancelled", 0, nil, []string{"milk/c1/x"}},
		{"c1", "delivery_made", 0, nil, nil},
	} {
		t.Run(tt.customer+" "+tt.event, func(t *testing.T) {
			j := &fakeJourneys{running: map[string]bool{"milk/c1": true}}
			d := NewEventDispatcher(reg, j, enrollmentsOf(active), slog.New(slog.NewTextHandler(io.Discard, nil)))
			ev := rules.Event{ID: "x", Name: tt.event, Amount: tt.amount, Time: at}
			if err := d.Dispatch(context.Background(), rules.Customer{ID: tt.customer}, ev); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(j.enrolls, tt.enrolls) || !slices.Equal(j.signals, tt.signals) {
				t.Errorf("enrolls %v signals %v, want %v %v", j.enrolls, j.signals, tt.enrolls, tt.signals)
			}
		})
	}
}

// TestDispatchToReadsCustomerOnlyForTriggers: the profile is read only
// when a deployed trigger names the event, once however many do, and a
// failed read fails the dispatch; the running listeners are signalled
// either way.
func TestDispatchToReadsCustomerOnlyForTriggers(t *testing.T) {
	reg := engine.NewRegistry()
	reg.Add(compile(t, "big", "trigger: { event: purchase, when: 'event.amount >= 100 && customer.tier != \"gold\"' }", ""))
	reg.Add(compile(t, "any", "trigger: { event: purchase }", ""))
	quiet := compile(t, "quiet", "trigger: { manual: true }\nexit_when: customer.attrs.stop == true", "")
	reg.Add(quiet)
	running := map[string][]ActiveEnrollment{"c1": {{Playbook: "quiet", Version: quiet.Version}}}
	for _, tt := range []struct {
		event   string
		loadErr error
		loads   int
		enrolls []string
		signals []string
		fails   bool
	}{
		{event: "page", loads: 0, signals: []string{"quiet/c1/e1"}},
		{event: "purchase", loads: 1, enrolls: []string{"any/c1/e1", "big/c1/e1"}, signals: []string{"quiet/c1/e1"}},
		{event: "purchase", loadErr: fmt.Errorf("load: %w", ErrUnavailable), loads: 1, fails: true},
		{event: "page", loadErr: fmt.Errorf("load: %w", ErrUnavailable), loads: 0, signals: []string{"quiet/c1/e1"}},
	} {
		t.Run(fmt.Sprintf("%s %v", tt.event, tt.loadErr), func(t *testing.T) {
			j := &fakeJourneys{}
			d := NewEventDispatcher(reg, j, enrollmentsOf(running), slog.New(slog.NewTextHandler(io.Discard, nil)))
			loads := 0
			load := func(context.Context) (rules.Customer, error) {
				loads++
				return rules.Customer{ID: "c1", Tier: "silver"}, tt.loadErr
			}
			err := d.DispatchTo(context.Background(), Recipient{ID: "c1", Load: load}, rules.Event{ID: "e1", Name: tt.event, Amount: 150})
			if tt.fails != (err != nil) || (err != nil && !IsUnavailable(err)) {
				t.Fatalf("error %v, want failure %v (unavailable)", err, tt.fails)
			}
			slices.Sort(j.enrolls)
			slices.Sort(j.signals)
			if loads != tt.loads || !slices.Equal(j.enrolls, tt.enrolls) || !slices.Equal(j.signals, tt.signals) {
				t.Errorf("loads %d enrolls %v signals %v, want %d %v %v", loads, j.enrolls, j.signals, tt.loads, tt.enrolls, tt.signals)
			}
		})
	}
}

// countingEnrollments counts its reads.
type countingEnrollments struct {
	*fakeEnrollments
	reads int
}

func (c *countingEnrollments) ActiveEnrollments(ctx context.Context, id string) ([]ActiveEnrollment, error) {
	c.reads++
	return c.fakeEnrollments.ActiveEnrollments(ctx, id)
}

// TestDispatchToRunningReadBefore: active enrollments the caller read
// (Ingest, in the call's transaction) are used instead of a second read;
// an empty list means none, nil means not read.
func TestDispatchToRunningReadBefore(t *testing.T) {
	reg := engine.NewRegistry()
	quiet := compile(t, "quiet", "trigger: { manual: true }\nexit_when: customer.attrs.stop == true", "")
	reg.Add(quiet)
	noLoad := func(context.Context) (rules.Customer, error) { t.Fatal("profile read"); return rules.Customer{}, nil }
	for _, tt := range []struct {
		name    string
		running []ActiveEnrollment
		reads   int
		signals []string
	}{
		{"not read", nil, 1, []string{"retired/c1/e1"}},
		{"read, none", []ActiveEnrollment{}, 0, nil},
		{"read, one", []ActiveEnrollment{{Playbook: "retired", Version: "abc"}}, 0, []string{"retired/c1/e1"}},
		{"read, a listener", []ActiveEnrollment{{Playbook: "quiet", Version: quiet.Version}}, 0, []string{"quiet/c1/e1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j := &fakeJourneys{}
			en := &countingEnrollments{fakeEnrollments: enrollmentsOf(map[string][]ActiveEnrollment{"c1": {{Playbook: "retired", Version: "abc"}}})}
			d := NewEventDispatcher(reg, j, en, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err := d.DispatchTo(context.Background(), Recipient{ID: "c1", Load: noLoad, Running: tt.running}, rules.Event{ID: "e1", Name: "page"}); err != nil {
				t.Fatal(err)
			}
			slices.Sort(j.signals)
			if en.reads != tt.reads || !slices.Equal(j.signals, tt.signals) {
				t.Errorf("reads %d signals %v, want %d %v", en.reads, j.signals, tt.reads, tt.signals)
			}
		})
	}
}

// A signal that finds no journey is dropped, unless only a start in
// flight vouches for the journey (Starting): its workflow may not exist
// yet, and the dispatch fails as unavailable so that the event is sent
// again. One playbook's missing journey does not keep the others from
// their signal.
func TestDispatcherRetriesAJourneyStillStarting(t *testing.T) {
	reg := engine.NewRegistry()
	welcome := compile(t, "welcome", "trigger: { event: signup }", "  - wait: { event: profile_completed, timeout: 3d }\n")
	quiet := compile(t, "quiet", "trigger: { manual: true }\nexit_when: customer.attrs.stop == true", "")
	reg.Add(welcome)
	reg.Add(quiet)
	for _, tt := range []struct {
		name    string
		running []ActiveEnrollment
		fails   bool
	}{
		{"start in flight", []ActiveEnrollment{{Playbook: "welcome", Version: welcome.Version, Starting: true}}, true},
		{"start noted long ago", []ActiveEnrollment{{Playbook: "welcome", Version: welcome.Version}}, false},
		{"recorded and noted again", []ActiveEnrollment{{Playbook: "welcome", Version: welcome.Version},
			{Playbook: "welcome", Version: welcome.Version, Starting: true}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j := &fakeJourneys{missing: map[string]bool{"welcome/c1": true}}
			d := NewEventDispatcher(reg, j, enrollmentsOf(nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
			running := append([]ActiveEnrollment{{Playbook: "quiet", Version: quiet.Version}}, tt.running...)
			err := d.DispatchTo(context.Background(), Recipient{ID: "c1", Running: running}, rules.Event{ID: "e1", Name: "profile_completed"})
			if tt.fails != (err != nil) || (err != nil && !IsUnavailable(err)) {
				t.Errorf("error %v, want failure %v (unavailable)", err, tt.fails)
			}
			if want := []string{"quiet/c1/e1"}; !slices.Equal(j.signals, want) {
				t.Errorf("signals %v, want %v", j.signals, want)
			}
		})
	}
}
