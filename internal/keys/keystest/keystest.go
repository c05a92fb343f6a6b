// Package keystest is the conformance suite every key backend runs. The
// six backends run it against real or faithful counterparts:
//
//   - file: PEM keys in every supported encoding (PKCS#8, SEC1, encrypted
//     PKCS#8, sigstore/cosign encrypted), and a key the real cosign CLI
//     generated (internal/keys);
//   - memory: in-process keys (internal/keys);
//   - pkcs11: keys in a SoftHSM2 token (internal/keys/pkcs11);
//   - tpm: keys under an swtpm simulator's storage root key, as key blobs
//     and persistent handles (internal/keys/tpm);
//   - fido2: keys wrapped under the software authenticator
//     (internal/keys/fido2);
//   - kms: sigstore's fake KMS and a Vault transit fake on loopback
//     (internal/keys/kms).
//
// A backend's test calls Run with a function that opens a fresh Key:
//
//	func TestConformance(t *testing.T) {
//		keystest.Run(t, func(t *testing.T) keys.Key { return openMyKey(t) })
//	}
//
// The suite checks only what every honest backend must do: signatures made
// with keys.SignMessage verify with the standard library, ECDSA signatures
// are ASN.1 DER, the public key is stable, concurrent signing works, a
// digest of the wrong hash is refused, and Close is idempotent and final.
package keystest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"

	"github.com/stellaops/signer-agent/internal/keys"
)

// Concurrency of the Concurrent subtest.
const (
	goroutines      = 16
	signsPerRoutine = 20
)

// Run runs the conformance suite. open is called once per subtest and must
// return a new, open Key; Run closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) keys.Key) {
	t.Helper()
	for _, st := range []struct {
		name string
		run  func(t *testing.T, k keys.Key)
	}{
		{"Algorithm", testAlgorithm},
		{"SignVerify", testSignVerify},
		{"PublicKeyStable", testPublicKeyStable},
		{"Concurrent", testConcurrent},
		{"WrongHash", testWrongHash},
		{"CloseIdempotent", testCloseIdempotent},
		{"SignAfterClose", testSignAfterClose},
	} {
		t.Run(st.name, func(t *testing.T) {
			k := open(t)
			if k == nil {
				t.Fatal("open returned a nil Key")
			}
			t.Cleanup(func() { _ = k.Close() })
			st.run(t, k)
		})
	}
}

