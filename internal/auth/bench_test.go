package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/auth/authoritytest"
)

// BenchmarkVerifyTokenCached: the same OpTok verified repeatedly (the
// signature is checked once; each call hashes the token, looks it up and
// re-applies the time checks).
func BenchmarkVerifyTokenCached(b *testing.B) {
	f := newFixture(b, fixtureOpt{})
	tok := f.token(nil, authoritytest.MintOptions{})
	ctx := context.Background()
	if _, err := f.v.VerifyToken(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.v.VerifyToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyTokenUncached: a full ES256 OpTok verification (parse,
// signature, claims) for every call.
func BenchmarkVerifyTokenUncached(b *testing.B) {
	f := newFixture(b, fixtureOpt{})
	const pool = 1024
	toks := make([]string, pool)
	for i := range toks {
		toks[i] = f.token(nil, authoritytest.MintOptions{})
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if i%pool == 0 && i > 0 {
			b.StopTimer()
			f.v.tokens = newTokenCache(DefaultTokenCacheSize)
			b.StartTimer()
		}
		if _, err := f.v.VerifyToken(ctx, toks[i%pool]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyDPoP: one ES256 DPoP proof verification per call (parse,
// thumbprint, signature, claims, nonce, replay cache insert). Proofs are made
// in batches outside the timer; the fake clock moves a second per batch.
func BenchmarkVerifyDPoP(b *testing.B) {
	f := newFixture(b, fixtureOpt{})
	ctx := context.Background()
	const batch = 1000
	var (
		tok    string
		claims *Claims
		proofs []string
	)
	refill := func() {
		f.clock.Advance(time.Second)
		tok = f.token(nil, authoritytest.MintOptions{})
		var err error
		if claims, err = f.v.VerifyToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
		proofs = proofs[:0]
		for range batch {
			proofs = append(proofs, f.proof(tok, nil))
		}
	}
	refill()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%batch == 0 && i > 0 {
			b.StopTimer()
			refill()
			b.StartTimer()
		}
		if err := f.v.VerifyDPoP(ctx, proofs[i%batch], "POST", signPath, claims, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkECDSAP256Verify: raw in-process P-256/SHA-256 verification
// throughput on all CPUs, the floor under the two above.
func BenchmarkECDSAP256Verify(b *testing.B) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("signer-agent benchmark"))
	sig, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	pub := &k.PublicKey
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !ecdsa.VerifyASN1(pub, digest[:], sig) {
				b.Error("verification failed")
				return
			}
		}
	})
}
