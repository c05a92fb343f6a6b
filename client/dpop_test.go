package client_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

// testToken looks like an OpTok (a compact JWS); it is never inspected.
const testToken = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzY2FubmVyIiwic2VjcmV0IjoieCJ9.c2lnbmF0dXJlLXNlY3JldA"

// proofClaims are the claims a verified DPoP proof carried.
type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath"`
	Nonce string `json:"nonce"`

	Alg jose.SignatureAlgorithm `json:"-"`
	JKT string                  `json:"-"` // RFC 7638 thumbprint of the embedded jwk
}

// verifyProof checks a request's Authorization and DPoP headers the way
// the agent does (RFC 9449 §4.3), independently of the client's code.
func verifyProof(r *http.Request, token, htuBase string, now time.Time) (*proofClaims, error) {
	if got := r.Header.Values(proto.HeaderAuthorization); len(got) != 1 || got[0] != "DPoP "+token {
		return nil, fmt.Errorf("Authorization = %q, want one DPoP <token>", redactToken(got, token))
	}
	proofs := r.Header.Values(proto.HeaderDPoP)
	if len(proofs) != 1 {
		return nil, fmt.Errorf("%d DPoP headers, want 1", len(proofs))
	}
	jws, err := jose.ParseSigned(proofs[0], []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		return nil, fmt.Errorf("parse proof: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%d signatures", len(jws.Signatures))
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return nil, fmt.Errorf("typ = %q", typ)
	}
	if h.KeyID != "" {
		return nil, fmt.Errorf("kid %q set next to jwk", h.KeyID)
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return nil, fmt.Errorf("jwk missing, invalid or not public: %#v", jwk)
	}
	// The raw header must not carry any private member either.
	rawHeader, err := base64.RawURLEncoding.DecodeString(strings.Split(proofs[0], ".")[0])
	if err != nil {
		return nil, err
	}
	var hdr struct {
		JWK map[string]any `json:"jwk"`
	}
	if err := json.Unmarshal(rawHeader, &hdr); err != nil {
		return nil, err
	}
	if _, ok := hdr.JWK["d"]; ok {
		return nil, errors.New("jwk carries the private key")
	}
	switch k := jwk.Key.(type) {
	case *ecdsa.PublicKey:
		if h.Algorithm != string(jose.ES256) || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("alg %s with an ECDSA %s key", h.Algorithm, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		if h.Algorithm != string(jose.EdDSA) {
			return nil, fmt.Errorf("alg %s with an Ed25519 key", h.Algorithm)
		}
	default:
		return nil, fmt.Errorf("jwk key type %T", k)
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	var c proofClaims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	ath := sha256.Sum256([]byte(token))
	jti, err := base64.RawURLEncoding.DecodeString(c.JTI)
	switch {
	case err != nil || len(jti) < 16:
		return nil, fmt.Errorf("jti %q is not 16+ random bytes in base64url", c.JTI)
	case c.HTM != r.Method:
		return nil, fmt.Errorf("htm = %q, want %q", c.HTM, r.Method)
	case c.HTU != htuBase+r.URL.Path:
		return nil, fmt.Errorf("htu = %q, want %q", c.HTU, htuBase+r.URL.Path)
	case c.IAT < now.Add(-time.Minute).Unix() || c.IAT > now.Add(time.Minute).Unix():
		return nil, fmt.Errorf("iat %d is not close to now (%d)", c.IAT, now.Unix())
	case c.ATH != base64.RawURLEncoding.EncodeToString(ath[:]):
		return nil, fmt.Errorf("ath = %q does not match the token", c.ATH)
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	c.Alg = jose.SignatureAlgorithm(h.Algorithm)
	c.JKT = base64.RawURLEncoding.EncodeToString(tp)
	return &c, nil
}

func redactToken(v []string, token string) string {
	return strings.ReplaceAll(strings.Join(v, ","), token, "<token>")
}

// dpopAgent is a fake agent that verifies every DPoP proof and implements
// nonces: with require set, a proof whose nonce is not the current one gets
// 401 use_dpop_nonce; every response carries the current DPoP-Nonce.
type dpopAgent struct {
	*fakeAgent
	token   string
	htuBase string
	require bool // demand the current nonce
	always  bool // answer use_dpop_nonce to every request
	rotate  bool // issue a new nonce with every response
	then    http.HandlerFunc

	mu     sync.Mutex
	nonce  string // current nonce; "" sends none
	issued int
	jtis   map[string]bool
	proofs []*proofClaims // verified proofs, in arrival order
}

func startDPoPAgent(t *testing.T, d *dpopAgent) *dpopAgent {
	t.Helper()
	if d.token == "" {
		d.token = testToken
	}
	if d.htuBase == "" {
		d.htuBase = client.DefaultHTUBase
	}
	if d.then == nil {
		d.then = answerOK(t)
	}
	d.jtis = map[string]bool{}
	d.fakeAgent = startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := verifyProof(r, d.token, d.htuBase, time.Now())
		d.mu.Lock()
		if err == nil {
			if d.jtis[c.JTI] {
				err = fmt.Errorf("jti %s replayed", c.JTI)
			}
			d.jtis[c.JTI] = true
			d.proofs = append(d.proofs, c)
		}
		needNonce := err == nil && (d.always || d.require && c.Nonce != d.nonce)
		if d.rotate {
			d.issued++
			d.nonce = fmt.Sprintf("nonce-%d.%s", d.issued, strings.Repeat("x", d.issued))
		}
		if d.nonce != "" {
			w.Header().Set(proto.HeaderDPoPNonce, d.nonce)
		}
		d.mu.Unlock()
		switch {
		case err != nil:
			t.Errorf("fake agent: %s %s: invalid DPoP proof: %v", r.Method, r.URL.Path, err)
			w.Header().Set(proto.HeaderWWWAuthenticate, `DPoP error="invalid_dpop_proof"`)
			writeProblem(w, proto.CodeInvalidDPoPProof, err.Error(), "")
		case needNonce:
			w.Header().Set(proto.HeaderWWWAuthenticate, `DPoP error="use_dpop_nonce", error_description="nonce required"`)
			writeProblem(w, proto.CodeUseDPoPNonce, "", "")
		default:
			d.then(w, r)
		}
	})
	return d
}

func (d *dpopAgent) verified() []*proofClaims {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*proofClaims(nil), d.proofs...)
}