// Verify checks sig over msg with pub the way a verifier of the agent's
// signatures does: ECDSA with the curve's hash over an ASN.1 DER signature,
// Ed25519 over msg itself.
func Verify(pub crypto.PublicKey, msg, sig []byte) error {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		alg, h, err := keys.Algorithm(p)
		if err != nil {
			return err
		}
		var digest []byte
		switch h {
		case crypto.SHA256:
			d := sha256.Sum256(msg)
			digest = d[:]
		case crypto.SHA384:
			d := sha512.Sum384(msg)
			digest = d[:]
		default:
			return fmt.Errorf("%s: unexpected hash %v", alg, h)
		}
		if !ecdsa.VerifyASN1(p, digest, sig) {
			return fmt.Errorf("%s signature does not verify", alg)
		}
		return nil
	case ed25519.PublicKey:
		if !ed25519.Verify(p, msg, sig) {
			return errors.New("ed25519 signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("unsupported public key %T", pub)
}

func testAlgorithm(t *testing.T, k keys.Key) {
	alg, h, err := keys.Algorithm(k.Public())
	if err != nil {
		t.Fatalf("Algorithm(Public()): %v", err)
	}
	switch pub := k.Public().(type) {
	case *ecdsa.PublicKey:
		want := map[string]string{"P-256": keys.AlgECDSAP256, "P-384": keys.AlgECDSAP384}[pub.Curve.Params().Name]
		if alg != want || want == "" {
			t.Errorf("ECDSA %s key: algorithm %q, want %q", pub.Curve.Params().Name, alg, want)
		}
		if h != crypto.SHA256 && h != crypto.SHA384 {
			t.Errorf("algorithm %s: digest %v, want SHA-256 or SHA-384", alg, h)
		}
	case ed25519.PublicKey:
		if alg != keys.AlgEd25519 || h != 0 {
			t.Errorf("Ed25519 key: algorithm %q with digest %v, want %q with none", alg, h, keys.AlgEd25519)
		}
	default:
		t.Fatalf("public key %T is not one the agent signs with", pub)
	}
	if _, err := keys.PublicKeyHint(k.Public()); err != nil {
		t.Errorf("PublicKeyHint: %v", err)
	}
}

func testSignVerify(t *testing.T, k keys.Key) {
	ctx := context.Background()
	long := bytes.Repeat([]byte("signer-agent "), 5000)
	for _, msg := range [][]byte{{}, []byte("hello"), long} {
		sig, err := keys.SignMessage(ctx, k, msg)
		if err != nil {
			t.Fatalf("SignMessage(%d bytes): %v", len(msg), err)
		}
		if err := Verify(k.Public(), msg, sig); err != nil {
			t.Errorf("%d-byte message: %v", len(msg), err)
		}
		checkEncoding(t, k.Public(), sig)
		tampered := append(append([]byte{}, msg...), '!')
		if Verify(k.Public(), tampered, sig) == nil {
			t.Errorf("%d-byte message: signature also verifies a different message", len(msg))
		}
	}
}

// checkEncoding checks that an ECDSA signature is canonical ASN.1 DER
// SEQUENCE{r, s} and an Ed25519 signature is 64 bytes.
func checkEncoding(t *testing.T, pub crypto.PublicKey, sig []byte) {
	t.Helper()
	switch pub.(type) {
	case *ecdsa.PublicKey:
		var rs struct{ R, S *big.Int }
		rest, err := asn1.Unmarshal(sig, &rs)
		if err != nil || len(rest) != 0 {
			t.Errorf("ECDSA signature is not ASN.1 DER (err %v, %d trailing bytes)", err, len(rest))
			return
		}
		if rs.R.Sign() <= 0 || rs.S.Sign() <= 0 {
			t.Errorf("ECDSA signature has a non-positive r or s")
		}
		if der, err := asn1.Marshal(rs); err != nil || !bytes.Equal(der, sig) {
			t.Errorf("ECDSA signature is not canonical DER")
		}
	case ed25519.PublicKey:
		if len(sig) != ed25519.SignatureSize {
			t.Errorf("Ed25519 signature is %d bytes, want %d", len(sig), ed25519.SignatureSize)
		}
	}
}

func testPublicKeyStable(t *testing.T, k keys.Key) {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	first := k.Public()
	e, ok := first.(equaler)
	if !ok {
		t.Fatalf("public key %T has no Equal method", first)
	}
	hint, err := keys.PublicKeyHint(first)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Equal(k.Public()) {
		t.Fatal("Public() changed between two calls")
	}
	for i := range 3 {
		msg := fmt.Appendf(nil, "message %d", i)
		sig, err := keys.SignMessage(context.Background(), k, msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(first, msg, sig); err != nil {
			t.Fatalf("signature %d does not verify with the first public key: %v", i, err)
		}
		if !e.Equal(k.Public()) {
			t.Fatalf("Public() changed after signature %d", i)
		}
	}
	if h, _ := keys.PublicKeyHint(k.Public()); h != hint {
		t.Errorf("public key hint changed: %s, then %s", hint, h)
	}
}

func testConcurrent(t *testing.T, k keys.Key) {
	pub := k.Public()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range signsPerRoutine {
				msg := fmt.Appendf(nil, "goroutine %d signature %d", g, i)
				sig, err := keys.SignMessage(context.Background(), k, msg)
				if err != nil {
					t.Errorf("goroutine %d signature %d: %v", g, i, err)
					return
				}
				if err := Verify(pub, msg, sig); err != nil {
					t.Errorf("goroutine %d signature %d: %v", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// testWrongHash asks the key to sign digests that do not fit its
// algorithm (keys.Algorithm names the one digest it signs). Every backend
// can check the SignerOpts in Go before reaching its device, so every
// backend must refuse.
func testWrongHash(t *testing.T, k keys.Key) {
	alg, want, err := keys.Algorithm(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("wrong hash")
	digests := map[crypto.Hash][]byte{0: msg}
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		d := h.New()
		d.Write(msg)
		digests[h] = d.Sum(nil)
	}
	type attempt struct {
		name   string
		digest []byte
		opts   crypto.SignerOpts
	}
	var attempts []attempt
	for _, h := range []crypto.Hash{0, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		if h != want {
			attempts = append(attempts, attempt{fmt.Sprintf("%s digest", hashName(h)), digests[h], h})
		}
	}
	if want != 0 {
		// The right hash named, a digest of the wrong length given.
		other := crypto.SHA512
		if want == crypto.SHA512 {
			other = crypto.SHA256
		}
		attempts = append(attempts, attempt{fmt.Sprintf("%s-labelled %s digest", hashName(want), hashName(other)), digests[other], want})
	}
	for _, a := range attempts {
		if sig, err := k.Sign(nil, a.digest, a.opts); err == nil {
			t.Errorf("%s key signed a %s (%d-byte signature); want an error", alg, a.name, len(sig))
		}
	}
	// The key still works afterwards.
	sig, err := keys.SignMessage(context.Background(), k, msg)
	if err != nil {
		t.Fatalf("SignMessage after refused requests: %v", err)
	}
	if err := Verify(k.Public(), msg, sig); err != nil {
		t.Error(err)
	}
}

func hashName(h crypto.Hash) string {
	if h == 0 {
		return "unhashed"
	}
	return h.String()
}

func testCloseIdempotent(t *testing.T, k keys.Key) {
	if err := k.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := k.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func testSignAfterClose(t *testing.T, k keys.Key) {
	msg := []byte("before close")
	if _, err := keys.SignMessage(context.Background(), k, msg); err != nil {
		t.Fatalf("SignMessage before Close: %v", err)
	}
	if err := k.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err := keys.SignMessage(context.Background(), k, []byte("after close"))
	if !errors.Is(err, keys.ErrClosed) {
		t.Errorf("SignMessage after Close: got %v, want ErrClosed", err)
	}
}
