package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/stellaops/signer-agent/proto"
)

// credentials is the JSON object `signerctl dev token` prints and
// `sign --credentials FILE` reads (SPEC §12):
//
//	{"opTok": "…", "dpopKey": {JWK}, "poe": "…", "scannerImageDigest": "sha256:…"}
//
// Every member is optional; unknown members are ignored so that files from
// newer tools still load. The secret members never print: their String and
// MarshalJSON methods redact them.
type credentials struct {
	OpTok              secret     `json:"opTok"`
	DPoPKey            secretJSON `json:"dpopKey"`
	PoE                secret     `json:"poe"`
	ScannerImageDigest string     `json:"scannerImageDigest"`
}

// loadCredentials reads a credentials file. Errors name the file and the
// problem, never its content.
func loadCredentials(path string) (*credentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	defer clear(b)
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("credentials %s: not a JSON object", path)
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("credentials %s: malformed JSON at offset %d", path, se.Offset)
		case errors.As(err, &te):
			return nil, fmt.Errorf("credentials %s: member %q has the wrong JSON type", path, te.Field)
		}
		return nil, fmt.Errorf("credentials %s: malformed JSON", path)
	}
	if c.ScannerImageDigest != "" {
		if err := proto.ValidateDigestString(c.ScannerImageDigest); err != nil {
			return nil, fmt.Errorf("credentials %s: scannerImageDigest: %w", path, err)
		}
	}
	return &c, nil
}

// apply fills the request members the credentials provide: poe (as a JWT
// PoE) and scannerImageDigest, unless the request already has them (from
// flags).
func (c *credentials) apply(req *proto.SignRequest) {
	if c == nil {
		return
	}
	if req.PoE == nil && c.PoE != "" {
		req.PoE = &proto.PoE{Format: "jwt", Value: string(c.PoE)}
	}
	if req.ScannerImageDigest == "" {
		req.ScannerImageDigest = c.ScannerImageDigest
	}
}

// authorize returns the client.Client Authorize hook for the credentials'
// OpTok and DPoP key, or nil when there is nothing to add.
//
// TODO(auth): once the agent's OpTok and DPoP gates exist, build a DPoP
// proof per request here (go-jose: typ dpop+jwt, jwk = public part of
// dpopKey, htm, htu = "http://signer-agent" + path, iat, jti, ath =
// base64url(SHA-256(opTok)), nonce from DPoP-Nonce with one retry on
// use_dpop_nonce) and set "Authorization: DPoP <opTok>". Until then the
// agent needs neither, so nothing is sent.
func (c *credentials) authorize() func(*http.Request) error {
	return nil
}

// secret is a credential string that never prints.
type secret string

func (s secret) String() string   { return redacted(s != "") }
func (s secret) GoString() string { return redacted(s != "") }

// MarshalJSON redacts, so an accidental json.Marshal leaks nothing.
func (s secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted(s != "")) }

// secretJSON is a credential JSON value (a private JWK) that never prints.
type secretJSON []byte

func (s *secretJSON) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = nil
		return nil
	}
	*s = append((*s)[:0], b...)
	return nil
}

func (s secretJSON) String() string   { return redacted(len(s) > 0) }
func (s secretJSON) GoString() string { return redacted(len(s) > 0) }

// MarshalJSON redacts, so an accidental json.Marshal leaks nothing.
func (s secretJSON) MarshalJSON() ([]byte, error) { return json.Marshal(redacted(len(s) > 0)) }

func redacted(set bool) string {
	if set {
		return "[redacted]"
	}
	return ""
}
