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

// p50 runs op sequentially and reports its latency percentiles.
func p50(b *testing.B, op func() error) {
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

// tpmKey creates a key on a fresh swtpm and opens it.
func tpmKey(b *testing.B) keys.ContextSigner {
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
	return k.(keys.ContextSigner)
}

// tpmAgent starts an agent whose dev tenant signs with a key on a fresh
// swtpm.
func tpmAgent(b *testing.B) *harness.Agent {
	sim := harness.StartSWTPM(b)
	dir := harness.ShortTempDir(b)
	uri, _, err := tpm.CreateKey(context.Background(), tpm.CreateOptions{Sim: sim.Addr(), BlobPath: filepath.Join(dir, "k.tpmkey")})
	if err != nil {
		b.Fatal(err)
	}
	return harness.StartAgent(b, harness.Options{Dir: dir, FileAudit: true, EditConfig: harness.WithDefaultKey("tpm", uri)})
}

func BenchmarkTPMRawSign16(b *testing.B) {
	cs := tpmKey(b)
	d := sha256.Sum256([]byte("statement bytes"))
	b.ResetTimer()
	parallel16Timed(b, func() error {
		_, err := cs.SignContext(context.Background(), d[:], cryptoSHA256)
		return err
	})
}

func BenchmarkAgentSignTPM16(b *testing.B) {
	h := tpmAgent(b)
	req := request(1024)
	b.ResetTimer()
	parallel16Timed(b, func() error {
		_, err := h.Client.SignDSSE(context.Background(), req)
		return err
	})
}

func BenchmarkTPMRawSign(b *testing.B) {
	cs := tpmKey(b)
	d := sha256.Sum256([]byte("statement bytes"))
	b.ResetTimer()
	p50(b, func() error {
		_, err := cs.SignContext(context.Background(), d[:], cryptoSHA256)
		return err
	})
}

func BenchmarkAgentSignTPM(b *testing.B) {
	h := tpmAgent(b)
	req := request(1024)
	b.ResetTimer()
	p50(b, func() error {
		_, err := h.Client.SignDSSE(context.Background(), req)
		return err
	})
}

const cryptoSHA256 = crypto.SHA256
