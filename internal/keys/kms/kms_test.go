package kms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	sigkms "github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/kms/fake"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/keystest"
)

// Test-only schemes:
//
//	fakekms://     sigstore's in-memory fake; the private key comes from
//	               ctx (fake.KmsCtxKey) or is generated. Signs SHA-256 with
//	               P-384, like Vault.
//	fakecloud://   the same fake, but refusing P-384 like the cloud
//	               services.
//	failkms://NAME a stub whose behaviour stubs[NAME] sets.
func init() {
	anyRef := func(string) error { return nil }
	providers["fakekms"] = provider{validRef: anyRef, p384: true}
	providers["fakecloud"] = provider{validRef: anyRef}
	providers["failkms"] = provider{validRef: anyRef, p384: true}
	sigkms.AddProvider("fakecloud://", func(ctx context.Context, _ string, hf crypto.Hash, _ ...signature.RPCOption) (sigkms.SignerVerifier, error) {
		return fake.LoadSignerVerifier(ctx, hf)
	})
	sigkms.AddProvider("failkms://", func(_ context.Context, ref string, _ crypto.Hash, _ ...signature.RPCOption) (sigkms.SignerVerifier, error) {
		stubsMu.Lock()
		s := stubs[strings.TrimPrefix(ref, "failkms://")]
		stubsMu.Unlock()
		if s == nil {
			return nil, errors.New("no such stub")
		}
		if s.getErr != nil {
			return nil, s.getErr
		}
		return s, nil
	})
}

// stub is a provider SignerVerifier whose failures the test chooses.
type stub struct {
	sigkms.SignerVerifier // nil: methods the package must not call panic

	getErr error
	pubErr error
	pub    crypto.PublicKey
	sign   func(ctx context.Context, digest []byte) ([]byte, error)
}

func (s *stub) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return s.pub, s.pubErr
}

func (s *stub) SignMessage(_ io.Reader, opts ...signature.SignOption) ([]byte, error) {
	ctx := context.Background()
	var digest []byte
	for _, o := range opts {
		o.ApplyContext(&ctx)
		o.ApplyDigest(&digest)
	}
	return s.sign(ctx, digest)
}

var (
	stubsMu sync.Mutex
	stubs   = map[string]*stub{}
)

func addStub(t *testing.T, s *stub) string {
	t.Helper()
	name := strings.ReplaceAll(t.Name(), "/", "-")
	stubsMu.Lock()
	stubs[name] = s
	stubsMu.Unlock()
	t.Cleanup(func() {
		stubsMu.Lock()
		delete(stubs, name)
		stubsMu.Unlock()
	})
	return "failkms://" + name
}

func genKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func openFake(t *testing.T, uri string, priv crypto.PrivateKey) (keys.Key, error) {
	t.Helper()
	ctx := context.Background()
	if priv != nil {
		ctx = context.WithValue(ctx, fake.KmsCtxKey{}, priv)
	}
	return Open(ctx, uri)
}

func TestConformanceFake(t *testing.T) {
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		t.Run(c.Params().Name, func(t *testing.T) {
			priv := genKey(t, c)
			keystest.Run(t, func(t *testing.T) keys.Key {
				k, err := openFake(t, "fakekms://key", priv)
				if err != nil {
					t.Fatal(err)
				}
				if !priv.PublicKey.Equal(k.Public()) {
					t.Fatal("Public() is not the provider's key")
				}
				return k
			})
		})
	}
}

func TestUnsupportedKeys(t *testing.T) {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		uri  string
		priv crypto.PrivateKey
	}{
		{"P-384 on a cloud service", "fakecloud://key", genKey(t, elliptic.P384())},
		{"P-224", "fakekms://key", genKey(t, elliptic.P224())},
		{"Ed25519", "fakekms://key", edPriv},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := openFake(t, tc.uri, tc.priv)
			if !errors.Is(err, keys.ErrUnsupportedKey) {
				if k != nil {
					_ = k.Close()
				}
				t.Fatalf("Open: got %v, want ErrUnsupportedKey", err)
			}
		})
	}
	// P-256 is fine on a cloud service.
	k, err := openFake(t, "fakecloud://key", genKey(t, elliptic.P256()))
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Close()
}

func TestBadURIs(t *testing.T) {
	for _, tc := range []struct {
		uri    string
		scheme bool // wants ErrUnsupportedScheme; otherwise a syntax error
	}{
		{"", true},
		{"no-scheme", true},
		{"file:/etc/key.pem", true},
		{"openbao://key", true},
		{"mykms://key", true}, // never a sigstore-kms-mykms plugin
		{"AWSKMS:///alias/key", false},
		{"awskms://", false},
		{"awskms:///not-a-key-id", false},
		{"awskms:alias/key", false},
		{"gcpkms://projects/p/locations/l/keyRings/r", false},
		{"gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/extra/1/2", false},
		{"azurekms://vault", false},
		{"azurekms://vault.vault.azure.net/key/Version/extra", false},
		{"hashivault://", false},
		{"hashivault://a/b", false},
		{"hashivault://key?x=1", false},
	} {
		k, err := Open(context.Background(), tc.uri)
		if err == nil {
			_ = k.Close()
			t.Errorf("Open(%q) succeeded", tc.uri)
			continue
		}
		if got := errors.Is(err, keys.ErrUnsupportedScheme); got != tc.scheme {
			t.Errorf("Open(%q): %v; ErrUnsupportedScheme %v, want %v", tc.uri, err, got, tc.scheme)
		}
		if errors.Is(err, keys.ErrBackendUnavailable) {
			t.Errorf("Open(%q): %v: a bad URI is not a backend failure", tc.uri, err)
		}
	}
}

