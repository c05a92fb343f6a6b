package main

import (
	"context"
	"crypto"
	"fmt"
	"os"
	"strings"

	"github.com/stellaops/signer-agent/client/verify"
	"github.com/stellaops/signer-agent/proto"
)

const verifyHelp = `
Verify a sigstore bundle or a DSSE envelope fully offline: no socket, no
network. ('signerctl verify export -h' verifies a whole export.) The
signature must verify with one of the trusted public keys; for an envelope,
every signature must verify with one of them. The statement must be an
in-toto Statement v1 naming the artifact as a subject (unless
--any-artifact) and, with --type, carrying that predicate type.

Keys: every --key file and every *.pub / *.pem file directly in --trust-dir
(each "PUBLIC KEY" PEM block in them is a trusted key; other blocks, such as
private keys, are ignored), and every key of --keys-json, a saved
GET /api/v1/signer/keys answer ('signerctl keys list --json'). Keys from
--keys-json carry their status and validity window: a revoked key never
verifies (nor does the same public key under another id), a verify-only key
does, and a key verifies only inside its notBefore/notAfter window, checked
at the time of verification. At least one key is required.

On success prints
  Verified OK: predicateType=TYPE subjects=N payloadDigest=sha256:HEX
(with --trusted-root followed by mode=keyful|keyless, the key, the
certificate's identity and issuer, signedAt=TIME for each trusted timestamp
and tlog=verified) and exits 0; on failure prints the reason and exits 1.
` + trustedRootHelp

// cmdVerify is `signerctl verify`.
func (a *app) cmdVerify(ctx context.Context, args []string) error {
	fs := a.flagSet("verify", "verify (--bundle FILE | --envelope FILE) (--key PUBFILE... | --trust-dir DIR | --keys-json FILE | --trusted-root FILE [--trusted-keys FILE] [--certificate-identity[-regexp] X --certificate-oidc-issuer[-regexp] Y] [--require-tlog]) (--artifact FILE | --digest sha256:HEX | --any-artifact) [--type TYPE]", verifyHelp)
	var (
		tf         trustedRootFlags
		keyFiles   stringList
		bundlePath = fs.String("bundle", "", "sigstore bundle JSON `FILE` to verify")
		envPath    = fs.String("envelope", "", "DSSE envelope JSON `FILE` to verify")
		trustDir   = fs.String("trust-dir", "", "`DIR` of trusted *.pub / *.pem public keys")
		keysJSON   = fs.String("keys-json", "", "saved GET /keys answer `FILE` (keys with status and validity)")
		artifact   = fs.String("artifact", "", "artifact `FILE` that must be a subject")
		digest     = fs.String("digest", "", "artifact `DIGEST` sha256:HEX that must be a subject")
		anyArt     = fs.Bool("any-artifact", false, "do not check the subjects against an artifact")
		predType   = fs.String("type", "", "required predicate `TYPE`")
	)
	fs.Var(&keyFiles, "key", "trusted public key `PUBFILE` (PEM; repeatable)")
	tf.register(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if (*bundlePath == "") == (*envPath == "") {
		return usagef("give exactly one of --bundle and --envelope")
	}
	keysGiven := len(keyFiles) > 0 || *trustDir != "" || *keysJSON != ""
	switch {
	case tf.set() && keysGiven:
		return usagef("give --key/--trust-dir/--keys-json or --trusted-root, not both")
	case !tf.set() && !keysGiven:
		return usagef("give --key, --trust-dir, --keys-json or --trusted-root")
	}
	if err := tf.check(); err != nil {
		return err
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
	opts := verify.Options{PredicateType: *predType, AnyArtifact: *anyArt}
	if *digest != "" {
		alg, hex, _ := strings.Cut(strings.ToLower(*digest), ":")
		if alg != "sha256" {
			return usagef("--digest: want sha256:HEX")
		}
		if err := proto.ValidateDigest(alg, hex); err != nil {
			return usagef("--digest: %v", err)
		}
		opts.ArtifactSHA256 = hex
	}

	var trust verify.Trust
	var err error
	if tf.set() {
		trust, err = tf.load(&opts)
	} else {
		trust, err = loadTrust(keyFiles, *trustDir, *keysJSON)
	}
	if err != nil {
		return err
	}
	if *artifact != "" {
		if opts.ArtifactSHA256, err = hashFile(*artifact); err != nil {
			return err
		}
	}
	var res *verify.Result
	if *bundlePath != "" {
		b, err := os.ReadFile(*bundlePath)
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		if res, err = verify.Bundle(trust, b, opts); err != nil {
			return err
		}
	} else {
		b, err := os.ReadFile(*envPath)
		if err != nil {
			return fmt.Errorf("envelope: %w", err)
		}
		if res, err = verify.Envelope(ctx, trust, b, opts); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stdout, "Verified OK: predicateType=%s subjects=%d payloadDigest=%s%s\n", res.PredicateType, len(res.Subjects), res.PayloadDigest, describe(res))
	return nil
}

// loadTrust builds the trusted key set from the PEM files and directory
// and the saved keys answer.
func loadTrust(files []string, dir, keysJSON string) (*verify.KeySet, error) {
	var set *verify.KeySet
	if len(files) > 0 || dir != "" {
		s, err := verify.KeysFromPEM(files, dir)
		if err != nil {
			return nil, err
		}
		set = s
	}
	if keysJSON != "" {
		s, err := verify.LoadKeysJSON(keysJSON)
		if err != nil {
			return nil, err
		}
		set = set.Merge(s)
	}
	return set, nil
}

// parsePublicKeysPEM returns the keys of every "PUBLIC KEY" block (see
// verify.ParsePublicKeysPEM).
func parsePublicKeysPEM(data []byte) ([]crypto.PublicKey, error) {
	return verify.ParsePublicKeysPEM(data)
}