// answerOK answers sign, keys and health requests successfully.
func answerOK(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case proto.PathSignDSSE:
			body, _ := io.ReadAll(r.Body)
			if _, err := proto.DecodeSignRequest(body); err != nil {
				t.Errorf("agent cannot decode request: %v", err)
			}
			writeJSON(w, http.StatusOK, signResponseJSON)
		case proto.PathKeys:
			writeJSON(w, http.StatusOK, `{"keys":[]}`)
		case proto.PathHealthz, proto.PathReadyz:
			writeJSON(w, http.StatusOK, `{"status":"ok"}`)
		default:
			writeProblem(w, proto.CodeNotFound, "", "")
		}
	}
}

// opaqueSigner hides the concrete key type, like an HSM or TPM key.
type opaqueSigner struct{ crypto.Signer }

type testKey struct {
	name string
	key  crypto.Signer
	alg  jose.SignatureAlgorithm
}

func testKeys(t *testing.T) []testKey {
	t.Helper()
	p256, err := client.NewDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return []testKey{
		{"P-256", p256, jose.ES256},
		{"Ed25519", ed, jose.EdDSA},
		{"opaque P-256 signer", opaqueSigner{other}, jose.ES256},
	}
}

func newDPoPClient(a *fakeAgent, key crypto.Signer) *client.Client {
	c := newClient(a)
	c.Token = client.StaticToken(testToken)
	c.DPoPKey = key
	return c
}

