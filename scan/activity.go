package scan

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"

	"github.com/rapport-crm/rapport/engine"
	"github.com/rapport-crm/rapport/pushdown"
	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/workflows"
)

// Defaults of a scan.
const (
	// DefaultPageSize is how many customers one page activity reads.
	DefaultPageSize = 500
	// DefaultConcurrency bounds the enrollments one worker's scans start
	// at once, over all the pages it runs together: a slow Temporal
	// answers a start only after those ahead of it, and a start that waits
	// longer than the client's 10-second deadline fails its page call.
	// (Per page, 100 starts times the pages of four partitions on one
	// worker timed starts out on a loaded dev server doing 17 a second.)
	DefaultConcurrency = 64
	// DefaultPartitions is how many partitions a scan splits into when
	// RAPPORT_SCAN_PARTITIONS is not set. See PartitionsFromEnv.
	DefaultPartitions = 4
	// startNoteChunk is how many starts a page notes in one statement,
	// just before the first of them takes its slot (see startAll).
	startNoteChunk = 16
)

// PartitionsFromEnv reads RAPPORT_SCAN_PARTITIONS, how many partitions
// (child workflows) each scan splits its customers into: a whole number
// from 1 (one workflow pages through everyone) to store.MaxPartitions;
// DefaultPartitions when unset.
func PartitionsFromEnv() (int, error) {
	v := os.Getenv("RAPPORT_SCAN_PARTITIONS")
	if v == "" {
		return DefaultPartitions, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > store.MaxPartitions {
		return 0, fmt.Errorf("RAPPORT_SCAN_PARTITIONS %q: want a whole number from 1 to %d", v, store.MaxPartitions)
	}
	return n, nil
}

// Store is what a scan reads: the active playbook version, the
// candidates of a trigger in id order after a cursor, the time zones the
// candidates of a date trigger are selected by, and the enrollment
// history the re-entry pre-filter needs. *store.Store implements it.
//
// EachCandidate holds a connection while it streams; the scan does no
// database work in its callback and asks for EntryHistories only once the
// query is over: holding one pooled connection while waiting for another
// deadlocks as soon as as many scans run at once as the pool has
// connections.
type Store interface {
	ActivePlaybook(ctx context.Context, name string) (store.DeployedPlaybook, bool, error)
	EachCandidate(ctx context.Context, q store.CandidateQuery, fn func(rules.Customer) error) error
	TimeZones(ctx context.Context, field string) ([]string, error)
	EntryHistories(ctx context.Context, playbook string, ids []string) (map[string]store.EntryHistory, error)
	// NoteStarts and DropStartNotes keep the notes of the starts a page
	// asks for (store.Store.NoteStarts): the event API signals a journey
	// from its note until the journey records its enrollment.
	NoteStarts(ctx context.Context, starts ...store.JourneyStart) error
	DropStartNotes(ctx context.Context, starts ...store.JourneyStart) error
}

// StartFunc starts the enrollment of customerID in plan; started is false
// when one was already running.
type StartFunc func(ctx context.Context, plan *engine.Plan, customerID string, trigger rules.Event) (started bool, err error)

// TemporalStarter starts enrollments with workflows.Enroll on c.
func TemporalStarter(c client.Client) StartFunc {
	return func(ctx context.Context, plan *engine.Plan, customerID string, trigger rules.Event) (bool, error) {
		_, started, err := workflows.Enroll(ctx, c, plan, customerID, trigger)
		return started, err
	}
}

// Activities are the scan's activities; register the value with a worker.
type Activities struct {
	Store Store
	Start StartFunc
	// Concurrency bounds the starts in flight over every page these
	// Activities run at once; DefaultConcurrency when 0.
	Concurrency int
	// OnLag, when set, receives how late the first page of each scan ran
	// behind its scheduled time (the worker exports it as a metric).
	OnLag func(playbook string, lag time.Duration)
	// OnPage, when set, receives each page's counts.
	OnPage func(playbook string, r PageResult)
	// Partitions is how many partitions a scan started without a count
	// of its own splits into (RAPPORT_SCAN_PARTITIONS, see
	// PartitionsFromEnv); DefaultPartitions when 0.
	Partitions int

	slotsOnce sync.Once
	slots     chan struct{} // Concurrency tokens shared by every page
}

// startSlots is the semaphore every page's starts share.
func (a *Activities) startSlots() chan struct{} {
	a.slotsOnce.Do(func() {
		n := a.Concurrency
		if n <= 0 {
			n = DefaultConcurrency
		}
		a.slots = make(chan struct{}, n)
	})
	return a.slots
}

// PageRequest asks for the next pages of a scan.
type PageRequest struct {
	Playbook string    `json:"playbook"`
	Now      time.Time `json:"now"`      // the scan time rules see
	AfterID  string    `json:"after_id"` // keyset cursor: last id already scanned
	Limit    int       `json:"limit"`    // candidates per page
	// Pages is how many pages of Limit candidates this call reads at most
	// (default 1), in one streamed query: reading many per activity
	// spreads Temporal's per-activity cost, and the query's, over
	// thousands of customers, while memory holds only the ids of matches.
	Pages       int       `json:"pages,omitempty"`
	First       bool      `json:"first,omitempty"` // first call of the scan: report the lag
	ScheduledAt time.Time `json:"scheduled_at,omitzero"`
	// Partition is the slice of the customers this call reads (see
	// store.Partition); the zero value, as in scans started before
	// partitions existed, is every customer.
	Partition store.Partition `json:"partition,omitzero"`
}

// PageResult is what one call did.
type PageResult struct {
	Version  string `json:"version,omitempty"`  // the playbook version scanned
	Inactive bool   `json:"inactive,omitempty"` // the playbook is not deployed: nothing scanned
	NextID   string `json:"next_id"`            // cursor for the next call
	Done     bool   `json:"done"`               // no customers after NextID
	Counts
}

// flushAt bounds how many matches are admitted and started at a time
// (and the progress then recorded in a heartbeat). Batching starts across
// pages means a sparse segment pays one round of concurrent starts per
// call, not one start per page.
const flushAt = 500

// Counts add up over the pages of a scan.
type Counts struct {
	Pages   int `json:"pages"`   // pages of PageRequest.Limit candidates read
	Scanned int `json:"scanned"` // candidates read and evaluated (the SQL predicate's selection)
	Matched int `json:"matched"` // customers the trigger selected
	Skipped int `json:"skipped"` // matched but refused by the re-entry policy pre-filter
	Started int `json:"started"` // enrollments started
	Running int `json:"running"` // matched but an enrollment was already running
	Failed  int `json:"failed"`  // where rule errors (the page goes on)
}

// Add returns c + o.
func (c Counts) Add(o Counts) Counts {
	return Counts{c.Pages + o.Pages, c.Scanned + o.Scanned, c.Matched + o.Matched, c.Skipped + o.Skipped,
		c.Started + o.Started, c.Running + o.Running, c.Failed + o.Failed}
}

// ScanPartitions is the local activity through which a scan learns how
// many partitions to split into: the worker's setting, recorded in the
// scan's history, so a replay does not depend on the environment of the
// worker that replays it.
func (a *Activities) ScanPartitions(context.Context) (int, error) {
	if a.Partitions <= 0 {
		return DefaultPartitions, nil
	}
	return min(a.Partitions, store.MaxPartitions), nil
}

// ScanPage reads up to r.Pages pages of r.Limit candidates after the
// cursor — the customers the trigger's SQL predicate (package pushdown)
// selects —, selects those the playbook's trigger matches at r.Now (the
// Go check decides what the SQL could not; an exact SQL decides alone), drops
// those the re-entry policy refuses, and starts the rest, at most
// Concurrency at a time. Progress (cursor and counts) is recorded in a
// heartbeat after each batch of starts, so a retried call resumes there;
// customers read after it are read again, and starting them again is
// harmless (see Admissible). It fails only when the database or Temporal
// fails.
func (a *Activities) ScanPage(ctx context.Context, r PageRequest) (PageResult, error) {
	if r.First && !r.ScheduledAt.IsZero() && a.OnLag != nil {
		a.OnLag(r.Playbook, time.Since(r.ScheduledAt))
	}
	dp, ok, err := a.Store.ActivePlaybook(ctx, r.Playbook)
	if err != nil {
		return PageResult{}, err
	}
	if !ok {
		return PageResult{Inactive: true, Done: true, NextID: r.AfterID}, nil
	}
	plan, err := engine.CompileCached(dp.Source)
	if err != nil {
		return PageResult{}, fmt.Errorf("deployed playbook %s@%s does not compile: %w", dp.Name, dp.Version, err)
	}
	res := PageResult{Version: plan.Version, NextID: r.AfterID}
	if activity.IsActivity(ctx) && activity.HasHeartbeatDetails(ctx) {
		var resumed PageResult
		if err := activity.GetHeartbeatDetails(ctx, &resumed); err == nil && resumed.NextID >= r.AfterID {
			res = resumed
		}
	}
	if err := a.scanPages(ctx, plan, r, &res); err != nil {
		return PageResult{}, err
	}
	if a.OnPage != nil {
		a.OnPage(r.Playbook, res)
	}
	return res, nil
}

// scanPages does the work of ScanPage from res.NextID on, adding to res.
// One query streams the call's candidates, each evaluated as it arrives
// (unless the SQL is exact: then every candidate matches) and only the ids
// of the matches kept (see Store); then the matches are admitted and
// started in batches of flushAt, each batch moving the cursor to its last
// match.
func (a *Activities) scanPages(ctx context.Context, plan *engine.Plan, r PageRequest, res *PageResult) error {
	at := SelectionTime(r.Now)
	m, err := NewMatcher(plan, at)
	if err != nil {
		return err
	}
	where, err := a.predicate(ctx, plan, at)
	if err != nil {
		return err
	}
	limit := max(r.Pages, 1) * r.Limit
	var (
		matched   []string // in id order
		readUntil []int    // candidates read up to and including each match
		read      int
		failed    int
		last      = res.NextID
	)
	q := store.CandidateQuery{Where: where, Now: at, AfterID: res.NextID, Limit: limit, Partition: r.Partition}
	err = a.Store.EachCandidate(ctx, q, func(c rules.Customer) error {
		read++
		last = c.ID
		ok, err := true, error(nil)
		if !where.Exact {
			ok, err = m.Match(c)
		}
		switch {
		case err != nil:
			activity.GetLogger(ctx).Warn("scan: rule failed", "error", err)
			failed++
		case ok:
			matched = append(matched, c.ID)
			readUntil = append(readUntil, read)
		}
		return nil
	})
	if err != nil {
		return err
	}
	res.Done = read < limit // a short read: no candidates after last
	counted := 0            // candidates already added to res
	for from := 0; from < len(matched); from += flushAt {
		to := min(from+flushAt, len(matched))
		counts := Counts{Scanned: readUntil[to-1] - counted, Matched: to - from}
		counted = readUntil[to-1]
		ids, err := a.admit(ctx, plan, r.Now, matched[from:to], &counts)
		if err != nil {
			return err
		}
		// alive records a heartbeat with the progress as of the last
		// batch: a sign of life that resumes where that batch left off.
		alive := func() {
			if activity.IsActivity(ctx) {
				activity.RecordHeartbeat(ctx, *res)
			}
		}
		if err := a.startAll(ctx, plan, r.Now, ids, &counts, alive); err != nil {
			return err
		}
		res.Counts, res.NextID = res.Counts.Add(counts), matched[to-1]
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, *res)
		}
	}
	pages := (read + r.Limit - 1) / max(r.Limit, 1)
	res.Counts = res.Counts.Add(Counts{Pages: pages, Scanned: read - counted, Failed: failed})
	res.NextID = last
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, *res)
	}
	return nil
}

