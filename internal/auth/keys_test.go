package auth

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/auth/authoritytest"
	"github.com/stellaops/signer-agent/proto"
)

func verify(f *fixture, tok string) error {
	_, err := f.v.VerifyToken(context.Background(), tok)
	return err
}

// TestRotation: discovery form. A new key is picked up by the unknown-kid
// refetch; a retired key's tokens stay valid until they expire, it cannot
// vouch for tokens issued after its retirement, and it is forgotten after
// its deadline.
func TestRotation(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	old := f.a.Current()
	if err := verify(f, f.token(nil, authoritytest.MintOptions{})); err != nil {
		t.Fatal(err)
	}

	// Rotate: the new key's token triggers one refetch and is accepted.
	fetches := f.a.JWKSFetches()
	f.a.Rotate("ES256")
	if err := verify(f, f.token(nil, authoritytest.MintOptions{})); err != nil {
		t.Fatalf("new key: %v", err)
	}
	if got := f.a.JWKSFetches() - fetches; got != 1 {
		t.Fatalf("%d JWKS fetches for the new kid, want 1", got)
	}

	// A token from the old key, issued before the retirement, not yet seen.
	f.clock.Advance(time.Minute)
	pre := f.token(nil, authoritytest.MintOptions{KeyID: old.ID})

	// Retire the old key; the agent notices at its next load.
	f.clock.Advance(10 * time.Second)
	f.a.Retire(old.ID)
	if err := f.v.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	retiredAt := f.clock.Now()
	if st := f.v.Status(); st.Published != 1 || st.Retired != 1 {
		t.Fatalf("status %+v, want 1 published and 1 retired", st)
	}

	f.clock.Advance(time.Minute)
	if err := verify(f, pre); err != nil {
		t.Fatalf("retired key, token issued before retirement: %v", err)
	}
	post := f.token(nil, authoritytest.MintOptions{KeyID: old.ID})
	wantCode(t, verify(f, post), proto.CodeInvalidToken)

	// The pre-retirement token expires as usual (exp + skew).
	f.clock.Set(retiredAt.Add(-10*time.Second + authoritytest.TTL + 31*time.Second))
	wantCode(t, verify(f, pre), proto.CodeInvalidToken)

	// After the deadline (retirement + MaxLifetime + Skew) the key is gone.
	f.clock.Set(retiredAt.Add(DefaultMaxLifetime + DefaultSkew + time.Second))
	if st := f.v.Status(); st.Retired != 0 {
		t.Fatalf("status %+v after the deadline, want no retired key", st)
	}
	late := f.a.Claims(authoritytest.Thumbprint(f.dpop.Public()))
	late["iat"], late["nbf"] = retiredAt.Unix(), retiredAt.Unix()
	late["exp"] = f.clock.Now().Add(time.Minute).Unix()
	wantCode(t, verify(f, f.a.Mint(late, authoritytest.MintOptions{KeyID: old.ID})), proto.CodeInvalidToken)
	// The new key is unaffected.
	if err := verify(f, f.token(nil, authoritytest.MintOptions{})); err != nil {
		t.Fatal(err)
	}
}

// TestRefetchRateLimit: a burst of unknown kids makes at most one JWKS fetch
// per RefetchMinInterval.
func TestRefetchRateLimit(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	burst := func() {
		toks := make([]string, 50)
		for i := range toks {
			toks[i] = f.token(nil, authoritytest.MintOptions{Header: map[string]any{"kid": "unknown-" + strings.Repeat("x", i)}})
		}
		var wg sync.WaitGroup
		for _, tok := range toks {
			wg.Go(func() { wantCode(t, verify(f, tok), proto.CodeInvalidToken) })
		}
		wg.Wait()
	}
	base := f.a.JWKSFetches()
	burst()
	if got := f.a.JWKSFetches() - base; got != 1 {
		t.Fatalf("first burst: %d fetches, want 1", got)
	}
	f.clock.Advance(DefaultRefetchMinInterval - time.Second)
	burst()
	if got := f.a.JWKSFetches() - base; got != 1 {
		t.Fatalf("second burst within the interval: %d fetches in all, want 1", got)
	}
	f.clock.Advance(2 * time.Second)
	burst()
	if got := f.a.JWKSFetches() - base; got != 2 {
		t.Fatalf("burst after the interval: %d fetches in all, want 2", got)
	}
}

