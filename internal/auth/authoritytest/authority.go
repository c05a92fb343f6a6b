package authoritytest

import (
	"crypto"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stellaops/signer-agent/internal/fsutil"
)

// Defaults of minted tokens.
const (
	Audience     = "signer"
	Scope        = "signer.sign"
	Tenant       = "tenant-a"
	Installation = "node-1"
	Subject      = "scanner-1"
	TTL          = 5 * time.Minute
)

// Key is an issuer key.
type Key struct {
	ID     string
	Alg    string
	Signer crypto.Signer
}

// Public is the key's public half.
func (k *Key) Public() crypto.PublicKey { return k.Signer.Public() }

// Authority is a test OIDC issuer. Its Issuer is the URL of its server
// (http://127.0.0.1:port), which serves /.well-known/openid-configuration
// and /jwks.json; JWKSFile holds the same JWKS, rewritten by atomic rename
// on every change.
type Authority struct {
	Issuer   string
	JWKSFile string
	Clock    *Clock

	// Down makes the server answer 503 to everything (issuer unreachable).
	Down atomic.Bool

	t        testing.TB
	srv      *httptest.Server
	jwksHits atomic.Int64
	discHits atomic.Int64

	mu        sync.Mutex
	keys      map[string]*Key
	published []string // kids in JWKS order
	current   string
	override  []byte
	serial    int
}

// Option configures New.
type Option func(*options)

type options struct {
	algs  []string
	clock *Clock
}

// WithKeys sets the algorithms of the initial keys, all published; the first
// signs by default. The default is one ES256 key.
func WithKeys(algs ...string) Option { return func(o *options) { o.algs = algs } }

// WithClock sets the clock used for default claims (default NewClock(Epoch)).
func WithClock(c *Clock) Option { return func(o *options) { o.clock = c } }

// New starts an Authority; it stops with the test.
func New(t testing.TB, opts ...Option) *Authority {
	t.Helper()
	o := options{algs: []string{"ES256"}}
	for _, f := range opts {
		f(&o)
	}
	if o.clock == nil {
		o.clock = NewClock(time.Time{})
	}
	a := &Authority{
		t:        t,
		Clock:    o.clock,
		JWKSFile: filepath.Join(t.TempDir(), "jwks.json"),
		keys:     map[string]*Key{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if a.Down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		a.discHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": a.Issuer, "jwks_uri": a.Issuer + "/jwks.json"})
	})
	mux.HandleFunc("GET /jwks.json", func(w http.ResponseWriter, r *http.Request) {
		if a.Down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		a.jwksHits.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(a.JWKS())
	})
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	a.Issuer = a.srv.URL
	for i, alg := range o.algs {
		k := a.AddKey(alg)
		if i == 0 {
			a.mu.Lock()
			a.current = k.ID
			a.mu.Unlock()
		}
	}
	a.writeFile()
	return a
}

// AddKey generates a key for alg and publishes it without making it the
// signing key.
func (a *Authority) AddKey(alg string) *Key {
	a.t.Helper()
	s, err := GenerateKey(alg)
	if err != nil {
		a.t.Fatal(err)
	}
	a.mu.Lock()
	a.serial++
	k := &Key{ID: fmt.Sprintf("%s-%d", strings.ToLower(alg), a.serial), Alg: alg, Signer: s}
	a.keys[k.ID] = k
	a.published = append(a.published, k.ID)
	a.mu.Unlock()
	a.writeFile()
	return k
}

// Rotate publishes a new key for alg and makes it the signing key; the old
// one stays published until Retire.
func (a *Authority) Rotate(alg string) *Key {
	k := a.AddKey(alg)
	a.mu.Lock()
	a.current = k.ID
	a.mu.Unlock()
	return k
}

// Retire removes kid from the JWKS; Mint can still sign with it.
func (a *Authority) Retire(kid string) {
	a.mu.Lock()
	for i, id := range a.published {
		if id == kid {
			a.published = append(a.published[:i:i], a.published[i+1:]...)
			break
		}
	}
	a.mu.Unlock()
	a.writeFile()
}

