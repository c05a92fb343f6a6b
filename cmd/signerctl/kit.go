package main

import (
	"context"
	"crypto"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/stellaops/signer-agent/client/verify"
	"github.com/stellaops/signer-agent/internal/kit"
)

const kitVerifyHelp = `
Verify an offline kit (a signer-agent-offline-kit_VERSION.tar.gz, or the
directory it unpacks to) with the release public key, fully offline: no
socket, no network, nothing is extracted.

Checked, in this order; the first mismatch is named and the exit status is 1:
  1. SHA256SUMS.sigstore.json is a signature by the release key over
     SHA256SUMS;
  2. every file SHA256SUMS lists is present with that SHA-256, and no
     other file is in the kit;
  3. provenance.sigstore.json is SLSA v1 provenance signed by the release
     key, of the same source commit, and every .deb and binary of the kit
     is one of its subjects with the same digest.

Provenance subjects that are not in the kit (the OCI image) are printed
with their digests, for comparison with the files you hold.

Get release.pub from your release channel, never from the kit itself.
`

// cmdKitVerify is `signerctl kit verify`.
func (a *app) cmdKitVerify(ctx context.Context, args []string) error {
	fs := a.flagSet("kit verify", "kit verify KIT.tar.gz|DIR --key release.pub [--key ...]", kitVerifyHelp)
	var keyFiles stringList
	fs.Var(&keyFiles, "key", "release public key `PUBFILE` (PEM; repeatable)")
	kitPath, err := parseWithOperand(fs, args, "KIT")
	if err != nil {
		return err
	}
	if len(keyFiles) == 0 {
		return usagef("--key is required")
	}
	pubs, err := loadPublicKeys(keyFiles, "")
	if err != nil {
		return err
	}
	res, err := kit.Verify(ctx, kitPath, pubs)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Verified OK: %s (version %s, commit %s)\n", res.Kit, res.Version, res.SourceCommit)
	fmt.Fprintf(a.stdout, "  SHA256SUMS: %d files match, signed by %s\n", res.Files, res.KeyHint)
	fmt.Fprintf(a.stdout, "  provenance: %d subjects in the kit match\n", len(res.InKit))
	if len(res.External) > 0 {
		fmt.Fprintln(a.stdout, "  provenance subjects not in the kit (compare with sha256sum):")
		for _, s := range res.External {
			fmt.Fprintf(a.stdout, "    %s  %s\n", s.Digest["sha256"], s.Name)
		}
	}
	return nil
}

// parseWithOperand parses flags around exactly one positional operand
// (before or after the flags) and returns it. -h prints help.
func parseWithOperand(fs *flags, args []string, name string) (string, error) {
	var operand string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		operand, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.help()
			return "", err
		}
		return "", usagef("%v", err)
	}
	switch {
	case fs.NArg() == 1 && operand == "":
		operand = fs.Arg(0)
	case fs.NArg() > 0:
		return "", usagef("unexpected argument %q", fs.Arg(0))
	}
	if operand == "" {
		return "", usagef("%s is required", name)
	}
	return operand, nil
}

// loadPublicKeys returns the PEM public keys of files and dir (see
// verify.KeysFromPEM).
func loadPublicKeys(files []string, dir string) ([]crypto.PublicKey, error) {
	set, err := verify.KeysFromPEM(files, dir)
	if err != nil {
		return nil, err
	}
	var out []crypto.PublicKey
	for _, k := range set.Keys() {
		out = append(out, k.Public)
	}
	return out, nil
}
