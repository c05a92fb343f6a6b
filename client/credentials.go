package client

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stellaops/signer-agent/proto"
)

// maxCredentialsFile bounds what LoadCredentials reads.
const maxCredentialsFile = 1 << 20

// Credentials are what a caller needs to sign through the agent: a
// DPoP-bound OpTok, its DPoP key and, optionally, the PoE and scanner image
// digest that go into sign requests. They are read from the JSON object of
// SPEC §12, which `signerctl dev token` prints:
//
//	{"opTok": "…", "dpopKey": {JWK with private part}, "poe": "…", "scannerImageDigest": "sha256:…"}
//
// Credentials never print their secrets: String, GoString, Format and
// MarshalJSON redact OpTok, DPoPKey and PoE.
type Credentials struct {
	// OpTok is the operation token (a JWT) sent as "Authorization: DPoP".
	OpTok string
	// DPoPKey is the private key the OpTok is bound to (cnf.jkt): ECDSA
	// P-256 or Ed25519.
	DPoPKey crypto.Signer
	// PoE is the proof of entitlement (a JWT), "" when absent.
	PoE string
	// ScannerImageDigest is the scanner's image digest ("sha256:…"), ""
	// when absent.
	ScannerImageDigest string
}

// credentialsJSON is the wire form of Credentials. Unknown members are
// ignored, so files from newer tools still load.
type credentialsJSON struct {
	OpTok              *string         `json:"opTok"`
	DPoPKey            json.RawMessage `json:"dpopKey"`
	PoE                *string         `json:"poe"`
	ScannerImageDigest *string         `json:"scannerImageDigest"`
}

// LoadCredentials reads a credentials file (see Credentials and
// ParseCredentials). Errors name the file and the problem, never its
// content.
func LoadCredentials(path string) (*Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("signer-agent: credentials: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCredentialsFile+1))
	defer clear(b)
	if err != nil {
		return nil, fmt.Errorf("signer-agent: credentials %s: %w", path, err)
	}
	if len(b) > maxCredentialsFile {
		return nil, fmt.Errorf("signer-agent: credentials %s: larger than %d bytes", path, maxCredentialsFile)
	}
	c, err := parseCredentials(b)
	if err != nil {
		return nil, fmt.Errorf("signer-agent: credentials %s: %w", path, err)
	}
	return c, nil
}

// ParseCredentials parses the credentials JSON object of SPEC §12. opTok and
// dpopKey are required; dpopKey must be a private JWK: EC P-256 (kty "EC",
// crv "P-256", x, y, d) or Ed25519 (kty "OKP", crv "Ed25519", x, d), whose
// public part matches its private part. poe and scannerImageDigest are
// optional; unknown members are ignored. Errors never contain the token or
// key material.
func ParseCredentials(b []byte) (*Credentials, error) {
	c, err := parseCredentials(b)
	if err != nil {
		return nil, fmt.Errorf("signer-agent: credentials: %w", err)
	}
	return c, nil
}

func parseCredentials(b []byte) (*Credentials, error) {
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var raw credentialsJSON
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, errors.New(proto.DescribeJSONError(err))
	}
	defer clear(raw.DPoPKey)

	var c Credentials
	switch {
	case raw.OpTok == nil || *raw.OpTok == "":
		return nil, errors.New(`missing "opTok"`)
	case !proto.IsToken68(*raw.OpTok):
		return nil, errors.New(`"opTok" is not a token (characters not allowed in an Authorization header)`)
	}
	c.OpTok = *raw.OpTok

	if len(raw.DPoPKey) == 0 || string(raw.DPoPKey) == "null" {
		return nil, errors.New(`missing "dpopKey"`)
	}
	key, err := parseDPoPJWK(raw.DPoPKey)
	if err != nil {
		return nil, fmt.Errorf(`"dpopKey": %w`, err)
	}
	c.DPoPKey = key

	if raw.PoE != nil {
		c.PoE = *raw.PoE
	}
	if raw.ScannerImageDigest != nil && *raw.ScannerImageDigest != "" {
		if err := proto.ValidateDigestString(*raw.ScannerImageDigest); err != nil {
			return nil, fmt.Errorf(`"scannerImageDigest": %w`, err)
		}
		c.ScannerImageDigest = *raw.ScannerImageDigest
	}
	return &c, nil
}

