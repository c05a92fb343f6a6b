package agent_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestLoadsAreAudited: the start and every reload leave a record with the
// config digest and each key's id, source and fingerprint; a different
// private key swapped in under the same id shows as a new fingerprint, in
// the load record and in the sign records; a refused reload is recorded
// too.
func TestLoadsAreAudited(t *testing.T) {
	ctx := context.Background()
	h := harness.StartAgent(t, harness.Options{})
	loads := func() []audit.Record {
		var out []audit.Record
		for _, r := range h.Audit.Records() {
			if r.Gate == "load" {
				out = append(out, r)
			}
		}
		return out
	}
	start := loads()
	if len(start) != 1 || start[0].RequestID != "config-start" || start[0].KeyIDs[0] != "dev" || start[0].KeySources[0] != "file" || start[0].ConfigDigest == "" {
		t.Fatalf("start record: %+v", start)
	}
	fp := start[0].KeyFingerprints[0]
	if _, err := h.Client.SignDSSE(ctx, signRequest()); err != nil {
		t.Fatal(err)
	}
	if s := h.Signed(); s[0].KeyFingerprints[0] != fp {
		t.Fatalf("sign record fingerprint %v, want %s", s[0].KeyFingerprints, fp)
	}

	// Swap another private key in under the same id and reload.
	if err := os.Remove(h.KeyPEM); err != nil {
		t.Fatal(err)
	}
	k, err := keys.GenerateFileKey(h.KeyPEM, keys.AlgECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	k.Close()
	if err := h.Agent.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	l := loads()
	last := l[len(l)-1]
	if last.RequestID != "config-reload" || last.KeyFingerprints[0] == fp || last.ConfigDigest != start[0].ConfigDigest {
		t.Fatalf("reload record: %+v (start fingerprint %s)", last, fp)
	}
	if _, err := h.Client.SignDSSE(ctx, signRequest()); err != nil {
		t.Fatal(err)
	}
	if s := h.Signed(); s[1].KeyFingerprints[0] != last.KeyFingerprints[0] {
		t.Fatalf("sign after the swap: %v", s[1].KeyFingerprints)
	}

	// A refused reload is recorded and changes nothing.
	harness.EditConfig(t, h.Config, func(c *config.Config) { c.Version = 9 })
	if err := h.Agent.Reload(ctx); err == nil {
		t.Fatal("bad config accepted")
	}
	l = loads()
	if r := l[len(l)-1]; !strings.Contains(r.Reason, "refused") || r.ConfigDigest != "" {
		t.Fatalf("refused reload record: %+v", r)
	}
}
