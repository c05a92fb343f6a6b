package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/trustroot"
)

const tlogUploadHelp = `
Submit a bundle's DSSE signature to a Rekor v2 transparency log (rekor-tiles)
and write the bundle back with its log entry and inclusion proof. The bundle
is otherwise unchanged: this is what an Attestor does with the agent's output.

Rekor v2 logs DSSE as a hashedrekord v0.0.2 entry over the envelope's PAE
(as cosign does): the log verifies the signature, so the signature's hash must
be the key's. ECDSA P-256 keys (keyless certificates and keyful keys) can be
logged; Ed25519 and the agent's P-384 (SHA-256) keys cannot.

A keyless bundle carries its certificate. A keyful bundle carries only a key
hint: give its public key with --key. A certificate bundle without an RFC 3161
timestamp is refused: Rekor v2 gives no time, and verifiers need one.

Then verify offline without --insecure-ignore-tlog, against a trusted root
that holds the log key ('signerctl trust export --rekor-key … --rekor-url …').
`

func (a *app) cmdTlogUpload(ctx context.Context, args []string) error {
	fs := a.flagSet("tlog upload", "tlog upload --rekor URL --bundle IN --out OUT [--key PUBFILE] [--timeout D]", tlogUploadHelp)
	var (
		rekorURL = fs.String("rekor", "", "Rekor v2 base `URL`")
		in       = fs.String("bundle", "", "sigstore bundle `FILE` to log")
		out      = fs.String("out", "", "`FILE` to write the logged bundle to")
		keyFile  = fs.String("key", "", "public key `PUBFILE` of a keyful bundle (PEM)")
		timeout  = fs.Duration("timeout", 30*time.Second, "how long to wait for the log")
	)
	if err := fs.parse(args); err != nil {
		return err
	}
	if *rekorURL == "" || *in == "" || *out == "" {
		return usagef("--rekor, --bundle and --out are required")
	}
	if !strings.HasPrefix(*rekorURL, "https://") && !strings.HasPrefix(*rekorURL, "http://") {
		return usagef("--rekor: want an http(s) URL")
	}
	raw, err := os.ReadFile(*in)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return fmt.Errorf("bundle %s: %w", *in, err)
	}
	if b.GetDsseEnvelope() == nil {
		return errors.New("bundle carries no DSSE envelope")
	}
	vm := b.GetVerificationMaterial()
	var verifierPEM []byte
	switch {
	case vm.GetCertificate() != nil:
		if len(vm.GetTimestampVerificationData().GetRfc3161Timestamps()) == 0 {
			return errors.New("the bundle's certificate has no RFC 3161 timestamp: Rekor v2 gives no time, so a verifier could not date it")
		}
		vc, err := b.VerificationContent()
		if err != nil {
			return err
		}
		if err := checkLoggable(vc.Certificate().PublicKey); err != nil {
			return err
		}
		verifierPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vm.GetCertificate().GetRawBytes()})
	case vm.GetPublicKey() != nil:
		if *keyFile == "" {
			return usagef("a keyful bundle names its key by hint only: give --key PUBFILE")
		}
		kb, err := os.ReadFile(*keyFile)
		if err != nil {
			return fmt.Errorf("--key: %w", err)
		}
		pubs, err := parsePublicKeysPEM(kb)
		if err != nil {
			return fmt.Errorf("--key %s: %w", *keyFile, err)
		}
		for _, p := range pubs {
			if h, _ := keys.PublicKeyHint(p); h == vm.GetPublicKey().GetHint() {
				if err := checkLoggable(p); err != nil {
					return err
				}
				verifierPEM = publicKeyPEM(p)
			}
		}
		if verifierPEM == nil {
			return fmt.Errorf("--key %s: no key matches the bundle's hint %s", *keyFile, vm.GetPublicKey().GetHint())
		}
	default:
		return errors.New("bundle has neither a certificate nor a public key")
	}
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rekor := sign.NewRekor(&sign.RekorOptions{BaseURL: strings.TrimRight(*rekorURL, "/"), Version: 2, Timeout: *timeout})
	if err := rekor.GetTransparencyLogEntry(cctx, verifierPEM, b.Bundle); err != nil {
		return fmt.Errorf("upload to %s: %w", *rekorURL, err)
	}
	j, err := protojson.Marshal(b.Bundle)
	if err != nil {
		return fmt.Errorf("encode bundle: %w", err)
	}
	c, err := attest.Canonicalize(j)
	if err != nil {
		return err
	}
	if err := trustroot.WriteFile(*out, c); err != nil {
		return err
	}
	e := b.VerificationMaterial.TlogEntries[len(b.VerificationMaterial.TlogEntries)-1]
	fmt.Fprintf(a.stdout, "Logged at index %d (%s %s); wrote %s\n", e.GetLogIndex(), e.GetKindVersion().GetKind(), e.GetKindVersion().GetVersion(), *out)
	return nil
}

// checkLoggable refuses keys whose signatures Rekor v2 cannot take.
func checkLoggable(pub any) error {
	if k, ok := pub.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P256() {
		return nil
	}
	alg, _, err := keys.Algorithm(pub)
	if err != nil {
		return err
	}
	return fmt.Errorf("a %s signature cannot be logged in Rekor v2 (hashedrekord needs the digest of the key's own hash; only ECDSA P-256 fits)", alg)
}

func publicKeyPEM(pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	return pemBlock("PUBLIC KEY", der)
}
