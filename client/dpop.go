package client

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"

	"github.com/stellaops/signer-agent/proto"
)

// DefaultHTUBase is the scheme and authority of the htu claim of every DPoP
// proof (SPEC §3): htu = DefaultHTUBase + path.
const DefaultHTUBase = "http://" + proto.Host

// dpopType is the typ header of a DPoP proof (RFC 9449 §4.2).
const dpopType = "dpop+jwt"

// maxNonceLen bounds a DPoP-Nonce value the client keeps. The agent's
// nonces are short; a huge header is ignored rather than echoed in every
// proof.
const maxNonceLen = 1024

// TokenSource supplies the OpTok sent with each call. Token is called once
// per attempt (the nonce retry reuses the token; a retried sign call asks
// again, so a refreshed token is picked up) and may be called from several
// goroutines at once; an implementation that refreshes a short-lived token
// from the Authority does so inside Token. Errors are returned to the caller
// wrapped; they should not contain the token.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// StaticToken is a TokenSource that always returns the same OpTok (for
// example one loaded by LoadCredentials). It never prints: String,
// GoString and Format redact it.
type StaticToken string

// Token returns t, or an error when t is empty.
func (t StaticToken) Token(context.Context) (string, error) {
	if t == "" {
		return "", errors.New("empty StaticToken")
	}
	return string(t), nil
}

// String redacts the token.
func (t StaticToken) String() string { return redacted(t != "") }

// GoString redacts the token.
func (t StaticToken) GoString() string { return "client.StaticToken(" + redacted(t != "") + ")" }

// Format redacts the token for every verb.
func (t StaticToken) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, t.GoString())
		return
	}
	io.WriteString(f, t.String())
}

func redacted(set bool) string {
	if set {
		return "[redacted]"
	}
	return "[empty]"
}

// NewDPoPKey generates a new ECDSA P-256 key for binding OpToks (ES256
// proofs). Its thumbprint (JWKThumbprint of its Public key) is the cnf.jkt
// the Authority puts into tokens bound to it.
func NewDPoPKey() (crypto.Signer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("signer-agent: generate DPoP key: %w", err)
	}
	return k, nil
}

// JWKThumbprint returns the RFC 7638 JWK SHA-256 thumbprint of a public
// key, base64url without padding: the value the agent compares with an
// OpTok's cnf.jkt. ECDSA and Ed25519 keys are supported (the DPoP keys),
// as are RSA keys. Given a crypto.Signer (a private key), it uses the
// signer's public key.
func JWKThumbprint(pub crypto.PublicKey) (string, error) {
	if s, ok := pub.(crypto.Signer); ok {
		pub = s.Public()
	}
	switch k := pub.(type) {
	case nil:
		return "", errors.New("signer-agent: JWK thumbprint: nil public key")
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return "", errors.New("signer-agent: JWK thumbprint: nil public key")
		}
		if _, err := k.Bytes(); err != nil { // rejects points off the curve
			return "", fmt.Errorf("signer-agent: JWK thumbprint: %w", err)
		}
	}
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("signer-agent: JWK thumbprint of %T: %w", pub, err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// dpopAlg returns the JWS algorithm for a DPoP key: ES256 for ECDSA P-256,
// EdDSA for Ed25519. Other keys are refused.
func dpopAlg(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		if pub == nil || pub.Curve == nil {
			return "", errors.New("ECDSA key without a curve")
		}
		if pub.Curve != elliptic.P256() {
			return "", fmt.Errorf("ECDSA curve %s is not supported (want P-256 for ES256)", pub.Curve.Params().Name)
		}
		return jose.ES256, nil
	case ed25519.PublicKey:
		if len(pub) != ed25519.PublicKeySize {
			return "", fmt.Errorf("Ed25519 public key of %d bytes", len(pub))
		}
		return jose.EdDSA, nil
	default:
		return "", fmt.Errorf("key type %T is not supported (want ECDSA P-256 or Ed25519)", pub)
	}
}

// keyDescription names a DPoP key's type without any key material.
func keyDescription(key crypto.Signer) string {
	if key == nil {
		return ""
	}
	alg, err := dpopAlg(key)
	switch {
	case err != nil:
		return fmt.Sprintf("%T", key)
	case alg == jose.ES256:
		return "ECDSA P-256"
	default:
		return "Ed25519"
	}
}