func TestDPoPProofsAndNonce(t *testing.T) {
	for _, k := range testKeys(t) {
		t.Run(k.name, func(t *testing.T) {
			a := startDPoPAgent(t, &dpopAgent{require: true, nonce: "n0nce-A_1"})
			c := newDPoPClient(a.fakeAgent, k.key)
			defer c.CloseIdleConnections()
			ctx := context.Background()

			// First call: no nonce known → use_dpop_nonce → one transparent retry.
			if _, err := c.SignDSSE(ctx, signRequest()); err != nil {
				t.Fatalf("SignDSSE: %v", err)
			}
			if n := a.count(); n != 2 {
				t.Fatalf("first call made %d requests, want 2 (nonce retry)", n)
			}
			a.mu.Lock()
			first, retry := a.reqs[0], a.reqs[1]
			a.mu.Unlock()
			if !bytes.Equal(first.Body, retry.Body) || len(first.Body) == 0 {
				t.Errorf("retry body differs:\n%s\n%s", first.Body, retry.Body)
			}
			if first.Header.Get(proto.HeaderDPoP) == retry.Header.Get(proto.HeaderDPoP) {
				t.Error("retry reused the proof")
			}

			// Later calls carry the cached nonce: one request each.
			if _, err := c.Keys(ctx); err != nil {
				t.Fatalf("Keys: %v", err)
			}
			if _, err := c.Health(ctx); err != nil {
				t.Fatalf("Health: %v", err)
			}
			if _, err := c.SignDSSE(ctx, signRequest()); err != nil {
				t.Fatalf("SignDSSE: %v", err)
			}
			if n := a.count(); n != 5 {
				t.Errorf("agent received %d requests, want 5 (no extra round trips)", n)
			}

			want, err := client.JWKThumbprint(k.key.Public())
			if err != nil {
				t.Fatal(err)
			}
			proofs := a.verified()
			if len(proofs) != 5 {
				t.Fatalf("%d verified proofs, want 5", len(proofs))
			}
			wantReq := []struct{ htm, path, nonce string }{
				{http.MethodPost, proto.PathSignDSSE, ""},
				{http.MethodPost, proto.PathSignDSSE, "n0nce-A_1"},
				{http.MethodGet, proto.PathKeys, "n0nce-A_1"},
				{http.MethodGet, proto.PathHealthz, "n0nce-A_1"},
				{http.MethodPost, proto.PathSignDSSE, "n0nce-A_1"},
			}
			for i, p := range proofs {
				w := wantReq[i]
				if p.HTM != w.htm || p.HTU != "http://signer-agent"+w.path || p.Nonce != w.nonce {
					t.Errorf("proof %d: htm %s htu %s nonce %q; want %s %s %q", i, p.HTM, p.HTU, p.Nonce, w.htm, w.path, w.nonce)
				}
				if p.Alg != k.alg {
					t.Errorf("proof %d: alg %s, want %s", i, p.Alg, k.alg)
				}
				if p.JKT != want {
					t.Errorf("proof %d: jwk thumbprint %s, want %s (stable, = JWKThumbprint)", i, p.JKT, want)
				}
			}
		})
	}
}

func TestDPoPNonceRetriedOnlyOnce(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		t.Run(fmt.Sprintf("rotate=%v", rotate), func(t *testing.T) {
			a := startDPoPAgent(t, &dpopAgent{always: true, rotate: rotate, nonce: "fixed"})
			c := newDPoPClient(a.fakeAgent, testKeys(t)[0].key)
			_, err := c.SignDSSE(context.Background(), signRequest())
			if !errors.Is(err, client.ErrUseDPoPNonce) {
				t.Fatalf("err = %v, want use_dpop_nonce", err)
			}
			if n := a.count(); n != 2 {
				t.Errorf("agent received %d requests, want 2 (one retry)", n)
			}
			var e *client.Error
			if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Header.Get(proto.HeaderDPoPNonce) == "" ||
				!strings.Contains(e.Header.Get(proto.HeaderWWWAuthenticate), `error="use_dpop_nonce"`) {
				t.Errorf("error = %+v", e)
			}
			a.mu.Lock()
			if !bytes.Equal(a.reqs[0].Body, a.reqs[1].Body) {
				t.Error("retry body differs")
			}
			a.mu.Unlock()
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error contains the token: %v", err)
			}
		})
	}
}