// Current is the default signing key.
func (a *Authority) Current() *Key {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.keys[a.current]
}

// Key returns the key kid (published or retired), or nil.
func (a *Authority) Key(kid string) *Key {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.keys[kid]
}

// ServeJWKS replaces the served and written JWKS by raw bytes (nil goes
// back to the generated one); for malformed or hostile JWKS tests.
func (a *Authority) ServeJWKS(raw []byte) {
	a.mu.Lock()
	a.override = raw
	a.mu.Unlock()
	a.writeFile()
}

// JWKS is the current JWKS document.
func (a *Authority) JWKS() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.override != nil {
		return a.override
	}
	set := jose.JSONWebKeySet{}
	for _, id := range a.published {
		k := a.keys[id]
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: k.ID, Algorithm: k.Alg, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic(err)
	}
	return b
}

// JWKSFetches counts the JWKS requests served (not while Down).
func (a *Authority) JWKSFetches() int { return int(a.jwksHits.Load()) }

// DiscoveryFetches counts the discovery requests served (not while Down).
func (a *Authority) DiscoveryFetches() int { return int(a.discHits.Load()) }

// writeFile replaces JWKSFile atomically (fsutil.WriteFileAtomic), as a
// deployment tool would.
func (a *Authority) writeFile() {
	if a.JWKSFile == "" {
		return
	}
	if err := fsutil.WriteFileAtomic(a.JWKSFile, a.JWKS(), 0o600); err != nil {
		a.t.Fatal(err)
	}
}

// Claims are valid default claims at the Authority's clock, bound to the
// DPoP key with thumbprint jkt: iss, sub, aud, iat, nbf, exp (TTL), jti,
// scope, tid, inst, cnf.jkt.
func (a *Authority) Claims(jkt string) map[string]any {
	now := a.Clock.Now()
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	return map[string]any{
		"iss":   a.Issuer,
		"sub":   Subject,
		"aud":   Audience,
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(TTL).Unix(),
		"jti":   enc.EncodeToString(jti[:]),
		"scope": Scope,
		"tid":   Tenant,
		"inst":  Installation,
		"cnf":   map[string]any{"jkt": jkt},
	}
}

// MintOptions shape a minted token.
type MintOptions struct {
	// KeyID selects the signing key (default Current) and is the header kid.
	KeyID string
	// NoKID leaves kid out of the header.
	NoKID bool
	// Alg overrides the header alg; "none" and HS* change how the token is
	// signed (see SignJWS). Default: the key's alg.
	Alg string
	// Secret is the HMAC secret for HS* (default: the PEM of the key's
	// public key, the algorithm-confusion attack).
	Secret []byte
	// Header entries override the header; a nil value deletes the entry.
	Header map[string]any
}

// Mint signs claims as a token (header typ at+jwt). It fails the test on
// error.
func (a *Authority) Mint(claims map[string]any, opts MintOptions) string {
	a.t.Helper()
	k := a.Current()
	if opts.KeyID != "" {
		if k = a.Key(opts.KeyID); k == nil {
			a.t.Fatalf("authoritytest: no key %q", opts.KeyID)
		}
	}
	hdr := map[string]any{"typ": "at+jwt", "alg": k.Alg, "kid": k.ID}
	if opts.NoKID {
		delete(hdr, "kid")
	}
	if opts.Alg != "" {
		hdr["alg"] = opts.Alg
	}
	for name, v := range opts.Header {
		if v == nil {
			delete(hdr, name)
		} else {
			hdr[name] = v
		}
	}
	secret := opts.Secret
	if secret == nil {
		secret = PublicKeyPEM(k.Public())
	}
	s, err := SignJWS(hdr, maps.Clone(claims), k.Signer, secret)
	if err != nil {
		a.t.Fatal(err)
	}
	return s
}

// MintFor mints a default token bound to dpopKey.
func (a *Authority) MintFor(dpopKey crypto.PublicKey) string {
	a.t.Helper()
	return a.Mint(a.Claims(Thumbprint(dpopKey)), MintOptions{})
}