// dpopProver makes DPoP proofs (RFC 9449 §4) with one key.
type dpopProver struct {
	signer  jose.Signer // safe for concurrent use
	htuBase string      // without a trailing slash
}

func newDPoPProver(key crypto.Signer, htuBase string) (*dpopProver, error) {
	alg, err := dpopAlg(key)
	if err != nil {
		return nil, fmt.Errorf("signer-agent: Client.DPoPKey: %w", err)
	}
	base, err := parseHTUBase(htuBase)
	if err != nil {
		return nil, fmt.Errorf("signer-agent: Client.HTUBase: %w", err)
	}
	// cryptosigner makes any crypto.Signer (software, HSM, TPM) usable;
	// the embedded jwk is the signer's public key only.
	s, err := jose.NewSigner(
		jose.SigningKey{Algorithm: alg, Key: cryptosigner.Opaque(key)},
		(&jose.SignerOptions{EmbedJWK: true}).WithType(dpopType),
	)
	if err != nil {
		return nil, fmt.Errorf("signer-agent: Client.DPoPKey: %w", err)
	}
	return &dpopProver{signer: s, htuBase: base}, nil
}

// parseHTUBase checks a configured htu base: an absolute http(s) URL
// without query or fragment. Empty means DefaultHTUBase.
func parseHTUBase(s string) (string, error) {
	if s == "" {
		return DefaultHTUBase, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("invalid URL %q", s)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q: want an http or https URL", s)
	case u.Host == "":
		return "", fmt.Errorf("%q: missing host", s)
	case u.User != nil:
		return "", fmt.Errorf("%q: user info is not allowed", s)
	case strings.ContainsAny(s, "?#"):
		return "", fmt.Errorf("%q: query and fragment are not allowed", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// dpopClaims is the payload of a DPoP proof (RFC 9449 §4.2).
type dpopClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath"`
	Nonce string `json:"nonce,omitempty"`
}

// proof returns a compact DPoP proof for one request. htu is the base plus
// the request's path; the query is never included.
func (p *dpopProver) proof(method string, u *url.URL, token, nonce string, now time.Time) (string, error) {
	var jti [18]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("jti: %w", err)
	}
	ath := sha256.Sum256([]byte(token))
	payload, err := json.Marshal(dpopClaims{
		JTI:   base64.RawURLEncoding.EncodeToString(jti[:]),
		HTM:   method,
		HTU:   p.htuBase + u.EscapedPath(),
		IAT:   now.Unix(),
		ATH:   base64.RawURLEncoding.EncodeToString(ath[:]),
		Nonce: nonce,
	})
	if err != nil {
		return "", err
	}
	jws, err := p.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return jws.CompactSerialize()
}

// nonceCache holds the latest DPoP-Nonce the agent sent.
type nonceCache struct{ p atomic.Pointer[string] }

func (n *nonceCache) get() string {
	if s := n.p.Load(); s != nil {
		return *s
	}
	return ""
}

// learn keeps the response's DPoP-Nonce, if it has a valid one, and
// returns it ("" when absent or invalid).
func (n *nonceCache) learn(h http.Header) string {
	v := h.Get(proto.HeaderDPoPNonce)
	if !validNonce(v) {
		return ""
	}
	if old := n.p.Load(); old == nil || *old != v {
		n.p.Store(&v)
	}
	return v
}

// validNonce reports whether v is a non-empty NQCHAR string (RFC 9449 §8.1)
// of reasonable length.
func validNonce(v string) bool {
	if v == "" || len(v) > maxNonceLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// token fetches the OpTok for one call and checks it can be sent. Errors
// never contain the token.
func (c *Client) token(ctx context.Context) (string, error) {
	tok, err := c.Token.Token(ctx)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	if tok == "" {
		return "", errors.New("token: TokenSource returned an empty token")
	}
	if !proto.IsToken68(tok) {
		return "", errors.New("token: TokenSource returned a token with characters not allowed in an Authorization header")
	}
	return tok, nil
}
