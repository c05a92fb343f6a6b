package sigstack

import (
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stellaops/signer-agent/internal/auth/authoritytest"
)

// Defaults of identity tokens the Issuer mints for Fulcio.
const (
	// Audience is what Fulcio requires of identity tokens.
	Audience = "sigstore"
	// Email is the identity tokens carry by default; Fulcio's email
	// issuer type puts it in the certificate's SAN.
	Email = "signer-agent@node-1.example"
	// ClientID and ClientSecret are the client credentials the token
	// endpoint accepts.
	ClientID     = "signer-agent-node-1"
	ClientSecret = "client-secret-for-tests"
)

// Issuer is an OIDC issuer Fulcio can discover over plain HTTP on
// 127.0.0.1: /.well-known/openid-configuration (with the signing
// algorithm, which go-oidc needs for anything but RS256), /jwks.json, and
// a client_credentials /token endpoint that mints identity tokens with
// aud=sigstore, as the Authority does for an agent's keyless identity.
// It reuses authoritytest's key generation and JWS signing.
type Issuer struct {
	URL string
	// TokenRequests counts the token endpoint's answers.
	TokenRequests atomic.Int64
	// Down makes every endpoint answer 503.
	Down atomic.Bool

	t   TB
	srv *httptest.Server

	mu  sync.Mutex
	key crypto.Signer
	kid string
	ttl time.Duration
}

// NewIssuer starts an Issuer; it stops with the test.
func NewIssuer(t TB) *Issuer {
	t.Helper()
	key, err := authoritytest.GenerateKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	is := &Issuer{t: t, key: key, kid: "sigstack-es256", ttl: 10 * time.Minute}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", is.discovery)
	mux.HandleFunc("GET /jwks.json", is.jwks)
	mux.HandleFunc("POST /token", is.token)
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	is.URL = is.srv.URL
	return is
}

// SetTTL sets the lifetime of tokens the token endpoint mints.
func (is *Issuer) SetTTL(d time.Duration) {
	is.mu.Lock()
	is.ttl = d
	is.mu.Unlock()
}

func (is *Issuer) down(w http.ResponseWriter) bool {
	if is.Down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	}
	return false
}

func (is *Issuer) discovery(w http.ResponseWriter, _ *http.Request) {
	if is.down(w) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                is.URL,
		"jwks_uri":                              is.URL + "/jwks.json",
		"token_endpoint":                        is.URL + "/token",
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"grant_types_supported":                 []string{"client_credentials"},
	})
}

func (is *Issuer) jwks(w http.ResponseWriter, _ *http.Request) {
	if is.down(w) {
		return
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: is.key.Public(), KeyID: is.kid, Algorithm: "ES256", Use: "sig"}}}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_ = json.NewEncoder(w).Encode(set)
}

// token is the client_credentials grant (RFC 6749 §4.4) with client
// authentication by HTTP Basic or form parameters, and an audience
// parameter that must be "sigstore".
func (is *Issuer) token(w http.ResponseWriter, r *http.Request) {
	if is.down(w) {
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case r.PostForm.Get("grant_type") != "client_credentials":
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"unsupported_grant_type"}`))
		return
	case id != ClientID || secret != ClientSecret:
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
		return
	case r.PostForm.Get("audience") != Audience:
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_target"}`))
		return
	}
	is.TokenRequests.Add(1)
	is.mu.Lock()
	ttl := is.ttl
	is.mu.Unlock()
	tok := is.Mint(Email, time.Now(), ttl)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok, "id_token": tok, "token_type": "Bearer", "expires_in": int(ttl.Seconds()),
	})
}

// Mint signs an identity token for email, issued at iat and valid for
// ttl (which may be negative: an expired token).
func (is *Issuer) Mint(email string, iat time.Time, ttl time.Duration) string {
	is.t.Helper()
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	claims := map[string]any{
		"iss":            is.URL,
		"sub":            email,
		"aud":            Audience,
		"iat":            iat.Unix(),
		"nbf":            iat.Unix(),
		"exp":            iat.Add(ttl).Unix(),
		"jti":            base64.RawURLEncoding.EncodeToString(jti[:]),
		"email":          email,
		"email_verified": true,
	}
	hdr := map[string]any{"typ": "JWT", "alg": "ES256", "kid": is.kid}
	s, err := authoritytest.SignJWS(hdr, claims, is.key, nil)
	if err != nil {
		is.t.Fatal(err)
	}
	return s
}
