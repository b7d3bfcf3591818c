package workflows

import (
	"encoding/base64"

	"github.com/rapport-crm/rapport/engine"
)

// sourceBytes is the playbook source of the enrollment. Until commit
// 8656a6c Source was a []byte, which the JSON payload converter writes as
// base64, so journeys started then carry base64 where text is expected. The
// version (the source's hash) tells the two apart: the text is taken when
// it hashes to the version, the decoded base64 when that does.
func (in JourneyInput) sourceBytes() []byte {
	text := []byte(in.Source)
	if engine.VersionOf(text) == in.Version {
		return text
	}
	if raw, err := base64.StdEncoding.DecodeString(in.Source); err == nil && engine.VersionOf(raw) == in.Version {
		return raw
	}
	return text
}
