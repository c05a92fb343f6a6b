package keys_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/keystest"
)

func TestMemoryKeyConformance(t *testing.T) {
	for _, alg := range algorithms {
		t.Run("Open/"+alg, func(t *testing.T) {
			keystest.Run(t, func(t *testing.T) keys.Key {
				k, err := new(keys.Opener).Open(context.Background(), "memory:dev?alg="+alg)
				if err != nil {
					t.Fatal(err)
				}
				if got, _, _ := keys.Algorithm(k.Public()); got != alg {
					t.Errorf("algorithm %q, want %q", got, alg)
				}
				return k
			})
		})
		t.Run("NewMemoryKey/"+alg, func(t *testing.T) {
			keystest.Run(t, func(t *testing.T) keys.Key {
				k, err := keys.NewMemoryKey(alg)
				if err != nil {
					t.Fatal(err)
				}
				return k
			})
		})
	}
}

func TestMemoryKeyDefaults(t *testing.T) {
	a, err := new(keys.Opener).Open(context.Background(), "memory:dev")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := new(keys.Opener).Open(context.Background(), "memory:dev")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if alg, _, _ := keys.Algorithm(a.Public()); alg != keys.AlgECDSAP256 {
		t.Errorf("default algorithm %q, want %q", alg, keys.AlgECDSAP256)
	}
	ha, _ := keys.PublicKeyHint(a.Public())
	hb, _ := keys.PublicKeyHint(b.Public())
	if ha == hb {
		t.Error("two opens of memory:dev returned the same key; want a fresh key each time")
	}
}

func TestSignRefusesBadOptions(t *testing.T) {
	p256, err := keys.NewMemoryKey(keys.AlgECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	defer p256.Close()
	ed, err := keys.NewMemoryKey(keys.AlgEd25519)
	if err != nil {
		t.Fatal(err)
	}
	defer ed.Close()
	d := sha256.Sum256([]byte("m"))
	for _, c := range []struct {
		name   string
		key    keys.Key
		digest []byte
		opts   crypto.SignerOpts
	}{
		{"nil options", p256, d[:], nil},
		{"Ed25519ctx", ed, []byte("m"), &ed25519.Options{Context: "ctx"}},
	} {
		if _, err := c.key.Sign(nil, c.digest, c.opts); err == nil {
			t.Errorf("%s: signed, want an error", c.name)
		}
	}
	// Plain ed25519.Options (pure Ed25519) is accepted.
	sig, err := ed.Sign(nil, []byte("m"), &ed25519.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(ed.Public().(ed25519.PublicKey), []byte("m"), sig) {
		t.Error("signature does not verify")
	}
}

func TestPublicAfterClose(t *testing.T) {
	k, err := keys.NewMemoryKey(keys.AlgEd25519)
	if err != nil {
		t.Fatal(err)
	}
	pub := k.Public()
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	samePublicKey(t, k.Public(), pub)
	if _, err := k.Sign(nil, []byte("m"), crypto.Hash(0)); !errors.Is(err, keys.ErrClosed) {
		t.Errorf("Sign after Close: %v, want ErrClosed", err)
	}
}
