package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/stellaops/signer-agent/client/verify"
	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/export"
	"github.com/stellaops/signer-agent/proto"
)

const verifyExportHelp = `
Verify a signed export fully offline (no socket, no network):

 1. the bundle's signature verifies with one of the public keys (--key
    files, *.pub / *.pem in --trust-dir) or with a trusted root
    (--trusted-root, below), and its statement is SLSA
    provenance (https://slsa.dev/provenance/v1) naming --manifest as
    export.json; with --envelope, every signature of the envelope verifies
    too and it carries the same statement;
 2. --manifest is a well-formed export.json, and the statement's subjects
    are exactly export.json and every file the manifest lists, with the
    same digests (and its id, profile and materials match);
 3. every file under --dir is re-hashed (SHA-256, in parallel) and
    compared with the manifest.

Each difference is printed on stdout, one per line, sorted by path:
  modified: PATH (sha256 differs | size N, manifest says M)
  missing:  PATH
  extra:    PATH [(symlink)]
The manifest, bundle and envelope files are not counted as extra when they
lie inside --dir; --exclude leaves out other paths (relative to --dir).
Symbolic links inside --dir are never followed; they are extra entries.

Exit status 0 and "Verified OK: …" when everything matches; 1 on any
signature failure or difference.
` + trustedRootHelp

// cmdVerifyExport is `signerctl verify export`.
func (a *app) cmdVerifyExport(ctx context.Context, args []string) error {
	fs := a.flagSet("verify export", "verify export --dir DIR --manifest FILE --bundle FILE (--key PUBFILE... | --trust-dir DIR | --trusted-root FILE [--trusted-keys FILE] [--certificate-identity[-regexp] X --certificate-oidc-issuer[-regexp] Y] [--require-tlog]) [flags]", verifyExportHelp)
	var (
		tf           trustedRootFlags
		ef           exportFlags
		keyFiles     stringList
		excludes     stringList
		dir          = fs.String("dir", "", "export root `DIR`")
		manifestPath = fs.String("manifest", "", "export.json `FILE`")
		bundlePath   = fs.String("bundle", "", "sigstore bundle `FILE` of the provenance")
		envPath      = fs.String("envelope", "", "DSSE envelope `FILE` of the provenance (optional)")
		trustDir     = fs.String("trust-dir", "", "`DIR` of trusted *.pub / *.pem public keys")
	)
	ef.register(fs)
	tf.register(fs)
	fs.Var(&keyFiles, "key", "trusted public key `PUBFILE` (PEM; repeatable)")
	fs.Var(&excludes, "exclude", "`PATH` under --dir that is not part of the export (repeatable)")
	if err := fs.parse(args); err != nil {
		return err
	}
	switch {
	case *dir == "":
		return usagef("--dir is required")
	case *manifestPath == "":
		return usagef("--manifest is required")
	case *bundlePath == "":
		return usagef("--bundle is required")
	case tf.set() && (len(keyFiles) > 0 || *trustDir != ""):
		return usagef("give --key/--trust-dir or --trusted-root, not both")
	case !tf.set() && len(keyFiles) == 0 && *trustDir == "":
		return usagef("give --key, --trust-dir or --trusted-root")
	}
	if err := tf.check(); err != nil {
		return err
	}
	if err := ef.check(); err != nil {
		return err
	}
	var (
		trust verify.Trust
		opts  verify.Options
		err   error
	)
	if tf.set() {
		trust, err = tf.load(&opts)
	} else {
		trust, err = verify.KeysFromPEM(keyFiles, *trustDir)
	}
	if err != nil {
		return err
	}
	root, err := exportRoot(*dir)
	if err != nil {
		return err
	}

	manifest, err := os.ReadFile(*manifestPath)
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	m, err := export.ParseManifest(manifest)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", *manifestPath, err)
	}
	checked, err := verifyExportSignature(ctx, trust, opts, manifest, m, *bundlePath, *envPath)
	if err != nil {
		return err
	}

	skip := map[string]bool{}
	for _, p := range []string{*manifestPath, *bundlePath, *envPath} {
		if p == "" {
			continue
		}
		if rel := relInRoot(root, p); rel != "" {
			skip[rel] = true
		}
	}
	for _, x := range excludes {
		skip[path.Clean(strings.Trim(filepath.ToSlash(x), "/"))] = true
	}
	tr, err := walkTree(ctx, root, skip)
	if err != nil {
		return err
	}
	diffs, hashed, err := compareTree(ctx, tr, m, ef, a.stderr)
	if err != nil {
		return err
	}
	for _, d := range diffs {
		fmt.Fprintln(a.stdout, d.String())
	}
	if len(diffs) > 0 {
		var mod, miss, extra int
		for _, d := range diffs {
			switch d.kind {
			case diffModified:
				mod++
			case diffMissing:
				miss++
			default:
				extra++
			}
		}
		return fmt.Errorf("export %s does not match its signed manifest: %d modified, %d missing, %d extra", m.ID, mod, miss, extra)
	}
	fmt.Fprintf(a.stdout, "Verified OK: export %s (profile %s, createdAt %s): %d files (%d bytes) match; manifestDigest=%s builder=%s\n",
		m.ID, m.Profile, m.CreatedAt, len(m.Files), hashed, attest.Digest(manifest), checked.BuilderID)
	return nil
}

