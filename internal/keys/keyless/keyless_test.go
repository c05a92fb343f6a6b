package keyless_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/keyless"
	"github.com/stellaops/signer-agent/internal/keys/keystest"
)

// fakeToken is an unsigned JWT with the given exp (the agent never
// verifies its own token; Fulcio does).
func fakeToken(exp time.Time) string {
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"iss": "https://issuer.example", "sub": "agent@example", "email": "agent@example", "email_verified": true, "exp": exp.Unix()})
	return enc.EncodeToString([]byte(`{"alg":"ES256"}`)) + "." + enc.EncodeToString(claims) + ".c2ln"
}

// fakeFulcio answers /api/v2/signingCert with a leaf from its own CA, or
// misbehaves as mode says; it serves its trust bundle.
type fakeFulcio struct {
	*httptest.Server
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	mode  atomic.Value // string
	calls atomic.Int64
}

var oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}

func newFakeFulcio(t *testing.T) *fakeFulcio {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake fulcio"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(der)
	f := &fakeFulcio{ca: ca, caKey: caKey}
	f.mode.Store("ok")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2/trustBundle", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"chains": []any{map[string]any{"certificates": []string{pemCert(ca.Raw)}}}})
	})
	mux.HandleFunc("POST /api/v2/signingCert", f.signingCert)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func pemCert(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func (f *fakeFulcio) signingCert(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	var req struct {
		PublicKeyRequest struct {
			PublicKey struct{ Content string } `json:"publicKey"`
		} `json:"publicKeyRequest"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	blk, _ := pem.Decode([]byte(req.PublicKeyRequest.PublicKey.Content))
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		http.Error(w, "bad key", http.StatusBadRequest)
		return
	}
	signer, issuer := crypto.Signer(f.caKey), f.ca
	email := []string{"agent@example"}
	switch f.mode.Load().(string) {
	case "unauthorized":
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	case "other-key":
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pub = &k.PublicKey
	case "other-ca":
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		signer = other
		issuer = &x509.Certificate{Subject: pkix.Name{CommonName: "someone else"}, PublicKey: &other.PublicKey}
	case "no-san":
		email = nil
	case "garbage":
		_ = json.NewEncoder(w).Encode(map[string]any{"signedCertificateEmbeddedSct": map[string]any{"chain": map[string]any{"certificates": []string{"not a certificate"}}}})
		return
	}
	issuerExt, _ := asn1.MarshalWithParams("https://issuer.example", "utf8")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), NotBefore: time.Now().Add(-time.Second), NotAfter: time.Now().Add(10 * time.Minute),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, EmailAddresses: email,
		ExtraExtensions: []pkix.Extension{{Id: oidIssuerV2, Value: issuerExt}}}
	if issuer != f.ca {
		issuer.SubjectKeyId = []byte{1}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, pub, signer)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"signedCertificateEmbeddedSct": map[string]any{"chain": map[string]any{"certificates": []string{pemCert(der), pemCert(f.ca.Raw)}}}})
}

func newSigner(t *testing.T, f *fakeFulcio, mod func(*keyless.Config)) *keyless.Signer {
	t.Helper()
	cfg := keyless.Config{FulcioURL: f.URL, TSAURL: "http://127.0.0.1:1/tsa", Identity: keyless.StaticToken(fakeToken(time.Now().Add(time.Hour)))}
	if mod != nil {
		mod(&cfg)
	}
	s, err := keyless.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance: the ephemeral certified key passes the key suite.
func TestConformance(t *testing.T) {
	f := newFakeFulcio(t)
	s := newSigner(t, f, nil)
	keystest.Run(t, func(t *testing.T) keys.Key {
		c, err := s.Certify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return c.Key
	})
}

// TestCertify: a leaf that certifies the key and chains to Fulcio's CA is
// accepted with its identity and issuer; every misbehaviour of Fulcio is
// ErrFulcioUnavailable (a refused token ErrIdentityUnavailable), and the
// key is never handed out.
func TestCertify(t *testing.T) {
	f := newFakeFulcio(t)
	s := newSigner(t, f, nil)
	c, err := s.Certify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity != "agent@example" || c.Issuer != "https://issuer.example" || len(c.Chain) != 2 {
		t.Fatalf("certificate %+v", c)
	}
	for _, tc := range []struct{ mode string }{{"other-key"}, {"other-ca"}, {"no-san"}, {"garbage"}} {
		t.Run(tc.mode, func(t *testing.T) {
			f.mode.Store(tc.mode)
			defer f.mode.Store("ok")
			c, err := s.Certify(context.Background())
			if !errors.Is(err, keyless.ErrFulcioUnavailable) || !errors.Is(err, keys.ErrBackendUnavailable) || c != nil {
				t.Fatalf("got %v, %v", c, err)
			}
		})
	}
	t.Run("token refused", func(t *testing.T) {
		f.mode.Store("unauthorized")
		defer f.mode.Store("ok")
		if _, err := s.Certify(context.Background()); !errors.Is(err, keyless.ErrIdentityUnavailable) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("canceled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.Certify(ctx); err == nil {
			t.Fatal("certified under a canceled context")
		}
	})
}

// TestReuseWindow: with a window, requests share a certificate until the
// window (on a fake clock) ends; without, every request is new.
func TestReuseWindow(t *testing.T) {
	f := newFakeFulcio(t)
	now := time.Now()
	clock := func() time.Time { return now }
	s := newSigner(t, f, func(c *keyless.Config) { c.ReuseWindow = time.Minute; c.Now = clock })
	a, _ := s.Certify(context.Background())
	b, _ := s.Certify(context.Background())
	if a != b || f.calls.Load() != 1 {
		t.Fatalf("not reused: %d calls", f.calls.Load())
	}
	a.Close() // harmless for a shared certificate
	if _, err := keys.SignMessage(context.Background(), b.Key, []byte("x")); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	if c, _ := s.Certify(context.Background()); c == a || f.calls.Load() != 2 {
		t.Fatal("reused past the window")
	}
	fresh := newSigner(t, f, nil)
	x, _ := fresh.Certify(context.Background())
	y, _ := fresh.Certify(context.Background())
	if x == y || x.Key.Public().(*ecdsa.PublicKey).Equal(y.Key.Public()) {
		t.Fatal("a key was reused without a window")
	}
	if _, err := keyless.New(keyless.Config{FulcioURL: f.URL, TSAURL: f.URL, Identity: keyless.StaticToken("x"), ReuseWindow: time.Hour}); err == nil {
		t.Fatal("a reuse window over the maximum was accepted")
	}
}

// TestFileToken: read again when the file changes; expired, missing,
// malformed and oversized tokens are ErrIdentityUnavailable.
func TestFileToken(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	now := time.Now()
	ft := &keyless.FileToken{Path: p, Now: func() time.Time { return now }}
	write := func(s string) {
		tmp := p + ".tmp"
		os.WriteFile(tmp, []byte(s), 0o600)
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	first := fakeToken(now.Add(time.Hour))
	write(first + "\n")
	if got, err := ft.IdentityToken(context.Background()); err != nil || got != first {
		t.Fatalf("got %q, %v", got, err)
	}
	second := fakeToken(now.Add(2 * time.Hour))
	write(second)
	if got, _ := ft.IdentityToken(context.Background()); got != second {
		t.Fatal("the rotated file was not read again")
	}
	now = now.Add(2*time.Hour - keyless.ExpiryMargin)
	if _, err := ft.IdentityToken(context.Background()); !errors.Is(err, keyless.ErrIdentityExpired) || !errors.Is(err, keyless.ErrIdentityUnavailable) {
		t.Fatalf("token within the margin of its expiry: %v", err)
	}
	for name, content := range map[string]string{
		"not a JWT":  "hello",
		"no exp":     base64.RawURLEncoding.EncodeToString([]byte(`{}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x"}`)) + ".s",
		"bad base64": "a.!!!.c",
		"oversized":  strings.Repeat("a", 70<<10),
	} {
		t.Run(name, func(t *testing.T) {
			write(content)
			if _, err := ft.IdentityToken(context.Background()); !errors.Is(err, keyless.ErrIdentityUnavailable) || strings.Contains(err.Error(), content[:1]+content[1:min(len(content), 20)]) && len(content) > 20 {
				t.Fatalf("got %v", err)
			}
		})
	}
	os.Remove(p)
	if _, err := ft.IdentityToken(context.Background()); !errors.Is(err, keyless.ErrIdentityUnavailable) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestNewRefuses: configuration mistakes are refused at New.
func TestNewRefuses(t *testing.T) {
	ok := keyless.Config{FulcioURL: "https://fulcio.example", TSAURL: "https://tsa.example/api/v1/timestamp", Identity: keyless.StaticToken("x")}
	for name, mod := range map[string]func(*keyless.Config){
		"no Fulcio":   func(c *keyless.Config) { c.FulcioURL = "" },
		"no TSA":      func(c *keyless.Config) { c.TSAURL = "" },
		"no identity": func(c *keyless.Config) { c.Identity = nil },
		"not a URL":   func(c *keyless.Config) { c.FulcioURL = "fulcio.example" },
		"negative":    func(c *keyless.Config) { c.ReuseWindow = -time.Second },
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			mod(&c)
			if _, err := keyless.New(c); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := keyless.New(ok); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseTokenClaims(f *testing.F) {
	f.Add(fakeToken(time.Unix(1767225600, 0)))
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjEuNWUxMH0.c2ln")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := keyless.ParseTokenClaims(tok)
		if err == nil && c.Expiry.IsZero() {
			t.Fatal("accepted a token without an expiry")
		}
	})
}

func FuzzParseTrustBundle(f *testing.F) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0), IsCA: true, BasicConstraintsValid: true}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	seed, _ := json.Marshal(map[string]any{"chains": []any{map[string]any{"certificates": []string{pemCert(der)}}}})
	f.Add(seed)
	f.Add([]byte(`{"chains":[]}`))
	f.Add([]byte(`{"chains":[{"certificates":["-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		chain, err := keyless.ParseTrustBundle(b)
		if err == nil && len(chain) == 0 {
			t.Fatal("accepted an empty chain")
		}
	})
}

// TestCheck: readiness sees a stale token and an unreachable Fulcio.
func TestCheck(t *testing.T) {
	f := newFakeFulcio(t)
	if err := newSigner(t, f, nil).Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	stale := newSigner(t, f, func(c *keyless.Config) { c.Identity = keyless.StaticToken(fakeToken(time.Now().Add(-time.Minute))) })
	if err := stale.Check(context.Background()); !errors.Is(err, keyless.ErrIdentityExpired) {
		t.Fatalf("stale token: %v", err)
	}
	down := newSigner(t, f, func(c *keyless.Config) { c.FulcioURL = "http://127.0.0.1:1" })
	if err := down.Check(context.Background()); !errors.Is(err, keyless.ErrFulcioUnavailable) {
		t.Fatalf("Fulcio down: %v", err)
	}
}

// TestFromConfig: the agent's configuration builds a Signer; a missing
// secret file is refused.
func TestFromConfig(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	k := config.Keyless{FulcioURL: "https://fulcio.example", TSAURL: "https://tsa.example/api/v1/timestamp",
		Identity: config.KeylessIdentity{ClientCredentials: &config.KeylessClientCredentials{TokenURL: "https://a.example/token", ClientID: "c", ClientSecretFile: secret}}}
	if _, err := keyless.FromConfig(k); err != nil {
		t.Fatal(err)
	}
	k.Identity.ClientCredentials.ClientSecretFile = secret + ".missing"
	if _, err := keyless.FromConfig(k); err == nil {
		t.Fatal("missing secret accepted")
	}
	k.Identity = config.KeylessIdentity{TokenFile: filepath.Join(dir, "token")}
	if _, err := keyless.FromConfig(k); err != nil {
		t.Fatal(err)
	}
	if _, err := keyless.FromConfig(config.Keyless{}); err == nil {
		t.Fatal("unconfigured keyless accepted")
	}
}

// TestCloseLeavesNoConnections: a Signer's connections to Fulcio (kept
// alive between requests) are its own and are closed by Close: no
// connection goroutine of the client (nor of the server serving it)
// survives.
func TestCloseLeavesNoConnections(t *testing.T) {
	f := newFakeFulcio(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, err := keyless.New(keyless.Config{FulcioURL: f.URL, TSAURL: "http://127.0.0.1:1/tsa", Identity: keyless.StaticToken(fakeToken(time.Now().Add(time.Hour)))})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		c, err := s.Certify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