func TestDPoPNoRetry(t *testing.T) {
	tests := []struct {
		name     string
		nonce    string // DPoP-Nonce header of the answer
		answer   func(w http.ResponseWriter)
		sentinel *client.Error
		noKey    bool // a 429 is retried with an Idempotency-Key (SPEC §4.6): test without one
	}{
		{"invalid_dpop_proof", "n1", func(w http.ResponseWriter) {
			writeProblem(w, proto.CodeInvalidDPoPProof, "replayed jti", "")
		}, client.ErrInvalidDPoPProof, false},
		{"invalid_token", "n1", func(w http.ResponseWriter) {
			writeProblem(w, proto.CodeInvalidToken, "expired", "")
		}, client.ErrInvalidToken, false},
		{"peer_not_allowed", "n1", func(w http.ResponseWriter) {
			writeProblem(w, proto.CodePeerNotAllowed, "", "")
		}, client.ErrPeerNotAllowed, false},
		{"plan_throttled", "n1", func(w http.ResponseWriter) {
			w.Header().Set(proto.HeaderRetryAfter, "1")
			writeProblem(w, proto.CodePlanThrottled, "", "")
		}, client.ErrPlanThrottled, true},
		{"use_dpop_nonce without a nonce", "", func(w http.ResponseWriter) {
			writeProblem(w, proto.CodeUseDPoPNonce, "", "")
		}, client.ErrUseDPoPNonce, false},
		{"use_dpop_nonce with an invalid nonce", "bad nonce", func(w http.ResponseWriter) {
			writeProblem(w, proto.CodeUseDPoPNonce, "", "")
		}, client.ErrUseDPoPNonce, false},
		{"401 not a problem document", "n1", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "use_dpop_nonce")
		}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.nonce != "" {
					w.Header().Set(proto.HeaderDPoPNonce, tt.nonce)
				}
				tt.answer(w)
			})
			c := newDPoPClient(a, testKeys(t)[0].key)
			c.DisableIdempotencyKeys = tt.noKey
			_, err := c.SignDSSE(context.Background(), signRequest())
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *client.Error", err)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("err = %v, want %s", err, tt.sentinel.Code)
			}
			if n := a.count(); n != 1 {
				t.Errorf("agent received %d requests, want 1 (no retry)", n)
			}
		})
	}
}

func TestDPoPNonceLearnedFromEveryResponse(t *testing.T) {
	// The agent does not insist on nonces here; the client must still pick
	// up each DPoP-Nonce, from successes and errors alike.
	steps := []struct {
		sendNonce string // DPoP-Nonce of this response ("" = none)
		fail      bool
		wantNonce string // nonce the request must carry
	}{
		{"a1", false, ""},
		{"", false, "a1"},          // absent header keeps the nonce
		{"b2", true, "a1"},         // learned from an error…
		{"bad nonce", false, "b2"}, // …used next; invalid values are ignored
		{"c3", false, "b2"},
		{"", false, "c3"},
	}
	var mu sync.Mutex
	i := 0
	a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		step := steps[i]
		i++
		mu.Unlock()
		c, err := verifyProof(r, testToken, client.DefaultHTUBase, time.Now())
		if err != nil {
			t.Errorf("step %d: %v", i-1, err)
		} else if c.Nonce != step.wantNonce {
			t.Errorf("step %d: nonce %q, want %q", i-1, c.Nonce, step.wantNonce)
		}
		if step.sendNonce != "" {
			w.Header()[proto.HeaderDPoPNonce] = []string{step.sendNonce}
		}
		if step.fail {
			writeProblem(w, proto.CodeKeyUnavailable, "", "")
			return
		}
		writeJSON(w, http.StatusOK, `{"keys":[]}`)
	})
	c := newDPoPClient(a, testKeys(t)[1].key)
	for j, step := range steps {
		_, err := c.Keys(context.Background())
		if (err != nil) != step.fail {
			t.Errorf("step %d: err = %v", j, err)
		}
	}
	if n := a.count(); n != len(steps) {
		t.Errorf("agent received %d requests, want %d", n, len(steps))
	}
}

func TestDPoPConcurrent(t *testing.T) {
	a := startDPoPAgent(t, &dpopAgent{require: true, nonce: "shared"})
	c := newDPoPClient(a.fakeAgent, testKeys(t)[0].key)
	defer c.CloseIdleConnections()
	const workers, calls = 8, 5
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				var err error
				if w%2 == 0 {
					_, err = c.SignDSSE(context.Background(), signRequest())
				} else {
					_, err = c.Keys(context.Background())
				}
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
				}
			}
		}()
	}
	wg.Wait()
	// At most one nonce retry per call that started before the nonce was
	// known; every proof was verified and no jti repeated (see dpopAgent).
	if n := a.count(); n < workers*calls || n > 2*workers+workers*calls {
		t.Errorf("agent received %d requests for %d calls", n, workers*calls)
	}
}

