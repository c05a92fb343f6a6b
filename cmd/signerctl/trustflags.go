package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/stellaops/signer-agent/client/verify"
)

// trustedRootFlags are the flags of verification against a sigstore
// trusted root (verify, verify export): the root, its trusted keys, the
// expected certificate identity of keyless output and whether a
// transparency log entry is required.
type trustedRootFlags struct {
	root, keys               string
	identity, identityRegexp string
	issuer, issuerRegexp     string
	requireTlog              bool
}

const trustedRootHelp = `
With --trusted-root FILE (a sigstore trusted_root.json, as 'signerctl trust
export' writes it, with trusted_keys.json beside it or --trusted-keys)
every bundle the agent makes verifies, fully offline:

  keyless          the Fulcio certificate must chain to a CA in the trusted
                   root and match --certificate-identity[-regexp] and
                   --certificate-oidc-issuer[-regexp] (both required); its
                   RFC 3161 timestamp, checked against the trusted root's
                   timestamp authorities, dates the signature, so it
                   verifies after the certificate expired
  keyful           the key must be in the trusted keys, not revoked, and
                   valid (notBefore/notAfter) when the signature was made;
                   a key's certificate must chain to its CA in the root
  logged           transparency log entries are verified against the
                   root's Rekor logs; --require-tlog refuses bundles
                   without one

Envelopes carry no certificates: with a trusted root they verify with the
trusted keys only.
`

func (f *trustedRootFlags) register(fs *flags) {
	fs.StringVar(&f.root, "trusted-root", "", "sigstore trusted_root.json `FILE` (keyless, chained and logged bundles)")
	fs.StringVar(&f.keys, "trusted-keys", "", "trusted_keys.json `FILE` (default: beside --trusted-root, if there)")
	fs.StringVar(&f.identity, "certificate-identity", "", "keyless: the certificate's expected subject alternative `NAME`")
	fs.StringVar(&f.identityRegexp, "certificate-identity-regexp", "", "keyless: the certificate's subject alternative name, as a `REGEXP`")
	fs.StringVar(&f.issuer, "certificate-oidc-issuer", "", "keyless: the certificate's expected OIDC issuer `URL`")
	fs.StringVar(&f.issuerRegexp, "certificate-oidc-issuer-regexp", "", "keyless: the certificate's OIDC issuer, as a `REGEXP`")
	fs.BoolVar(&f.requireTlog, "require-tlog", false, "refuse bundles without a verified transparency log entry")
}

// set reports whether --trusted-root was given.
func (f *trustedRootFlags) set() bool { return f.root != "" }

// check refuses flags that need --trusted-root without it, and an
// identity given by halves.
func (f *trustedRootFlags) check() error {
	idGiven := f.identity != "" || f.identityRegexp != ""
	issGiven := f.issuer != "" || f.issuerRegexp != ""
	switch {
	case !f.set() && (f.keys != "" || idGiven || issGiven || f.requireTlog):
		return usagef("--trusted-keys, --certificate-* and --require-tlog need --trusted-root")
	case f.identity != "" && f.identityRegexp != "":
		return usagef("give --certificate-identity or --certificate-identity-regexp, not both")
	case f.issuer != "" && f.issuerRegexp != "":
		return usagef("give --certificate-oidc-issuer or --certificate-oidc-issuer-regexp, not both")
	case idGiven != issGiven:
		return usagef("a certificate identity needs both --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]")
	}
	return nil
}

// load reads the trusted root and keys and sets the identity policy.
func (f *trustedRootFlags) load(opts *verify.Options) (*verify.TrustedRoot, error) {
	tr, err := verify.LoadTrustedRoot(f.root, f.keys)
	if err != nil {
		return nil, err
	}
	if f.identity != "" || f.identityRegexp != "" {
		opts.Identities = []verify.CertIdentity{{Identity: f.identity, IdentityRegexp: f.identityRegexp, Issuer: f.issuer, IssuerRegexp: f.issuerRegexp}}
	}
	opts.RequireTlog = f.requireTlog
	return tr, nil
}

// describe is what a trusted-root verification established, for the
// success line: mode, certificate identity, signing times, log entry.
func describe(res *verify.Result) string {
	if res.Mode == "" {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, " mode=%s", res.Mode)
	if len(res.Keys) > 0 {
		fmt.Fprintf(&b, " key=%s", res.Keys[0].ID)
	}
	if res.CertificateIdentity != "" {
		fmt.Fprintf(&b, " identity=%s", res.CertificateIdentity)
	}
	if res.CertificateIssuer != "" {
		fmt.Fprintf(&b, " issuer=%s", res.CertificateIssuer)
	}
	for _, t := range res.SignedAt {
		fmt.Fprintf(&b, " signedAt=%s", t.UTC().Format(time.RFC3339))
	}
	if res.Logged {
		b.WriteString(" tlog=verified")
	}
	return b.String()
}