// jwkMembers are the JWK members a DPoP key may use. Only these, checked to
// be strings, are handed to go-jose, so that its messages cannot quote
// anything else from the file.
type jwkMembers struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
	D   string `json:"d"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	Kid string `json:"kid,omitempty"`
}

// parseDPoPJWK parses a private EC P-256 or OKP Ed25519 JWK and checks that
// its public members match its private key.
func parseDPoPJWK(b []byte) (crypto.Signer, error) {
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("not a JWK object")
	}
	var m jwkMembers
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, errors.New(proto.DescribeJSONError(err))
	}
	switch {
	case m.Kty == "":
		return nil, errors.New(`JWK without "kty"`)
	case m.Kty == "EC" && m.Crv != "P-256":
		return nil, fmt.Errorf("EC curve %q is not supported (want P-256)", m.Crv)
	case m.Kty == "OKP" && m.Crv != "Ed25519":
		return nil, fmt.Errorf("OKP curve %q is not supported (want Ed25519)", m.Crv)
	case m.Kty != "EC" && m.Kty != "OKP":
		return nil, fmt.Errorf("JWK kty %q is not supported (want a private EC P-256 or OKP Ed25519 key)", m.Kty)
	case m.D == "":
		return nil, errors.New(`a public JWK; the private key (member "d") is required`)
	case m.Use != "" && m.Use != "sig":
		return nil, fmt.Errorf(`JWK "use" is %q, want "sig"`, m.Use)
	}
	clean, err := json.Marshal(m)
	if err != nil {
		return nil, errors.New("invalid JWK")
	}
	defer clear(clean)
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(clean); err != nil {
		// go-jose names the problem (missing member, wrong length,
		// bad base64 offset, point not on the curve), never the value.
		return nil, fmt.Errorf("invalid JWK: %v", err)
	}
	var key crypto.Signer
	switch k := jwk.Key.(type) {
	case *ecdsa.PrivateKey:
		// go-jose checks that x, y is on the curve, not that it is d's
		// public point: derive it again from d and compare.
		d, err := k.Bytes()
		if err != nil {
			return nil, errors.New("invalid EC private key")
		}
		canon, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
		clear(d)
		if err != nil {
			return nil, errors.New("invalid EC private key (d out of range)")
		}
		if !canon.PublicKey.Equal(&k.PublicKey) {
			return nil, errors.New("x and y do not match d")
		}
		key = canon
	case ed25519.PrivateKey: // go-jose checks that x matches d
		key = k
	default:
		return nil, fmt.Errorf("JWK key type %T is not supported", jwk.Key)
	}
	alg, err := dpopAlg(key)
	if err != nil {
		return nil, err
	}
	if m.Alg != "" && m.Alg != string(alg) {
		return nil, fmt.Errorf(`JWK "alg" is %q, want %q for this key`, m.Alg, alg)
	}
	return key, nil
}

// Apply makes cl send the credentials' OpTok with DPoP proofs signed by its
// DPoPKey, and fill the sign requests (SignDSSE) that carry no PoE or
// scanner digest of their own with the credentials' ones. It sets cl.Token (a StaticToken
// of OpTok), cl.DPoPKey and cl.ScannerImageDigest (even when empty, which
// clears a digest set before), and cl.PoE (as a "jwt" PoE) only when the
// credentials carry a PoE. A request's own PoE and ScannerImageDigest
// always win over the client's. Call it before cl's first use; a nil c or
// cl does nothing.
func (c *Credentials) Apply(cl *Client) {
	if c == nil || cl == nil {
		return
	}
	cl.Token = StaticToken(c.OpTok)
	cl.DPoPKey = c.DPoPKey
	if c.PoE != "" {
		cl.PoE = &proto.PoE{Format: "jwt", Value: c.PoE}
	}
	cl.ScannerImageDigest = c.ScannerImageDigest
}

// String describes the credentials with their secrets redacted.
func (c Credentials) String() string {
	var b bytes.Buffer
	b.WriteString("{OpTok:" + redacted(c.OpTok != ""))
	b.WriteString(" DPoPKey:" + redacted(c.DPoPKey != nil))
	if k := keyDescription(c.DPoPKey); k != "" {
		b.WriteString(" (" + k + ")")
	}
	b.WriteString(" PoE:" + redacted(c.PoE != ""))
	b.WriteString(" ScannerImageDigest:" + strconv.Quote(c.ScannerImageDigest) + "}")
	return b.String()
}

// GoString is String with the type name.
func (c Credentials) GoString() string { return "client.Credentials" + c.String() }

// Format redacts for every verb: %v, %+v, %s and %q print String, %#v
// prints GoString.
func (c Credentials) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		io.WriteString(f, c.GoString())
	case verb == 'q':
		io.WriteString(f, strconv.Quote(c.String()))
	default:
		io.WriteString(f, c.String())
	}
}

// MarshalJSON redacts the secrets, so that logging or encoding Credentials
// by accident leaks nothing. (The result is not a loadable credentials
// file.)
func (c Credentials) MarshalJSON() ([]byte, error) {
	v := map[string]string{
		"opTok":   redacted(c.OpTok != ""),
		"dpopKey": redacted(c.DPoPKey != nil),
	}
	if c.PoE != "" {
		v["poe"] = redacted(true)
	}
	if c.ScannerImageDigest != "" {
		v["scannerImageDigest"] = c.ScannerImageDigest
	}
	return json.Marshal(v)
}
