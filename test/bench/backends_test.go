package bench

import (
	"context"
	"crypto"
	"crypto/sha256"
	"path/filepath"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/pkcs11"
	"github.com/stellaops/signer-agent/internal/keys/tpm"
	"github.com/stellaops/signer-agent/test/harness"
)

// Issue #5's backend targets, at 16 concurrent callers: the agent end to
// end through SoftHSM2 against raw SoftHSM2 signing through the same
// binding (throughput); through swtpm, the agent's p50 latency against the
// raw swtpm sign latency (BenchmarkTPMRawSign16, BenchmarkAgentSignTPM16).
// The sequential TPM pair shows what one request costs on an idle node.

func BenchmarkSoftHSMRawSign(b *testing.B) {
	uri := harness.SoftHSMKey(b, "bench")
	k, err := (&keys.Opener{PKCS11: (&pkcs11.Opener{}).Open}).Open(context.Background(), uri)
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	msg := []byte("statement bytes")
	b.ResetTimer()
	parallel16(b, func(pb *testing.PB) {
		for pb.Next() {
			if _, err := keys.SignMessage(context.Background(), k, msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkAgentSignSoftHSM(b *testing.B) {
	uri := harness.SoftHSMKey(b, "bench")
	h := harness.StartAgent(b, harness.Options{FileAudit: true, EditConfig: harness.WithDefaultKey("hsm", uri)})
	req := request(1024)
	ctx := context.Background()
	b.ResetTimer()
	parallel16(b, func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Client.SignDSSE(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// sequentialTimed runs op b.N times, one after the other, and reports its
// latency percentiles (the sequential counterpart of parallel16Timed).
func sequentialTimed(b *testing.B, op func() error) {
	d := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		t := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t))
	}
	reportLatency(b, d)
}

// tpmRawSign creates a key on a fresh swtpm and returns one raw TPM2_Sign
// through the binding.
func tpmRawSign(b *testing.B) func() error {
	sim := harness.StartSWTPM(b)
	uri, _, err := tpm.CreateKey(context.Background(), tpm.CreateOptions{Sim: sim.Addr(), BlobPath: filepath.Join(b.TempDir(), "k.tpmkey")})
	if err != nil {
		b.Fatal(err)
	}
	k, err := tpm.Open(context.Background(), uri)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { k.Close() })
	cs := k.(keys.ContextSigner)
	d := sha256.Sum256([]byte("statement bytes"))
	return func() error {
		_, err := cs.SignContext(context.Background(), d[:], cryptoSHA256)
		return err
	}
}

// tpmAgentSign starts an agent whose dev tenant signs with a key on a fresh
// swtpm and returns one sign request through it.
func tpmAgentSign(b *testing.B) func() error {
	sim := harness.StartSWTPM(b)
	dir := harness.ShortTempDir(b)
	uri, _, err := tpm.CreateKey(context.Background(), tpm.CreateOptions{Sim: sim.Addr(), BlobPath: filepath.Join(dir, "k.tpmkey")})
	if err != nil {
		b.Fatal(err)
	}
	h := harness.StartAgent(b, harness.Options{Dir: dir, FileAudit: true, EditConfig: harness.WithDefaultKey("tpm", uri)})
	req := request(1024)
	return func() error {
		_, err := h.Client.SignDSSE(context.Background(), req)
		return err
	}
}

func BenchmarkTPMRawSign16(b *testing.B) {
	op := tpmRawSign(b)
	b.ResetTimer()
	parallel16Timed(b, op)
}

func BenchmarkAgentSignTPM16(b *testing.B) {
	op := tpmAgentSign(b)
	b.ResetTimer()
	parallel16Timed(b, op)
}

func BenchmarkTPMRawSign(b *testing.B) {
	op := tpmRawSign(b)
	b.ResetTimer()
	sequentialTimed(b, op)
}

func BenchmarkAgentSignTPM(b *testing.B) {
	op := tpmAgentSign(b)
	b.ResetTimer()
	sequentialTimed(b, op)
}

const cryptoSHA256 = crypto.SHA256
