// Package devauth is the development Authority of `signer-agent --dev`: it
// keeps an ES256 issuer key and its JWKS in the dev state directory and
// mints DPoP-bound OpToks for `signerctl dev token`, the demo and tests.
// Nothing here is for production: the issuer key is a plain file.
package devauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stellaops/signer-agent/client"
)

// Dev identities (SPEC §12).
const (
	Issuer       = "https://authority.dev.invalid"
	Tenant       = "dev"
	Installation = "dev-node"
	Audience     = "signer"
	Scope        = "signer.sign"
	Subject      = "dev-scanner"
)

// Files under the state directory.
const (
	IssuerKeyFile    = "authority/issuer.jwk"
	JWKSFile         = "authority/jwks.json"
	LicensingKeyFile = "licensing/issuer.jwk"
	LicensingPubFile = "licensing/public.pem"
)

// DemoScannerDigest is the scanner image digest dev mode pre-approves in
// its release allowlist (sha256 of "stella-ops demo scanner 1.0.0"), and
// that dev credentials carry.
const DemoScannerDigest = "sha256:3a4d1e3c2b6a8f10c9d7e5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4"

// DemoScannerVersion is the demo scanner's release version.
const DemoScannerVersion = "1.0.0"

// AllowlistFile is the dev release allowlist.
const AllowlistFile = "release/allowlist.yaml"

// Dev licensing identities.
const (
	LicensingIssuer = "https://licensing.dev.invalid"
	Plan            = "dev"
)

// Setup creates the dev Authority's issuer key and JWKS, and the dev
// licensing key, in stateDir unless they exist.
func Setup(stateDir string) error {
	if err := setupLicensing(stateDir); err != nil {
		return err
	}
	if err := setupAllowlist(stateDir); err != nil {
		return err
	}
	dir := filepath.Join(stateDir, "authority")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dev authority: %w", err)
	}
	keyPath := filepath.Join(stateDir, IssuerKeyFile)
	if _, err := os.Stat(keyPath); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("dev authority: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	jwk := jose.JSONWebKey{Key: k, Algorithm: string(jose.ES256), Use: "sig"}
	kid, err := client.JWKThumbprint(k.Public())
	if err != nil {
		return err
	}
	jwk.KeyID = kid
	priv, err := json.MarshalIndent(jwk, "", "  ")
	if err != nil {
		return err
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}}
	pub, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(stateDir, JWKSFile), append(pub, '\n'), 0o644); err != nil {
		return fmt.Errorf("dev authority: %w", err)
	}
	if err := os.WriteFile(keyPath, append(priv, '\n'), 0o600); err != nil {
		return fmt.Errorf("dev authority: %w", err)
	}
	return nil
}

// setupLicensing writes the dev licensing key (private JWK) and its PEM
// public key, the agent's offline PoE trust root.
func setupLicensing(stateDir string) error {
	keyPath := filepath.Join(stateDir, LicensingKeyFile)
	if _, err := os.Stat(keyPath); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		return fmt.Errorf("dev licensing: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(stateDir, LicensingPubFile), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("dev licensing: %w", err)
	}
	priv, err := json.MarshalIndent(jose.JSONWebKey{Key: k, Algorithm: string(jose.ES256), Use: "sig"}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(keyPath, append(priv, '\n'), 0o600)
}

// setupAllowlist writes the dev release allowlist with the demo scanner
// digest, manually approved by dev mode.
func setupAllowlist(stateDir string) error {
	p := filepath.Join(stateDir, AllowlistFile)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("dev release allowlist: %w", err)
	}
	body := fmt.Sprintf(`# Trusted scanner image digests (offline release integrity). Dev mode
# pre-approves a demo digest; add entries with the approver and time.
entries:
  - digest: %s
    version: %s
    approvedBy: signer-agent --dev
    approvedAt: %s
    note: demo scanner for dev mode
`, DemoScannerDigest, DemoScannerVersion, time.Now().UTC().Format(time.RFC3339))
	return os.WriteFile(p, []byte(body), 0o600)
}

