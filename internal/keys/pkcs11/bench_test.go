//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto/elliptic"
	"crypto/sha256"
	"runtime"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/pkcs11"
)

// benchGoroutines is how many goroutines the signing benchmarks run:
// RunParallel starts a multiple of GOMAXPROCS, so at least this many.
const benchGoroutines = 16

func setParallelism(b *testing.B) {
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((benchGoroutines + procs - 1) / procs)
}

var benchCurves = []struct {
	name  string
	curve elliptic.Curve
}{{"P-256", elliptic.P256()}, {"P-384", elliptic.P384()}}

// BenchmarkSoftHSMRawSign is the floor: C_SignInit + C_Sign of a SHA-256
// digest straight through the binding, one session per goroutine, no pool,
// no DER conversion.
func BenchmarkSoftHSMRawSign(b *testing.B) {
	for _, c := range benchCurves {
		b.Run(c.name, func(b *testing.B) {
			h := newSoftHSM(b)
			h.initToken(b, "bench")
			uri := h.generate(b, "bench", "k", c.curve)
			u, err := pkcs11.ParseURI(uri)
			if err != nil {
				b.Fatal(err)
			}
			ctx := p11.New(softhsmModule)
			if ctx == nil {
				b.Fatal("cannot load SoftHSM2")
			}
			defer ctx.Destroy()
			if err := ctx.Initialize(); err != nil {
				b.Fatal(err)
			}
			defer ctx.Finalize()
			slots, err := ctx.GetSlotList(true)
			if err != nil || len(slots) == 0 {
				b.Fatalf("slots %v: %v", slots, err)
			}
			slot := slots[0]
			s, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION)
			if err != nil {
				b.Fatal(err)
			}
			defer ctx.CloseSession(s)
			if err := ctx.Login(s, p11.CKU_USER, userPIN); err != nil {
				b.Fatal(err)
			}
			if err := ctx.FindObjectsInit(s, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_ID, u.ID),
			}); err != nil {
				b.Fatal(err)
			}
			found, _, err := ctx.FindObjects(s, 1)
			if err != nil || len(found) != 1 {
				b.Fatalf("find key: %v %v", found, err)
			}
			if err := ctx.FindObjectsFinal(s); err != nil {
				b.Fatal(err)
			}
			priv := found[0]
			digest := sha256.Sum256([]byte("benchmark message"))
			mech := []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}

			setParallelism(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				s, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION)
				if err != nil {
					b.Error(err)
					return
				}
				defer ctx.CloseSession(s)
				for pb.Next() {
					if err := ctx.SignInit(s, mech, priv); err != nil {
						b.Error(err)
						return
					}
					if _, err := ctx.Sign(s, digest[:]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkKeySign signs through the backend as the agent does:
// keys.SignMessage (SHA-256 of a short message), the session pool with
// max-sessions=16, DER conversion.
func BenchmarkKeySign(b *testing.B) {
	for _, c := range benchCurves {
		b.Run(c.name, func(b *testing.B) {
			h := newSoftHSM(b)
			h.initToken(b, "bench")
			uri := h.generate(b, "bench", "k", c.curve)
			var o pkcs11.Opener
			k := openKey(b, &o, uri+"&max-sessions=16")
			msg := []byte("benchmark message")
			ctx := context.Background()

			setParallelism(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := keys.SignMessage(ctx, k, msg); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(k.Stats().PeakInUse), "peak-sessions")
		})
	}
}