// TestIssuerUnreachable: the cached JWKS keeps working while the issuer is
// down, and the failure is visible in Status.
func TestIssuerUnreachable(t *testing.T) {
	var reported []error
	var mu sync.Mutex
	f := newFixture(t, fixtureOpt{cfg: func(c *Config) {
		c.ReportError = func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }
	}})
	f.a.Down.Store(true)
	if err := f.v.Reload(context.Background()); err == nil {
		t.Fatal("Reload succeeded with the issuer down")
	}
	if st := f.v.Status(); st.LastError == nil || st.Published != 1 {
		t.Fatalf("status %+v", st)
	}
	if err := verify(f, f.token(nil, authoritytest.MintOptions{})); err != nil {
		t.Fatalf("cached key while down: %v", err)
	}
	wantCode(t, verify(f, f.token(nil, authoritytest.MintOptions{Header: map[string]any{"kid": "nope"}})), proto.CodeInvalidToken)
	mu.Lock()
	n := len(reported)
	mu.Unlock()
	if n == 0 {
		t.Fatal("no error reported")
	}

	f.a.Down.Store(false)
	if err := f.v.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := f.v.Status(); st.LastError != nil {
		t.Fatalf("status %+v after recovery", st)
	}
}

func TestNewFailsWithoutKeys(t *testing.T) {
	a := authoritytest.New(t)
	a.Down.Store(true)
	if _, err := New(context.Background(), Config{Issuer: a.Issuer, Discovery: true}); err == nil {
		t.Fatal("New succeeded with the issuer down")
	}
	a.Down.Store(false)
	if _, err := New(context.Background(), Config{Issuer: a.Issuer + "/other", Discovery: true}); err == nil {
		t.Fatal("New succeeded with a discovery document for another issuer")
	}
	if _, err := New(context.Background(), Config{Issuer: a.Issuer, JWKSFile: filepath.Join(t.TempDir(), "missing.json")}); err == nil {
		t.Fatal("New succeeded without a JWKS file")
	}
	for name, cfg := range map[string]Config{
		"no issuer":       {JWKSFile: a.JWKSFile},
		"no source":       {Issuer: a.Issuer},
		"two sources":     {Issuer: a.Issuer, JWKSFile: a.JWKSFile, Discovery: true},
		"http issuer":     {Issuer: "http://authority.example", Discovery: true},
		"short nonce key": {Issuer: a.Issuer, Discovery: true, NonceKey: []byte("short")},
	} {
		if _, err := New(context.Background(), cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestJWKSContents: private and symmetric keys fail a JWKS; unusable keys
// are skipped; RSA needs a declared alg.
func TestJWKSContents(t *testing.T) {
	a := authoritytest.New(t, authoritytest.WithKeys("ES256", "RS256"))
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(a.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	ec, rsa := set.Keys[0], set.Keys[1]
	with := func(m map[string]any, k string, v any) map[string]any {
		n := map[string]any{}
		for kk, vv := range m {
			n[kk] = vv
		}
		if v == nil {
			delete(n, k)
		} else {
			n[k] = v
		}
		return n
	}
	priv := authoritytest.PrivateJWK(a.Current().Signer)
	priv["kid"] = a.Current().ID
	for _, tc := range []struct {
		name   string
		keys   []map[string]any
		ok     bool
		usable int
	}{
		{"both", []map[string]any{ec, rsa}, true, 2},
		{"private key", []map[string]any{priv}, false, 0},
		{"private key among public ones", []map[string]any{ec, priv}, false, 0},
		{"symmetric key", []map[string]any{ec, {"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "kid": "h"}}, false, 0},
		{"RSA without alg", []map[string]any{ec, with(rsa, "alg", nil)}, true, 1},
		{"RSA declared RS512", []map[string]any{ec, with(rsa, "alg", "RS512")}, true, 1},
		{"enc key", []map[string]any{ec, with(rsa, "use", "enc")}, true, 1},
		{"EC key declared ES384", []map[string]any{with(ec, "alg", "ES384"), rsa}, true, 1},
		{"unknown kty", []map[string]any{ec, {"kty": "XYZ", "kid": "x"}}, true, 1},
		{"only unusable", []map[string]any{with(rsa, "alg", nil)}, false, 0},
		{"empty", []map[string]any{}, false, 0},
		{"point not on curve", []map[string]any{with(ec, "y", ec["x"])}, false, 0},
	} {
		b, err := json.Marshal(map[string]any{"keys": tc.keys})
		if err != nil {
			t.Fatal(err)
		}
		keys, err := parseJWKS(b)
		if (err == nil) != tc.ok || len(keys) != tc.usable {
			t.Errorf("%s: %d keys, err %v; want ok=%v, %d keys", tc.name, len(keys), err, tc.ok, tc.usable)
		}
	}
	for _, doc := range []string{``, `[]`, `{"keys":{}}`, `{"keys":null}`, `{"keys":[]}{}`, `{"keys":[1]}`, `{"keys":[],"keys":[]}`} {
		if _, err := parseJWKS([]byte(doc)); err == nil {
			t.Errorf("parseJWKS(%q) succeeded", doc)
		}
	}
}

// TestHostileJWKSKeepsKeys: a JWKS with a private key does not replace the
// keys in use.
func TestHostileJWKSKeepsKeys(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	priv := authoritytest.PrivateJWK(f.a.Current().Signer)
	b, _ := json.Marshal(map[string]any{"keys": []any{priv}})
	f.a.ServeJWKS(b)
	if err := f.v.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "private") {
		t.Fatalf("Reload: %v, want a private key error", err)
	}
	if err := verify(f, f.token(nil, authoritytest.MintOptions{})); err != nil {
		t.Fatal(err)
	}
}

func TestRSAAlgMustMatchDeclaration(t *testing.T) {
	f := newFixture(t, fixtureOpt{authority: []authoritytest.Option{authoritytest.WithKeys("RS256")}})
	if err := verify(f, f.token(nil, authoritytest.MintOptions{})); err != nil {
		t.Fatal(err)
	}
	wantCode(t, verify(f, f.token(nil, authoritytest.MintOptions{Alg: "PS256"})), proto.CodeInvalidToken)
	wantCode(t, verify(f, f.token(nil, authoritytest.MintOptions{Alg: "RS384"})), proto.CodeInvalidToken)
	wantCode(t, verify(f, f.token(nil, authoritytest.MintOptions{Alg: "HS256"})), proto.CodeInvalidToken)
}

// TestJWKSFileReload: file form; the JWKS is replaced by atomic rename and
// the watcher loads it (not the unknown-kid refetch, which is spent first).
func TestJWKSFileReload(t *testing.T) {
	var mu sync.Mutex
	var reported []error
	f := newFixture(t, fixtureOpt{file: true, cfg: func(c *Config) {
		c.ReportError = func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }
	}})
	old := f.a.Current()
	// Spend the refetch allowance; the fake clock never advances here.
	wantCode(t, verify(f, f.token(nil, authoritytest.MintOptions{Header: map[string]any{"kid": "nope"}})), proto.CodeInvalidToken)

	f.a.Rotate("ES256") // rewrites the file by atomic rename
	eventually(t, "the rotated JWKS file to load", func() bool { return f.v.Status().Published == 2 })
	if err := verify(f, f.token(nil, authoritytest.MintOptions{})); err != nil {
		t.Fatal(err)
	}

	f.a.Retire(old.ID)
	eventually(t, "the retirement to load", func() bool { st := f.v.Status(); return st.Published == 1 && st.Retired == 1 })
	if err := verify(f, f.token(nil, authoritytest.MintOptions{KeyID: old.ID})); err != nil {
		t.Fatalf("retired key within its deadline: %v", err)
	}

	// A broken file is reported and changes nothing.
	tmp := filepath.Join(filepath.Dir(f.a.JWKSFile), "tmp")
	if err := os.WriteFile(tmp, []byte(`{"keys": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.a.JWKSFile); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the broken file to be reported", func() bool { return f.v.Status().LastError != nil })
	if err := verify(f, f.token(nil, authoritytest.MintOptions{})); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) == 0 {
		t.Fatal("no error reported")
	}
}

// TestTokenCache: one signature check per token; time checks on every use;
// returned claims are copies.
func TestTokenCache(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	tok := f.token(nil, authoritytest.MintOptions{})
	c1, err := f.v.VerifyToken(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	c1.Scopes[0] = "mutated"
	c2, err := f.v.VerifyToken(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.v.sigChecks.Load(); n != 1 {
		t.Fatalf("%d signature checks for one token verified twice, want 1", n)
	}
	if c2.Scopes[0] != "signer.sign" {
		t.Fatal("cached claims were mutated through a returned copy")
	}
	f.clock.Advance(authoritytest.TTL + DefaultSkew) // exp + skew: still valid
	if err := verify(f, tok); err != nil {
		t.Fatal(err)
	}
	if n := f.v.sigChecks.Load(); n != 1 {
		t.Fatalf("%d signature checks, want 1", n)
	}
	f.clock.Advance(time.Second)
	wantCode(t, verify(f, tok), proto.CodeInvalidToken)
}

func TestTokenCacheBounded(t *testing.T) {
	c := newTokenCache(16)
	now := authoritytest.Epoch
	for i := range 100 {
		c.put([32]byte{byte(i)}, &Claims{}, now.Add(time.Hour), now)
		if c.len() > 16 {
			t.Fatalf("cache holds %d entries, max 16", c.len())
		}
	}
	if _, ok := c.get([32]byte{99}, now); !ok {
		t.Fatal("latest entry missing")
	}
	if _, ok := c.get([32]byte{99}, now.Add(2*time.Hour)); ok {
		t.Fatal("expired entry returned")
	}
}
