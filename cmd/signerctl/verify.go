package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

const verifyHelp = `
Verify a sigstore bundle or a DSSE envelope fully offline: no socket, no
network. ('signerctl verify export -h' verifies a whole export.) The signature must verify with one of the public keys; for an
envelope, every signature must verify with one of them. The statement must
be an in-toto Statement v1 naming the artifact as a subject (unless
--any-artifact) and, with --type, carrying that predicate type.

Keys: every --key file and every *.pub / *.pem file directly in --trust-dir;
each "PUBLIC KEY" PEM block in them is a trusted key (other blocks, such as
private keys, are ignored). At least one key is required.

On success prints
  Verified OK: predicateType=TYPE subjects=N payloadDigest=sha256:HEX
and exits 0; on failure prints the reason and exits 1.
`

// cmdVerify is `signerctl verify`.
func (a *app) cmdVerify(ctx context.Context, args []string) error {
	fs := a.flagSet("verify", "verify (--bundle FILE | --envelope FILE) (--key PUBFILE... | --trust-dir DIR) (--artifact FILE | --digest sha256:HEX | --any-artifact) [--type TYPE]", verifyHelp)
	var (
		keyFiles   stringList
		bundlePath = fs.String("bundle", "", "sigstore bundle JSON `FILE` to verify")
		envPath    = fs.String("envelope", "", "DSSE envelope JSON `FILE` to verify")
		trustDir   = fs.String("trust-dir", "", "`DIR` of trusted *.pub / *.pem public keys")
		artifact   = fs.String("artifact", "", "artifact `FILE` that must be a subject")
		digest     = fs.String("digest", "", "artifact `DIGEST` sha256:HEX that must be a subject")
		anyArt     = fs.Bool("any-artifact", false, "do not check the subjects against an artifact")
		predType   = fs.String("type", "", "required predicate `TYPE`")
	)
	fs.Var(&keyFiles, "key", "trusted public key `PUBFILE` (PEM; repeatable)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if (*bundlePath == "") == (*envPath == "") {
		return usagef("give exactly one of --bundle and --envelope")
	}
	if len(keyFiles) == 0 && *trustDir == "" {
		return usagef("give --key or --trust-dir")
	}
	n := 0
	for _, set := range []bool{*artifact != "", *digest != "", *anyArt} {
		if set {
			n++
		}
	}
	if n != 1 {
		return usagef("give exactly one of --artifact, --digest and --any-artifact")
	}
	exp := attest.Expect{PredicateType: *predType, AnyArtifact: *anyArt}
	if *digest != "" {
		alg, hex, _ := strings.Cut(strings.ToLower(*digest), ":")
		if alg != "sha256" {
			return usagef("--digest: want sha256:HEX")
		}
		if err := proto.ValidateDigest(alg, hex); err != nil {
			return usagef("--digest: %v", err)
		}
		exp.ArtifactSHA256 = hex
	}

	pubs, err := loadPublicKeys(keyFiles, *trustDir)
	if err != nil {
		return err
	}
	if *artifact != "" {
		if exp.ArtifactSHA256, err = hashFile(*artifact); err != nil {
			return err
		}
	}
	var v *attest.Verified
	if *bundlePath != "" {
		b, err := os.ReadFile(*bundlePath)
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		v, err = attest.VerifyBundle(b, pubs, exp)
		if err != nil {
			return err
		}
	} else {
		b, err := os.ReadFile(*envPath)
		if err != nil {
			return fmt.Errorf("envelope: %w", err)
		}
		v, err = attest.VerifyEnvelope(ctx, b, pubs, exp)
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stdout, "Verified OK: predicateType=%s subjects=%d payloadDigest=%s\n", v.PredicateType, len(v.Subjects), v.PayloadDigest)
	return nil
}

// loadPublicKeys reads every PUBLIC KEY block of the --key files (each must
// hold at least one) and of the *.pub / *.pem files directly in dir (files
// without one are skipped; the directory must yield at least one key).
func loadPublicKeys(files []string, dir string) ([]crypto.PublicKey, error) {
	var pubs []crypto.PublicKey
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		ps, err := parsePublicKeysPEM(b)
		if err != nil {
			return nil, fmt.Errorf("public key %s: %w", f, err)
		}
		if len(ps) == 0 {
			return nil, fmt.Errorf("public key %s: no PEM \"PUBLIC KEY\" block", f)
		}
		pubs = append(pubs, ps...)
	}
	if dir != "" {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("trust dir: %w", err)
		}
		var names []string
		for _, e := range ents {
			if ext := filepath.Ext(e.Name()); ext == ".pub" || ext == ".pem" {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		found := 0
		for _, name := range names {
			p := filepath.Join(dir, name)
			fi, err := os.Stat(p) // follows symlinks
			if err != nil {
				return nil, fmt.Errorf("trust dir: %w", err)
			}
			if !fi.Mode().IsRegular() {
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("trust dir: %w", err)
			}
			ps, err := parsePublicKeysPEM(b)
			if err != nil {
				return nil, fmt.Errorf("trust dir: %s: %w", p, err)
			}
			found += len(ps)
			pubs = append(pubs, ps...)
		}
		if found == 0 {
			return nil, fmt.Errorf("trust dir %s: no PEM \"PUBLIC KEY\" block in any *.pub or *.pem file", dir)
		}
	}
	return pubs, nil
}

// parsePublicKeysPEM returns the keys of every "PUBLIC KEY" (PKIX) block.
// Other blocks are skipped without being decoded further, so a private key
// that happens to sit in the same file is never parsed. Keys must be of an
// algorithm the agent signs with.
func parsePublicKeysPEM(data []byte) ([]crypto.PublicKey, error) {
	var out []crypto.PublicKey
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "PUBLIC KEY" {
			clear(b.Bytes)
			continue
		}
		pub, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PUBLIC KEY: %w", err)
		}
		if _, _, err := keys.Algorithm(pub); err != nil {
			return nil, err
		}
		out = append(out, pub)
	}
	if out == nil && len(data) > 0 && !strings.Contains(string(data), "-----BEGIN") {
		return nil, errors.New("not PEM")
	}
	return out, nil
}