func TestValidURIsReachProvider(t *testing.T) {
	// Well-formed URIs of every scheme pass the syntax check; what fails
	// after it (no credentials, no network in tests) is the backend. Only
	// Vault is tried: without VAULT_ADDR its provider fails at once,
	// without touching the network.
	t.Setenv("VAULT_ADDR", "")
	t.Setenv("BAO_ADDR", "")
	for _, uri := range []string{
		"awskms:///1234abcd-12ab-34cd-56ef-1234567890ab",
		"awskms://localhost:4566/alias/signer",
		"awskms:///arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k",
		"gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k/versions/1",
		"azurekms://myvault.vault.azure.net/signer",
		"hashivault://signer",
	} {
		p := providers[keys.Scheme(uri)]
		if err := p.validRef(uri); err != nil {
			t.Errorf("%s: %v", uri, err)
		}
	}
	_, err := Open(context.Background(), "hashivault://signer")
	if !errors.Is(err, keys.ErrBackendUnavailable) {
		t.Errorf("Open without VAULT_ADDR: got %v, want ErrBackendUnavailable", err)
	}
}

func TestBackendFailures(t *testing.T) {
	priv := genKey(t, elliptic.P256())
	other := genKey(t, elliptic.P256())
	digest := sha256.Sum256([]byte("msg"))
	boom := errors.New("ThrottlingException: rate exceeded")

	t.Run("Get", func(t *testing.T) {
		uri := addStub(t, &stub{getErr: boom})
		_, err := Open(context.Background(), uri)
		if !errors.Is(err, keys.ErrBackendUnavailable) || !errors.Is(err, boom) {
			t.Fatalf("got %v, want ErrBackendUnavailable wrapping the provider's error", err)
		}
	})
	t.Run("PublicKey", func(t *testing.T) {
		uri := addStub(t, &stub{pubErr: boom})
		_, err := Open(context.Background(), uri)
		if !errors.Is(err, keys.ErrBackendUnavailable) || !errors.Is(err, boom) {
			t.Fatalf("got %v, want ErrBackendUnavailable wrapping the provider's error", err)
		}
	})
	sign := func(t *testing.T, f func(ctx context.Context, digest []byte) ([]byte, error)) keys.Key {
		t.Helper()
		k, err := Open(context.Background(), addStub(t, &stub{pub: &priv.PublicKey, sign: f}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k.Close() })
		return k
	}
	t.Run("Sign", func(t *testing.T) {
		k := sign(t, func(context.Context, []byte) ([]byte, error) { return nil, boom })
		_, err := k.Sign(nil, digest[:], crypto.SHA256)
		if !errors.Is(err, keys.ErrBackendUnavailable) || !errors.Is(err, boom) {
			t.Fatalf("got %v, want ErrBackendUnavailable wrapping the provider's error", err)
		}
	})
	t.Run("WrongSignature", func(t *testing.T) {
		// The key behind the URI was replaced after Open.
		k := sign(t, func(_ context.Context, d []byte) ([]byte, error) {
			return ecdsa.SignASN1(rand.Reader, other, d)
		})
		_, err := k.Sign(nil, digest[:], crypto.SHA256)
		if !errors.Is(err, keys.ErrBackendUnavailable) {
			t.Fatalf("got %v, want ErrBackendUnavailable", err)
		}
	})
	t.Run("Context", func(t *testing.T) {
		gotCtx := make(chan bool, 1)
		release := make(chan struct{})
		defer close(release)
		k := sign(t, func(ctx context.Context, d []byte) ([]byte, error) {
			gotCtx <- ctx.Value(ctxKey{}) == "caller"
			<-release // a provider that ignores ctx
			return ecdsa.SignASN1(rand.Reader, priv, d)
		})
		ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), ctxKey{}, "caller"), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := k.(keys.ContextSigner).SignContext(ctx, digest[:], crypto.SHA256)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want DeadlineExceeded", err)
		}
		if errors.Is(err, keys.ErrBackendUnavailable) {
			t.Errorf("the caller's deadline is not a backend failure: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("SignContext returned after %v", d)
		}
		if !<-gotCtx {
			t.Error("the provider did not get the caller's ctx")
		}
	})
	t.Run("Success", func(t *testing.T) {
		k := sign(t, func(_ context.Context, d []byte) ([]byte, error) {
			return ecdsa.SignASN1(rand.Reader, priv, d)
		})
		sig, err := keys.SignMessage(context.Background(), k, []byte("msg"))
		if err != nil {
			t.Fatal(err)
		}
		if err := keystest.Verify(k.Public(), []byte("msg"), sig); err != nil {
			t.Fatal(err)
		}
	})
}

type ctxKey struct{}