// SelectionTime is the time a scan at now selects its customers at: now
// to the microsecond, PostgreSQL's precision, so that the SQL and the Go
// check count days and hours alike (Temporal's times have nanoseconds).
// The journeys started still see the scan time itself.
func SelectionTime(now time.Time) time.Time { return now.Truncate(time.Microsecond) }

// Selection is the SQL selection of a scanned playbook's trigger.
func Selection(plan *engine.Plan) *pushdown.Selection {
	return pushdown.New(plan.Trigger, DateWindow)
}

// predicate binds the playbook's selection for a scan at now, reading the
// time zones it needs.
func (a *Activities) predicate(ctx context.Context, plan *engine.Plan, now time.Time) (pushdown.Predicate, error) {
	sel := Selection(plan)
	var z pushdown.Zones
	birthday, signup := sel.NeedsZones()
	var err error
	if birthday {
		if z.Birthday, err = a.Store.TimeZones(ctx, "birthday"); err != nil {
			return pushdown.Predicate{}, err
		}
	}
	if signup {
		if z.Signup, err = a.Store.TimeZones(ctx, "signup_at"); err != nil {
			return pushdown.Predicate{}, err
		}
	}
	return sel.Bind(now, z), nil
}

// admit returns the ids the re-entry policy admits, in order, counting the
// others as skipped.
func (a *Activities) admit(ctx context.Context, plan *engine.Plan, now time.Time, matched []string, n *Counts) ([]string, error) {
	hist, err := a.Store.EntryHistories(ctx, plan.Name, matched)
	if err != nil {
		return nil, err
	}
	admitted := make([]string, 0, len(matched))
	for _, id := range matched {
		if Admissible(plan.Entry, hist[id], now) {
			admitted = append(admitted, id)
		} else {
			n.Skipped++
		}
	}
	return admitted, nil
}

