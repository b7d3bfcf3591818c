package workflows

import (
	"testing"

	"github.com/rapport-crm/rapport/workflows/historytest"
)

// The one manifest at the top of testdata/histories lists every file
// recorded up to 2026-11-25, by paths relative to that folder; each
// release folder recorded since has its own, written once with the
// folder, by paths relative to the folder (historytest.ManifestName).

// manifestPins are the sha256 of every manifest, by folder ("" for the top
// one): deleting a history together with its manifest line, or a manifest
// whole, fails. TestRecordHistories prints the line to add here.
var manifestPins = map[string]string{
	"": "e9f3e1f0ade9035f0f37155b887f1bc7cf93ecc9b3739c1ae490707410d4a81d",
	// Goals that measure (RecordConversion), waits for several events,
	// triggers on several events; milk_delivery and car_care.
	"2026-11-26": "d8b7ac66a51e64bc9faf59a4bc5523c867a7329c236c18f42987387d6099e0b5",
	// Engagement waits (message_opened of a send, message()), the samples
	// on the e-commerce spec names, welcome_resend.
	"2026-11-26-engagement": "b43feb4295010be22af602dbb1d86f830105c9ec8b131ebf509a75c1915fad29",
	// Masked recipients in send summaries (GetVersion masked-recipient),
	// after the payload codec; recorded on a loaded machine, where the
	// outage scenario's enrollment timed out and was not recorded.
	"2026-11-26-privacy": "c2cb5b35149e978ddd6a370500d60b8cc4be55aa92d05be5433ff2efae812d06",
	// Journeys started eagerly (EnableEagerStart: the first workflow task
	// came back with the start), every sample and scenario.
	"2026-11-26-eager": "c5902fb1144ec01304732bd58ea1b1d78b99c6c516c9028b1f21cc9f92b77956",
	// Editions: journeys of edition 1 ask GetVersion nothing and read the
	// customer with their admission; RapportStep set at the start.
	"2026-11-26-edition1": "12f183babb126c99261f0d8d0b9de2c8ab90ecf513cd8f2e7d7f15ff7b2f9f89",
}

// TestHistoryCorpusIsAppendOnly holds the recorded histories to their
// manifests: a history that was modified or deleted fails here, and so
// does a new file that no manifest lists, or a manifest that is not the one
// pinned. Running journeys are a contract; the corpus that stands for them
// only grows.
func TestHistoryCorpusIsAppendOnly(t *testing.T) {
	historytest.CheckAppendOnly(t, historiesDir, manifestPins, "go test ./workflows -run TestRecordHistories -record")
}