// verifyExportSignature verifies the bundle (and the envelope, if given)
// over provenance naming manifest as export.json with trust (public keys
// or a trusted root, with opts' identity policy), and checks the
// statement against the manifest.
//
// The signature checks do not match the manifest's digest against the
// statement's subjects: sigstore-go (and so cosign) refuses to match an
// artifact against a statement of more than 1024 subjects, which would
// refuse every export of more than 1023 files. export.CheckProvenance then
// checks the subjects exactly (export.json's digest and every file of the
// manifest, nothing else).
func verifyExportSignature(ctx context.Context, trust verify.Trust, opts verify.Options, manifest []byte, m *export.Manifest, bundlePath, envPath string) (*export.Checked, error) {
	opts.PredicateType = proto.PredicateSLSAProvenanceV1
	opts.ArtifactSHA256 = ""
	opts.AnyArtifact = true
	b, err := os.ReadFile(bundlePath)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	v, err := verify.Bundle(trust, b, opts)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", bundlePath, err)
	}
	payload, err := bundlePayload(b)
	if err != nil || attest.Digest(payload) != v.PayloadDigest {
		return nil, fmt.Errorf("bundle %s: %w: payload differs from the verified one", bundlePath, attest.ErrVerify)
	}
	if envPath != "" {
		eb, err := os.ReadFile(envPath)
		if err != nil {
			return nil, fmt.Errorf("envelope: %w", err)
		}
		ev, err := verify.Envelope(ctx, trust, eb, opts)
		if err != nil {
			return nil, fmt.Errorf("envelope %s: %w", envPath, err)
		}
		if ev.PayloadDigest != v.PayloadDigest {
			return nil, fmt.Errorf("envelope %s: %w: its statement differs from the bundle's", envPath, attest.ErrVerify)
		}
	}
	c, err := export.CheckProvenance(payload, manifest, m)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Kinds of differences between a tree and its manifest.
const (
	diffModified = "modified"
	diffMissing  = "missing"
	diffExtra    = "extra"
)

// treeDiff is one difference, for one path.
type treeDiff struct {
	kind, path, why string
}

func (d treeDiff) String() string {
	s := fmt.Sprintf("%-9s %s", d.kind+":", quotePath(d.path))
	if d.why != "" {
		s += " (" + d.why + ")"
	}
	return s
}

// compareTree hashes the tree's files that the manifest lists with the
// same size and returns every difference, sorted by path, and the bytes
// hashed.
func compareTree(ctx context.Context, tr *tree, m *export.Manifest, ef exportFlags, stderr io.Writer) ([]treeDiff, int64, error) {
	want := make(map[string]*proto.ExportFile, len(m.Files))
	for i := range m.Files {
		want[m.Files[i].Path] = &m.Files[i]
	}
	var diffs []treeDiff
	var toHash []treeFile
	var total int64
	found := make(map[string]bool, len(tr.files))
	for _, f := range tr.files {
		mf, ok := want[f.rel]
		switch {
		case !ok:
			diffs = append(diffs, treeDiff{kind: diffExtra, path: f.rel})
		case mf.Size != f.size:
			found[f.rel] = true
			diffs = append(diffs, treeDiff{kind: diffModified, path: f.rel, why: fmt.Sprintf("size %d, manifest says %d", f.size, mf.Size)})
		default:
			found[f.rel] = true
			toHash = append(toHash, f)
			total += f.size
		}
	}
	for _, o := range tr.other {
		if _, listed := want[o.rel]; listed {
			found[o.rel] = true
			diffs = append(diffs, treeDiff{kind: diffModified, path: o.rel, why: "now a " + o.kind})
			continue
		}
		diffs = append(diffs, treeDiff{kind: diffExtra, path: o.rel, why: o.kind})
	}
	for _, f := range m.Files {
		if !found[f.Path] {
			diffs = append(diffs, treeDiff{kind: diffMissing, path: f.Path})
		}
	}
	p := newProgress(ef.progress, stderr, "verifying", len(toHash), total)
	sums, err := hashFiles(ctx, toHash, ef.jobs, p)
	p.finish()
	if err != nil {
		return nil, 0, err
	}
	for i, f := range toHash {
		if sums[i].sha256 != want[f.rel].Digest.SHA256 {
			diffs = append(diffs, treeDiff{kind: diffModified, path: f.rel, why: "sha256 differs"})
		}
	}
	slices.SortFunc(diffs, func(a, b treeDiff) int {
		if c := strings.Compare(a.path, b.path); c != 0 {
			return c
		}
		return strings.Compare(a.kind, b.kind)
	})
	return diffs, total, nil
}
