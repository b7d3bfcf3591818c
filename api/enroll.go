package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/rapport-crm/rapport/rules"
)

var enrollFields = fieldSet([]string{"playbook", "userId", "messageId", "properties"})

// handleEnroll serves POST /v1/enroll {playbook, userId}: it starts a
// manual enrollment of a known customer in a `manual: true` playbook. The
// trigger event the journey sees is named "manual" and carries the
// optional properties. Starting a customer who is already running the
// playbook starts nothing (started: false).
func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) {
	if s.opts.Enroller == nil {
		writeError(w, http.StatusNotImplemented, "manual enrollment is not enabled on this server")
		return
	}
	body, ok := readBody(w, r, MaxCallBytes)
	if !ok {
		return
	}
	playbook, customerID, ev, err := parseEnroll(body, s.opts.Now().UTC())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), applyTimeout)
	defer cancel()
	c, err := s.opts.Store.Customer(ctx, customerID)
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "userId: no customer "+customerID+"; identify them first")
		return
	}
	if err != nil {
		s.fail(w, "store", -1, 1, err)
		return
	}
	res, err := s.opts.Enroller.Enroll(ctx, playbook, c, ev)
	switch {
	case errors.Is(err, ErrUnknownPlaybook):
		writeError(w, http.StatusNotFound, "playbook: no deployed playbook "+playbook)
	case errors.Is(err, ErrNotManual):
		writeError(w, http.StatusBadRequest, "playbook: "+playbook+" is not a manual playbook (its trigger must be manual: true)")
	case err != nil:
		s.fail(w, "enroll", -1, 1, err)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// parseEnroll validates an enroll body and builds the trigger event; its
// ID is the messageId when given, so a retried start is recognisable.
func parseEnroll(body []byte, now time.Time) (playbook, customerID string, ev rules.Event, err error) {
	obj, err := decodeObject(body, enrollFields, "")
	if err != nil {
		return "", "", ev, err
	}
	if playbook, err = stringField(obj, "playbook", ""); err != nil {
		return "", "", ev, err
	}
	if !playbookNameRe.MatchString(playbook) {
		return "", "", ev, fieldErr("playbook", "required: a playbook name like winback")
	}
	if customerID, err = stringField(obj, "userId", ""); err != nil {
		return "", "", ev, err
	}
	if err := ValidCustomerID(customerID); err != nil {
		return "", "", ev, fieldErr("userId", "%v", err)
	}
	ev = rules.Event{Name: "manual", Time: now}
	if ev.ID, err = stringField(obj, "messageId", ""); err != nil {
		return "", "", ev, err
	}
	if err := validToken(ev.ID, 200); err != nil {
		return "", "", ev, fieldErr("messageId", "%v", err)
	}
	ev.Props, err = objectField(obj, "properties", "")
	return playbook, customerID, ev, err
}

var playbookNameRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
