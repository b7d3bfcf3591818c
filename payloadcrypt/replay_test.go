package payloadcrypt

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"

	"github.com/rapport-crm/rapport/workflows"
	"github.com/rapport-crm/rapport/workflows/historytest"
)

// historiesDir is the corpus of recorded journey histories, all written
// before payloads were encrypted.
const historiesDir = "../workflows/testdata/histories"

func loadHistories(t *testing.T) map[string]*historypb.History {
	t.Helper()
	out := map[string]*historypb.History{}
	for _, path := range historytest.Files(t, historiesDir) {
		rel, _ := filepath.Rel(historiesDir, path)
		out[rel] = historytest.Read(t, path)
	}
	if len(out) == 0 {
		t.Fatal("no recorded histories in " + historiesDir)
	}
	return out
}

func replayer(t *testing.T, c *Codec) worker.WorkflowReplayer {
	t.Helper()
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{DataConverter: c.DataConverter(), FailureConverter: c.FailureConverter()})
	if err != nil {
		t.Fatal(err)
	}
	r.RegisterWorkflowWithOptions(workflows.Journey, workflow.RegisterOptions{Name: workflows.WorkflowName})
	return r
}

func quiet() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// TestRecordedHistoriesReplayWithTheCodecOn: turning encryption on must
// not break the journeys already running, whose histories hold payloads
// in clear; and histories written with encryption on (simulated here by
// encrypting every payload of the recorded ones) replay too.
func TestRecordedHistoriesReplayWithTheCodecOn(t *testing.T) {
	keys, _ := mustKeys(t, "m1")
	st := newMemKeys()
	c := New(keys, st, Options{})
	for name, h := range loadHistories(t) {
		t.Run(name, func(t *testing.T) {
			// Encrypted first: a replay changes the history it is given.
			enc := encryptHistory(t, c, h)
			if err := replayer(t, c).ReplayWorkflowHistory(quiet(), h); err != nil {
				t.Fatalf("clear history, codec on: %v", err)
			}
			if err := replayer(t, c).ReplayWorkflowHistory(quiet(), enc); err != nil {
				t.Fatalf("encrypted history: %v", err)
			}
		})
	}
}

// encryptHistory is h with every payload but the search attributes
// (which Temporal indexes, and no codec touches) encrypted with the data
// key of a customer.
func encryptHistory(t *testing.T, c *Codec, h *historypb.History) *historypb.History {
	t.Helper()
	out := proto.Clone(h).(*historypb.History)
	bound := journeyCodec(c, "replayed-customer")
	n := 0
	err := proxy.VisitPayloads(context.Background(), out, proxy.VisitPayloadsOptions{
		SkipSearchAttributes: true,
		Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
			n += len(ps)
			return bound.Encode(ps)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("the history has no payloads")
	}
	return out
}
