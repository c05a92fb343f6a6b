package main

import (
	"context"
	"crypto"
	"fmt"
	"os"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/export"
	"github.com/stellaops/signer-agent/internal/trustroot"
)

// exportTrust is verify export's trust material when --trusted-root is
// given: the trusted root (with the agent keys of trusted_keys.json beside
// it, if any) and the certificate identity a keyless signature must carry.
type exportTrust struct {
	material *trustroot.Material
	identity attest.CertIdentity
}

// registerExportTrust adds the certificate identity flags (cosign's names)
// to fs.
func registerExportTrust(fs *flags, id *attest.CertIdentity) {
	fs.StringVar(&id.Identity, "certificate-identity", "", "with --trusted-root: the keyless certificate's `SAN`")
	fs.StringVar(&id.IdentityRegexp, "certificate-identity-regexp", "", "with --trusted-root: the keyless certificate's SAN, as a `REGEXP`")
	fs.StringVar(&id.Issuer, "certificate-oidc-issuer", "", "with --trusted-root: the keyless certificate's OIDC `ISSUER`")
	fs.StringVar(&id.IssuerRegexp, "certificate-oidc-issuer-regexp", "", "with --trusted-root: the keyless certificate's OIDC issuer, as a `REGEXP`")
}

// set reports whether any identity flag was given.
func identitySet(id attest.CertIdentity) bool {
	return id.Identity != "" || id.IdentityRegexp != "" || id.Issuer != "" || id.IssuerRegexp != ""
}

// loadExportTrust reads the trusted root and, beside it, trusted_keys.json
// when present (trustroot.Load).
func loadExportTrust(rootPath string, id attest.CertIdentity) (*exportTrust, error) {
	m, err := trustroot.Load(rootPath, "")
	if err != nil {
		return nil, err
	}
	return &exportTrust{material: m, identity: id}, nil
}

// verifyExportTrusted verifies the bundle against the trust material with
// attest.VerifyTrusted (agent keys with their status and validity window,
// certificate chains, keyless identities, timestamps and log entries when
// present), and the envelope, if given, with the agent keys that are not
// revoked; then checks the statement against the manifest.
func verifyExportTrusted(ctx context.Context, tr *exportTrust, manifest []byte, m *export.Manifest, bundlePath, envPath string) (*export.Checked, error) {
	exp := exportExpect
	b, err := os.ReadFile(bundlePath)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	pol := attest.TrustPolicy{}
	if identitySet(tr.identity) {
		pol.Identities = []attest.CertIdentity{tr.identity}
	}
	v, err := attest.VerifyTrusted(b, tr.material, pol, exp)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", bundlePath, err)
	}
	payload, err := bundlePayload(b)
	if err != nil || attest.Digest(payload) != v.PayloadDigest {
		return nil, fmt.Errorf("bundle %s: %w: payload differs from the verified one", bundlePath, attest.ErrVerify)
	}
	if envPath != "" {
		var pubs []crypto.PublicKey
		for _, k := range tr.material.Keys {
			if !k.Revoked() {
				pubs = append(pubs, k.PublicKey)
			}
		}
		if len(pubs) == 0 {
			return nil, fmt.Errorf("envelope %s: %w: no agent key in the trust material to verify it with", envPath, attest.ErrVerify)
		}
		eb, err := os.ReadFile(envPath)
		if err != nil {
			return nil, fmt.Errorf("envelope: %w", err)
		}
		ev, err := attest.VerifyEnvelope(ctx, eb, pubs, exp)
		if err != nil {
			return nil, fmt.Errorf("envelope %s: %w", envPath, err)
		}
		if ev.PayloadDigest != v.PayloadDigest {
			return nil, fmt.Errorf("envelope %s: %w: its statement differs from the bundle's", envPath, attest.ErrVerify)
		}
	}
	return export.CheckProvenance(payload, manifest, m)
}
