package delivery

import "github.com/rapport-crm/rapport/activities"

// Backend is what a journey's activities need from storage besides
// delivery: every activity but SendMessage, and the outbox SendMessage
// records through. store.Store implements it.
type Backend interface {
	activities.CustomerLoader
	activities.Recorder
	activities.ProfileUpdater
	activities.PointsLedger
	activities.CouponIssuer
	activities.TaskCreator
	Outbox
}

// Activities are the activities a worker registers: b's, with messages
// sent by a Sender over b's outbox with cfg's channels and link secrets.
func Activities(b Backend, cfg Config) activities.All {
	return journeyActivities{Backend: b, Sender: Sender{Outbox: b, Config: cfg}}
}

// journeyActivities joins a Backend and a Sender; SendMessage is the
// Sender's alone (Backend has none), every other activity the Backend's.
type journeyActivities struct {
	Backend
	Sender
}
