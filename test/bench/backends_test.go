package bench

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
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

// softHSMRawSign opens a key on a fresh SoftHSM2 token and returns one
// raw signature through the binding.
func softHSMRawSign(b *testing.B) func() error {
	uri := harness.SoftHSMKey(b, "bench")
	k, err := (&keys.Opener{Backends: map[string]keys.OpenFunc{"pkcs11": (&pkcs11.Opener{}).Open}}).Open(context.Background(), uri)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { k.Close() })
	msg := []byte("statement bytes")
	return func() error {
		_, err := keys.SignMessage(context.Background(), k, msg)
		return err
	}
}

// run16 starts the clock after the setup that made ops, then runs ops one
// after the other as one operation from 16 callers (parallel16Timed).
func run16(b *testing.B, ops ...func() error) {
	b.ResetTimer()
	parallel16Timed(b, func() error {
		for _, op := range ops {
			if err := op(); err != nil {
				return err
			}
		}
		return nil
	})
}

func BenchmarkSoftHSMRawSign(b *testing.B) { run16(b, softHSMRawSign(b)) }

// BenchmarkSoftHSMFloor is the raw SoftHSM2 signature plus the DPoP floor,
// 16 callers: the most an agent that enforces DPoP can sign per second
// through SoftHSM2 here.
func BenchmarkSoftHSMFloor(b *testing.B) { run16(b, dpopFloor(b), softHSMRawSign(b)) }

// dpopFloor returns the two ECDSA P-256 operations every request costs
// under DPoP whatever the agent does otherwise: the caller signs its proof
// and the agent verifies it. Added to a raw signature (the *Floor
// benchmarks), it bounds what any agent that enforces DPoP can reach on
// this machine: the callers, the agent and a software token share its
// cores.
func dpopFloor(b *testing.B) func() error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	return func() error {
		d := sha256.Sum256([]byte("dpop proof signing input"))
		sig, err := ecdsa.SignASN1(rand.Reader, k, d[:])
		if err != nil {
			return err
		}
		if !ecdsa.VerifyASN1(&k.PublicKey, d[:], sig) {
			return errors.New("proof does not verify")
		}
		return nil
	}
}

func BenchmarkAgentSignSoftHSM(b *testing.B) {
	uri := harness.SoftHSMKey(b, "bench")
	h := harness.StartAgent(b, harness.Options{FileAudit: true, Edit: harness.WithDefaultKey("hsm", uri)})
	req := request(1024)
	run16(b, func() error {
		_, err := h.Client.SignDSSE(context.Background(), req)
		return err
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
	uri := sim.CreateKey(b, b.TempDir())
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
	uri := sim.CreateKey(b, dir)
	h := harness.StartAgent(b, harness.Options{Dir: dir, FileAudit: true, Edit: harness.WithDefaultKey("tpm", uri)})
	req := request(1024)
	return func() error {
		_, err := h.Client.SignDSSE(context.Background(), req)
		return err
	}
}

func BenchmarkTPMRawSign16(b *testing.B) { run16(b, tpmRawSign(b)) }

// BenchmarkTPMFloor16 is the raw TPM2_Sign plus the DPoP floor, 16
// callers: the p50 an agent that enforces DPoP would have if it did
// nothing else.
func BenchmarkTPMFloor16(b *testing.B) { run16(b, dpopFloor(b), tpmRawSign(b)) }

func BenchmarkAgentSignTPM16(b *testing.B) { run16(b, tpmAgentSign(b)) }

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
