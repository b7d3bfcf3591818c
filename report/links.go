package report

import (
	"net/url"
	"strings"
)

// DefaultTemporalUI is the Web UI of a local dev server
// (temporal server start-dev).
const DefaultTemporalUI = "http://localhost:8233"

// TemporalRunURL links to a journey in the Temporal Web UI:
// <base>/namespaces/<ns>/workflows/<workflowID>, plus /<runID>/history when
// runID is given (an enrollment's ID is its first run's ID, which the UI
// follows through continue-as-new). Workflow IDs contain slashes
// (rapport/<playbook>/<customer>), so each part is path-escaped.
func TemporalRunURL(base, namespace, workflowID, runID string) string {
	if base == "" {
		base = DefaultTemporalUI
	}
	u := strings.TrimRight(base, "/") + "/namespaces/" + url.PathEscape(namespace) + "/workflows/" + url.PathEscape(workflowID)
	if runID != "" {
		u += "/" + url.PathEscape(runID) + "/history"
	}
	return u
}

// IsRunID says whether an enrollment ID is a Temporal run ID (a UUID), as
// on a real server; the SDK test environment and the simulator name
// enrollments "<workflow ID>@<start time>" instead.
func IsRunID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, r := range id {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F'):
			return false
		}
	}
	return true
}
