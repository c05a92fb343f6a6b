package tpm

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/stellaops/signer-agent/internal/keys"
)

// latencies records the duration of each benchmark iteration and reports
// the median and 99th percentile next to ns/op.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	b.ReportMetric(float64(l[len(l)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(l[len(l)*99/100].Nanoseconds()), "p99-ns")
}

// forAuthModes runs bench as two sub-benchmarks, each on a fresh
// simulator: a key without an auth value (password session) and one with
// an auth value (salted HMAC session); opts creates that key.
func forAuthModes(b *testing.B, bench func(b *testing.B, sim *simulator, opts CreateOptions, withAuth bool)) {
	for _, withAuth := range []bool{false, true} {
		name := "password"
		if withAuth {
			name = "salted-session"
		}
		b.Run(name, func(b *testing.B) {
			sim := startSimulator(b)
			dir := b.TempDir()
			opts := CreateOptions{Sim: sim.addr(), BlobPath: filepath.Join(dir, "key.tss2")}
			if withAuth {
				opts.AuthFile = writeFile(b, dir, "auth", testAuth)
			}
			bench(b, sim, opts, withAuth)
		})
	}
}

// BenchmarkTPMRawSign is the floor: TPM2_Sign of a loaded key through
// go-tpm on a connection of its own, with nothing of this package in the
// way. Compare with BenchmarkKeySign (sequential, same simulator setup).
func BenchmarkTPMRawSign(b *testing.B) {
	forAuthModes(b, func(b *testing.B, sim *simulator, opts CreateOptions, withAuth bool) {
		createKey(b, opts) // the device is released: the connection below is the only one
		data, err := os.ReadFile(opts.BlobPath)
		if err != nil {
			b.Fatal(err)
		}
		kf, err := parseKeyFile(data)
		if err != nil {
			b.Fatal(err)
		}
		t, err := dialSim(sim.addr())
		if err != nil {
			b.Fatal(err)
		}
		defer t.Close()
		srk, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(tpm2.ECCSRKTemplate)}.Execute(t)
		if err != nil {
			b.Fatal(err)
		}
		srkPub, err := srk.OutPublic.Contents()
		if err != nil {
			b.Fatal(err)
		}
		loaded, err := tpm2.Load{
			ParentHandle: tpm2.NamedHandle{Handle: srk.ObjectHandle, Name: srk.Name},
			InPrivate:    kf.private,
			InPublic:     kf.public,
		}.Execute(t)
		if err != nil {
			b.Fatal(err)
		}
		sess := tpm2.PasswordAuth(nil)
		if withAuth {
			s, closeSess, err := tpm2.HMACSession(t, tpm2.TPMAlgSHA256, 16,
				tpm2.Auth([]byte(testAuth)), tpm2.Salted(srk.ObjectHandle, *srkPub), tpm2.AESEncryption(128, tpm2.EncryptIn))
			if err != nil {
				b.Fatal(err)
			}
			defer closeSess()
			sess = s
		}
		digest := sha256.Sum256([]byte("benchmark"))
		sign := tpm2.Sign{
			KeyHandle: tpm2.AuthHandle{Handle: loaded.ObjectHandle, Name: loaded.Name, Auth: sess},
			Digest:    tpm2.TPM2BDigest{Buffer: digest[:]},
			InScheme: tpm2.TPMTSigScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256}),
			},
			Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
		}
		var lat latencies
		for b.Loop() {
			start := time.Now()
			if _, err := sign.Execute(t); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		lat.report(b)
	})
}

// BenchmarkKeySign signs through the backend as the agent does:
// keys.SignMessage (SHA-256 of the message, the device queue, TPM2_Sign,
// DER encoding and a check of the signature against the public key).
func BenchmarkKeySign(b *testing.B) {
	forAuthModes(b, func(b *testing.B, _ *simulator, opts CreateOptions, _ bool) {
		uri, _ := createKey(b, opts)
		k := openKey(b, uri)
		msg := []byte("benchmark")
		ctx := context.Background()
		var lat latencies
		for b.Loop() {
			start := time.Now()
			if _, err := keys.SignMessage(ctx, k, msg); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		lat.report(b)
	})
}
