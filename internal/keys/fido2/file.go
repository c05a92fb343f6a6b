package fido2

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/stellaops/signer-agent/internal/fsutil"
	"github.com/stellaops/signer-agent/internal/keys"
)

// FileVersion is the version of the wrapped key file format written here.
const FileVersion = 1

// Limits on a wrapped key file.
const (
	maxFileSize     = 1 << 20
	maxWraps        = 64
	maxRPIDLen      = 255
	maxCredIDLen    = 1024
	maxCiphertext   = 4096
	maxLabelLen     = 256
	saltSize        = 32
	nonceSize       = 12
	gcmTagSize      = 16
	hmacSecretSize  = 32
	wrapKeySize     = 32
	userIDSize      = 16
	wrapContextInfo = "signer-agent fido2 wrap v1"
)

// ErrInvalidFile marks a wrapped key file that does not parse or fails
// validation.
var ErrInvalidFile = errors.New("fido2: invalid wrapped key file")

// Policy is what an unlock asks of the user.
type Policy struct {
	// UP: the user must touch the authenticator (user presence).
	UP bool `json:"up"`
	// UV: the authenticator must verify the user (PIN or built-in
	// biometrics).
	UV bool `json:"uv"`
	// PINRequired: the caller must supply the authenticator's PIN (which
	// also performs user verification).
	PINRequired bool `json:"pinRequired"`
}

// DefaultPolicy asks for a touch and the PIN.
var DefaultPolicy = Policy{UP: true, UV: true, PINRequired: true}

// passPIN reports whether the PIN goes to the authenticator's assertion:
// only when the policy wants user verification, so that the hmac-secret
// output (which differs with and without UV) is the one the wrap was made
// with.
func (p Policy) passPIN() bool { return p.PINRequired || p.UV }

// File is the wrapped key file: JSON, one wrap per authenticator. Binary
// fields are standard base64 (encoding/json's []byte encoding).
//
//	{"version": 1, "rpId": "signer-agent", "algorithm": "ecdsa-p256-sha256",
//	 "publicKey": "<PKIX DER>", "policy": {"up": true, "uv": true, "pinRequired": true},
//	 "wraps": [{"credentialId": "…", "salt": "…", "nonce": "…", "ciphertext": "…", "label": "…"}]}
type File struct {
	Version   int    `json:"version"`
	RPID      string `json:"rpId"`
	Algorithm string `json:"algorithm"`
	PublicKey []byte `json:"publicKey"`
	Policy    Policy `json:"policy"`
	Wraps     []Wrap `json:"wraps"`
}

// Wrap is the private key encrypted under one authenticator's hmac-secret.
type Wrap struct {
	CredentialID []byte `json:"credentialId"`
	// Salt is both the hmac-secret salt and the HKDF salt.
	Salt       []byte `json:"salt"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
	// Label names the authenticator for people (a product name); it is
	// not authenticated.
	Label string `json:"label,omitempty"`
}

// ParseFile parses and validates a wrapped key file.
func ParseFile(data []byte) (*File, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidFile, maxFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidFile)
	}
	if _, err := f.validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// validate checks f and returns its public key.
func (f *File) validate() (*ecdsa.PublicKey, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidFile}, a...)...)
	}
	if f.Version != FileVersion {
		return nil, bad("version %d (this build reads version %d)", f.Version, FileVersion)
	}
	if f.RPID == "" || len(f.RPID) > maxRPIDLen {
		return nil, bad("rpId must be 1 to %d bytes", maxRPIDLen)
	}
	if f.Algorithm != keys.AlgECDSAP256 {
		return nil, bad("algorithm %q (want %s)", f.Algorithm, keys.AlgECDSAP256)
	}
	pub, err := parsePublicKey(f.PublicKey)
	if err != nil {
		return nil, bad("publicKey: %v", err)
	}
	if len(f.Wraps) == 0 || len(f.Wraps) > maxWraps {
		return nil, bad("%d wraps (want 1 to %d)", len(f.Wraps), maxWraps)
	}
	seen := make(map[string]bool, len(f.Wraps))
	for i, w := range f.Wraps {
		switch {
		case len(w.CredentialID) == 0 || len(w.CredentialID) > maxCredIDLen:
			return nil, bad("wrap %d: credentialId must be 1 to %d bytes", i, maxCredIDLen)
		case seen[string(w.CredentialID)]:
			return nil, bad("wrap %d: duplicate credentialId", i)
		case len(w.Salt) != saltSize:
			return nil, bad("wrap %d: salt must be %d bytes", i, saltSize)
		case len(w.Nonce) != nonceSize:
			return nil, bad("wrap %d: nonce must be %d bytes", i, nonceSize)
		case len(w.Ciphertext) <= gcmTagSize || len(w.Ciphertext) > maxCiphertext:
			return nil, bad("wrap %d: ciphertext must be %d to %d bytes", i, gcmTagSize+1, maxCiphertext)
		case len(w.Label) > maxLabelLen:
			return nil, bad("wrap %d: label longer than %d bytes", i, maxLabelLen)
		}
		seen[string(w.CredentialID)] = true
	}
	return pub, nil
}

func parsePublicKey(der []byte) (*ecdsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 public key")
	}
	return pub, nil
}

// Marshal encodes f (indented JSON with a trailing newline).
func (f *File) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ReadFile reads and parses the wrapped key file at path.
func ReadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fido2: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("fido2: read %s: %w", path, err)
	}
	f, err := ParseFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// writeFile writes f to path atomically and durably with mode 0600: a new
// file that must not exist yet (replace false, fsutil.CreateFileAtomic) or
// a replacement of path (replace true, fsutil.WriteFileAtomic).
func writeFile(path string, f *File, replace bool) error {
	if _, err := f.validate(); err != nil {
		return err
	}
	data, err := f.Marshal()
	if err != nil {
		return fmt.Errorf("fido2: encode %s: %w", path, err)
	}
	write := fsutil.CreateFileAtomic
	if replace {
		write = fsutil.WriteFileAtomic
	}
	if err := write(path, data, 0o600); err != nil {
		return fmt.Errorf("fido2: %w", err)
	}
	return nil
}