// MintPoE issues an offline Proof-of-Entitlement JWT from the dev licensing
// key.
func MintPoE(stateDir string, o Options) (string, error) {
	o.defaults()
	b, err := os.ReadFile(filepath.Join(stateDir, LicensingKeyFile))
	if err != nil {
		return "", fmt.Errorf("dev licensing key (run signer-agent --dev first): %w", err)
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(b); err != nil || k.IsPublic() {
		return "", errors.New("dev licensing key: not a private JWK")
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.Key}, nil)
	if err != nil {
		return "", err
	}
	now := o.Now.Truncate(time.Second)
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	claims := map[string]any{
		"iss": LicensingIssuer, "sub": o.Installation, "tid": o.Tenant, "plan": o.Plan,
		"iat": now.Unix(), "exp": now.Add(o.PoETTL).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
	}
	if o.VersionWindow != nil {
		claims["versionWindow"] = o.VersionWindow
	}
	return jwt.Signed(s).Claims(claims).Serialize()
}

// Options shape a minted token.
type Options struct {
	Tenant       string        // default Tenant
	Installation string        // default Installation
	Scope        string        // default Scope
	TTL          time.Duration // default 5m
	Now          time.Time     // default time.Now()
	// PoE options.
	Plan          string            // default Plan
	PoETTL        time.Duration     // default 30 days
	VersionWindow map[string]string // {"earliest": …, "latest": …}
	NoPoE         bool              // mint no PoE
}

func (o *Options) defaults() {
	if o.Tenant == "" {
		o.Tenant = Tenant
	}
	if o.Installation == "" {
		o.Installation = Installation
	}
	if o.Scope == "" {
		o.Scope = Scope
	}
	if o.TTL == 0 {
		o.TTL = 5 * time.Minute
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Plan == "" {
		o.Plan = Plan
	}
	if o.PoETTL == 0 {
		o.PoETTL = 30 * 24 * time.Hour
	}
}

// Credentials is the JSON `signerctl dev token` prints (SPEC §12).
type Credentials struct {
	OpTok              string           `json:"opTok"`
	DPoPKey            *jose.JSONWebKey `json:"dpopKey"`
	PoE                string           `json:"poe,omitempty"`
	ScannerImageDigest string           `json:"scannerImageDigest,omitempty"`
}

// Mint issues a DPoP-bound OpTok from the dev issuer key in stateDir, with a
// fresh P-256 DPoP key.
func Mint(stateDir string, o Options) (*Credentials, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, IssuerKeyFile))
	if err != nil {
		return nil, fmt.Errorf("dev authority key (run signer-agent --dev first): %w", err)
	}
	var issuer jose.JSONWebKey
	if err := issuer.UnmarshalJSON(b); err != nil || issuer.IsPublic() {
		return nil, errors.New("dev authority key: not a private JWK")
	}
	dpop, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tok, err := MintToken(issuer, dpop.Public(), o)
	if err != nil {
		return nil, err
	}
	c := &Credentials{OpTok: tok, DPoPKey: &jose.JSONWebKey{Key: dpop, Algorithm: string(jose.ES256), Use: "sig"},
		ScannerImageDigest: DemoScannerDigest}
	if !o.NoPoE {
		if c.PoE, err = MintPoE(stateDir, o); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// MintToken signs an OpTok bound to dpopPub's thumbprint (cnf.jkt).
func MintToken(issuer jose.JSONWebKey, dpopPub crypto.PublicKey, o Options) (string, error) {
	o.defaults()
	jkt, err := client.JWKThumbprint(dpopPub)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(issuer.Algorithm), Key: issuer},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return "", fmt.Errorf("dev authority signer: %w", err)
	}
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	now := o.Now.Truncate(time.Second)
	claims := map[string]any{
		"iss":   Issuer,
		"sub":   Subject,
		"aud":   Audience,
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(o.TTL).Unix(),
		"jti":   base64.RawURLEncoding.EncodeToString(jti[:]),
		"scope": o.Scope,
		"tid":   o.Tenant,
		"inst":  o.Installation,
		"cnf":   map[string]string{"jkt": jkt},
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}