func TestDPoPWithAuthorizeHook(t *testing.T) {
	a := startDPoPAgent(t, &dpopAgent{require: true, nonce: "n"})
	c := newDPoPClient(a.fakeAgent, testKeys(t)[0].key)
	var mu sync.Mutex
	calls := 0
	c.Authorize = func(req *http.Request) error {
		mu.Lock()
		calls++
		mu.Unlock()
		if !strings.HasPrefix(req.Header.Get(proto.HeaderAuthorization), "DPoP ") || req.Header.Get(proto.HeaderDPoP) == "" {
			t.Error("Authorize runs before the DPoP headers are set")
		}
		req.Header.Set(proto.HeaderTraceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		return nil
	}
	if _, err := c.SignDSSE(context.Background(), signRequest()); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("Authorize called %d times, want 2 (request and nonce retry)", calls)
	}
	if a.last(t).Header.Get(proto.HeaderTraceparent) == "" {
		t.Error("header set by Authorize not sent")
	}
}

func TestHTUBase(t *testing.T) {
	const base = "https://node-7.example:8443"
	a := startDPoPAgent(t, &dpopAgent{htuBase: base})
	c := newDPoPClient(a.fakeAgent, testKeys(t)[1].key)
	c.HTUBase = base + "/" // a trailing slash is dropped
	if _, err := c.Keys(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := a.verified(); len(p) != 1 || p[0].HTU != base+proto.PathKeys {
		t.Errorf("proofs = %+v", p)
	}
}

// failingSource is a TokenSource whose error must be wrapped.
type failingSource struct{ err error }

func (f failingSource) Token(context.Context) (string, error) { return "", f.err }

func TestDPoPConfigErrors(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256 := testKeys(t)[0].key
	errSource := errors.New("authority unreachable")
	tests := []struct {
		name   string
		token  client.TokenSource
		key    crypto.Signer
		base   string
		want   string
		wantIs error
	}{
		{"token without key", client.StaticToken(testToken), nil, "", "DPoPKey", nil},
		{"P-384 key", client.StaticToken(testToken), p384, "", "P-384", nil},
		{"RSA key", client.StaticToken(testToken), rsaKey, "", "*rsa.PublicKey", nil},
		{"P-384 key without token", nil, p384, "", "P-384", nil},
		{"HTUBase with query", client.StaticToken(testToken), p256, "http://signer-agent?x=1", "HTUBase", nil},
		{"HTUBase with fragment", client.StaticToken(testToken), p256, "http://signer-agent#f", "HTUBase", nil},
		{"HTUBase without scheme", client.StaticToken(testToken), p256, "signer-agent", "HTUBase", nil},
		{"HTUBase other scheme", client.StaticToken(testToken), p256, "unix:///run/api.sock", "HTUBase", nil},
		{"empty static token", client.StaticToken(""), p256, "", "empty", nil},
		{"token source error", failingSource{errSource}, p256, "", "authority unreachable", errSource},
		{"token with a space", client.StaticToken(testToken + " x"), p256, "", "not allowed", nil},
		{"token with a newline", client.StaticToken(testToken + "\r\nX-Evil: 1"), p256, "", "not allowed", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startAgent(t, answerOK(t))
			c := newClient(a)
			c.Token, c.DPoPKey, c.HTUBase = tt.token, tt.key, tt.base
			for range 2 { // init errors stick
				_, err := c.Keys(context.Background())
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.want)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("errors.Is(err, %v) = false", tt.wantIs)
				}
				if strings.Contains(err.Error(), testToken) {
					t.Errorf("error contains the token: %v", err)
				}
			}
			if n := a.count(); n != 0 {
				t.Errorf("agent received %d requests", n)
			}
		})
	}
}

func TestDPoPKeyWithoutTokenSendsNothing(t *testing.T) {
	a := startAgent(t, answerOK(t))
	c := newClient(a)
	c.DPoPKey = testKeys(t)[0].key
	if _, err := c.Keys(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := a.last(t).Header
	if h.Get(proto.HeaderAuthorization) != "" || h.Get(proto.HeaderDPoP) != "" {
		t.Errorf("credentials sent without a Token: %v", h)
	}
}

func TestStaticTokenRedacted(t *testing.T) {
	tok := client.StaticToken(testToken)
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s %q %x", tok, tok, tok, tok, tok, tok), tok.String()} {
		if strings.Contains(s, testToken) || !strings.Contains(s, "redacted") {
			t.Errorf("printed StaticToken = %q", s)
		}
	}
	got, err := tok.Token(context.Background())
	if err != nil || got != testToken {
		t.Errorf("Token() = %q, %v", got, err)
	}
}
