package scan

import (
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

// Store is what a scan reads: the active playbook version, customers of
// one partition in id order after a cursor, and the enrollment history the
// re-entry pre-filter needs.
// *store.Store implements it.
//
// CustomersAfter must return with its rows closed (its connection back in
// the pool): a scan then asks for EntryHistories, and holding one pooled
// connection while waiting for another deadlocks as soon as as many scans
// run at once as the pool has connections.
type Store interface {
	ActivePlaybook(ctx context.Context, name string) (store.DeployedPlaybook, bool, error)
	CustomersAfter(ctx context.Context, afterID string, limit int, part store.Partition) ([]rules.Customer, error)
	EntryHistories(ctx context.Context, playbook string, ids []string) (map[string]store.EntryHistory, error)
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
	Limit    int       `json:"limit"`    // customers per keyset page (query)
	// Pages is how many keyset pages this call reads at most (default
	// 1): reading several per activity spreads Temporal's per-activity
	// cost over thousands of customers, while memory stays one page.
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

// flushAt bounds how many admitted matches wait before they are started
// (and the progress is recorded in a heartbeat); the rest are started at
// the end of the call. Batching starts across pages means a sparse segment
// pays one round of concurrent starts per call, not one start per page.
const flushAt = 500

// Counts add up over the pages of a scan.
type Counts struct {
	Pages   int `json:"pages"`
	Scanned int `json:"scanned"` // customers evaluated
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

// ScanPage reads up to r.Pages keyset pages of customers after the
// cursor, selects those the playbook's trigger matches at r.Now, drops
// those the re-entry policy refuses, and starts the rest, at most
// Concurrency at a time (over all the pages the worker runs). Progress (cursor and counts) is recorded in a
// heartbeat each time the pending starts are done, so a retried call
// resumes there; customers read after it are read again, and starting
// them again is harmless (see Admissible). It fails only when the
// database or Temporal fails.
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
// It reads up to Pages keyset pages, one query each, and evaluates each
// page once its query is over: no connection is held while the re-entry
// pre-filter acquires another (see Store), and memory stays one page plus
// the admitted ids not yet started.
func (a *Activities) scanPages(ctx context.Context, plan *engine.Plan, r PageRequest, res *PageResult) error {
	var (
		pending []string // admitted, not yet started
		counts  Counts   // of the pages read since the last flush
		cursor  = res.NextID
	)
	// alive records a heartbeat with the progress as of the last flush:
	// a sign of life that resumes where the last flush left off.
	alive := func() {
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, *res)
		}
	}
	flush := func() error {
		if err := a.startAll(ctx, plan, r.Now, pending, &counts, alive); err != nil {
			return err
		}
		res.Counts, res.NextID = res.Counts.Add(counts), cursor
		pending, counts = nil, Counts{}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, *res)
		}
		return nil
	}
	for range max(r.Pages, 1) {
		page, err := a.Store.CustomersAfter(ctx, cursor, r.Limit, r.Partition)
		if err != nil {
			return err
		}
		if len(page) > 0 {
			counts.Pages++
			counts.Scanned += len(page)
			cursor = page[len(page)-1].ID
			ids, err := a.selectCustomers(ctx, plan, r.Now, page, &counts)
			if err != nil {
				return err
			}
			pending = append(pending, ids...)
		}
		if len(page) < r.Limit {
			res.Done = true // a short page: no customers after cursor
			break
		}
		if len(pending) >= flushAt {
			if err := flush(); err != nil {
				return err
			}
		} else {
			alive()
		}
	}
	return flush()
}

// selectCustomers returns the ids of the customers that match and that
// the re-entry policy admits.
func (a *Activities) selectCustomers(ctx context.Context, plan *engine.Plan, now time.Time, customers []rules.Customer, n *Counts) ([]string, error) {
	m, err := NewMatcher(plan, now)
	if err != nil {
		return nil, err
	}
	var matched []string
	for _, c := range customers {
		ok, err := m.Match(c)
		if err != nil {
			activity.GetLogger(ctx).Warn("scan: rule failed", "error", err)
			n.Failed++
			continue
		}
		if ok {
			matched = append(matched, c.ID)
		}
	}
	n.Matched += len(matched)
	if len(matched) == 0 {
		return nil, nil
	}
	hist, err := a.Store.EntryHistories(ctx, plan.Name, matched)
	if err != nil {
		return nil, err
	}
	admitted := matched[:0]
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
// starting a flush's 500 enrollments can take longer than the heartbeat
// timeout when Temporal is slow, and a call that timed out would be
// retried while its starts went on. The first error is returned after
// every started call has finished.
func (a *Activities) startAll(ctx context.Context, plan *engine.Plan, now time.Time, ids []string, n *Counts, alive func()) error {
	sem := a.startSlots()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func(id string) {
			defer func() { <-sem; wg.Done() }()
			started, err := a.Start(ctx, plan, id, TriggerEvent(plan, id, now))
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
			}
		}(id)
	}
	wg.Wait()
	return firstErr
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
