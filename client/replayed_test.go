package client_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

// replaying marks h's answers as replays (Idempotent-Replayed: true).
func replaying(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(proto.HeaderIdempotentReplayed, "true")
		h(w, r)
	}
}

// TestReplayedFlag: the client surfaces the agent's Idempotent-Replayed
// header as Replayed on sign and batch answers, and only then.
func TestReplayedFlag(t *testing.T) {
	ctx := context.Background()
	for _, replayed := range []bool{false, true} {
		sign, batch := http.HandlerFunc(signed), batchAgent(t, nil)
		if replayed {
			sign, batch = replaying(sign), replaying(batch)
		}
		c := &client.Client{Socket: startAgent(t, sign).path}
		res, err := c.SignDSSE(ctx, signRequest())
		if err != nil {
			t.Fatal(err)
		}
		if res.Replayed != replayed {
			t.Errorf("SignDSSE: Replayed %v, want %v", res.Replayed, replayed)
		}
		c = &client.Client{Socket: startAgent(t, batch).path}
		bres, err := c.SignBatch(ctx, threeStatements(t))
		if err != nil {
			t.Fatal(err)
		}
		if bres.Replayed != replayed {
			t.Errorf("SignBatch: Replayed %v, want %v", bres.Replayed, replayed)
		}
	}
}
