package workflows

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.temporal.io/sdk/workflow"
)

// Editions spare new journeys the cost of versioning changes that every
// journey a release starts follows anyway.
//
// workflow.GetVersion records a marker, and the Go SDK an upsert of the
// TemporalChangeVersion search attribute, in the history of each journey
// that reaches it: two history events and a visibility write per change,
// in journeys that could never have taken the old path. A journey's
// edition, fixed in its input when it starts (Input, EditionEnv), says
// which changes it follows from its first task on; version answers those
// from the edition and asks GetVersion only for the others and for
// journeys of edition 0, whose recorded histories hold the markers.
//
// The SDK leaves version markers and their upserts out when it matches a
// replay against the history (its skipDeterministicCheckForEvent), so a
// journey started with an edition by a worker that ignored it and asked
// GetVersion (a worker of a release that knows the six changes below at
// these versions but not editions) replays here too.
//
// The other way round does not hold: such a worker replays an edition-1
// history without its markers, takes every change as off
// (workflow.DefaultVersion) and fails the task, or, where the commands
// happen to agree, goes on the old way. So a release that knows editions
// starts journeys without one until told otherwise (EditionEnv): set it
// once no worker of an earlier release serves the task queue.
//
// A change in an edition keeps its version for good: a later change to
// the same behaviour takes a new change ID, asked with GetVersion until a
// new edition includes it.
const (
	// Edition1 follows every change below at its version, and its
	// admission (RecordStart) reads the customer's profile in the same
	// transaction instead of a LoadCustomer of its own: one local
	// activity, one marker and one round trip to PostgreSQL fewer.
	Edition1 = 1
	// LatestEdition is the newest edition this release runs.
	LatestEdition = Edition1
)

// EditionEnv names the setting of the edition the journeys a process
// starts carry: 0 (none: every journey asks GetVersion, as before
// editions; the default) or 1. Input reads it.
const EditionEnv = "RAPPORT_JOURNEY_EDITION"

// StartEdition reads EditionEnv: the edition Input gives the journeys it
// starts, 0 when unset.
func StartEdition() (int, error) {
	v := strings.TrimSpace(os.Getenv(EditionEnv))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > LatestEdition {
		return 0, fmt.Errorf("%s %q: want a whole number from 0 (no edition) to %d", EditionEnv, v, LatestEdition)
	}
	return n, nil
}

// edition1 are the changes an edition-1 journey follows, at their versions.
var edition1 = map[string]workflow.Version{
	changeHoldoutReceivesNothing: 1,
	changeBoundedDeferrals:       boundedDeferrals,
	changePointsChecks:           1,
	changeMaskedRecipient:        1,
	changeCalendarWaits:          1,
	changeFreshProfileOnEvent:    1,
}

// version is the version of change this run follows, up to max: the
// edition's when the edition includes the change, else GetVersion's.
func (j *journey) version(change string, max workflow.Version) workflow.Version {
	if v, ok := edition1[change]; ok && j.in.Edition >= Edition1 {
		return v
	}
	return workflow.GetVersion(j.ctx, change, workflow.DefaultVersion, max)
}