// startAll starts an enrollment per id, holding one of the worker's
// Concurrency start slots for each, and calls alive after each start:
// starting a batch's 500 enrollments can take longer than the heartbeat
// timeout when Temporal is slow, and a call that timed out would be
// retried while its starts went on. The starts are noted before they are
// asked for (Store.NoteStarts), startNoteChunk at a time once the first
// of them holds its slot, and the notes of those that found the journey
// running are dropped at the end. The first error is returned after every
// started call has finished.
//
// Noting the whole page at once (up to 500) let a note grow old before
// its start when Temporal was slow, and the dispatcher retries a signal
// that finds no workflow only while the note is younger than
// store.StartGrace. Now a note waits only for the slots the rest of its
// chunk takes, which the worker's other pages compete for: about
// startNoteChunk times the pages starting at once.
func (a *Activities) startAll(ctx context.Context, plan *engine.Plan, now time.Time, ids []string, n *Counts, alive func()) error {
	triggers := make([]rules.Event, len(ids))
	notes := make([]store.JourneyStart, len(ids))
	for i, id := range ids {
		triggers[i] = TriggerEvent(plan, id, now)
		notes[i] = store.JourneyStart{CustomerID: id, Playbook: plan.Name, Version: plan.Version, TriggerID: triggers[i].ID}
	}
	sem := a.startSlots()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		running  []store.JourneyStart
	)
	chunk := min(startNoteChunk, cap(sem))
	for i, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		if i%chunk == 0 {
			if err := a.Store.NoteStarts(ctx, notes[i:min(i+chunk, len(notes))]...); err != nil {
				<-sem
				mu.Lock()
				firstErr = cmp.Or(firstErr, err)
				mu.Unlock()
				break
			}
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			started, err := a.Start(ctx, plan, id, triggers[i])
			mu.Lock()
			defer mu.Unlock()
			alive()
			switch {
			case err != nil && firstErr == nil:
				firstErr = err
			case err != nil:
			case started:
				n.Started++
			default:
				n.Running++
				running = append(running, notes[i])
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return a.Store.DropStartNotes(ctx, running...)
}

// TriggerEvent is the event a scanned enrollment starts with: named after
// the trigger (segment, birthday, signup_anniversary) at the scan time,
// with an ID that is the same for the same playbook, customer and scan.
func TriggerEvent(plan *engine.Plan, customerID string, now time.Time) rules.Event {
	name := "segment"
	if plan.Trigger.Kind == engine.TriggerDate {
		name = plan.Trigger.Date
	}
	return rules.Event{
		ID:   "scan/" + plan.Name + "/" + strconv.FormatInt(now.Unix(), 10) + "/" + customerID,
		Name: name,
		Time: now,
	}
}
