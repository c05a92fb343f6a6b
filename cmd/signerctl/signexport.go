package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/export"
	"github.com/stellaops/signer-agent/internal/fsutil"
	"github.com/stellaops/signer-agent/proto"
)

const signExportHelp = `
Sign a directory as an export (SPEC §4.4): hash every file under --dir in
parallel, ask the agent (POST /api/v1/signer/sign/export) to build
export.json and sign SLSA provenance over it and every file, check the
answer, and write export.json, the DSSE envelope and the sigstore bundle(s).

The tree: every regular file under --dir, at any depth, is part of the
export, named by its path relative to --dir with "/" separators. Symbolic
links, devices, FIFOs and sockets are refused (nothing is followed), and
so are paths the agent would refuse (control characters, backslashes, a
file named export.json at the top). Empty directories, file modes, owners
and times are not recorded. Output files that lie inside --dir are left
out of the export.

createdAt: --created-at (RFC 3339, UTC), else $SOURCE_DATE_EPOCH, else the
current time (whole seconds). The agent adds no clock: the same tree with
the same --id, --profile and --created-at signs to byte-identical
export.json and provenance on any node of the installation.

Materials (inputs the export was made from; repeatable):
  --material DIGEST,URI   e.g. sha256:HEX,oci://registry.example/app@sha256:HEX

Outputs (written durably: temporary file, fsync, rename):
  --out-manifest FILE   export.json exactly as signed
  --out-bundle PATH     the sigstore bundle(s); several --key write one file
                        per key as for 'signerctl sign'
  --out-envelope FILE   the DSSE envelope (optional)

Verify later with 'signerctl verify export', or one file at a time with
cosign verify-blob-attestation --type https://slsa.dev/provenance/v1.

--credentials FILE reads the JSON object of 'signerctl dev token'; its poe
and scannerImageDigest fill the request unless given by flag.
`

// exportFlags are the flags shared by sign export and verify export.
type exportFlags struct {
	jobs     int
	progress string
}

func (e *exportFlags) register(fs *flags) {
	fs.IntVar(&e.jobs, "jobs", runtime.NumCPU(), "hash `N` files in parallel")
	fs.StringVar(&e.progress, "progress", "auto", "progress on stderr: `auto` (on a terminal, for large trees), always or never")
}

func (e *exportFlags) check() error {
	if e.jobs < 1 {
		return usagef("--jobs: at least 1")
	}
	return progressFlag(e.progress)
}

// materialArgs collects --material DIGEST,URI.
type materialArgs []proto.Material

func (m *materialArgs) set(v string) error {
	d, uri, ok := strings.Cut(v, ",")
	if !ok {
		return errors.New("want DIGEST,URI (sha256:HEX,scheme:…)")
	}
	alg, hex, _ := strings.Cut(d, ":")
	if err := proto.ValidateDigest(alg, hex); err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	*m = append(*m, proto.Material{URI: uri, Digest: map[string]string{alg: hex}})
	return nil
}

// cmdSignExport is `signerctl sign export`.
func (a *app) cmdSignExport(ctx context.Context, args []string) error {
	fs := a.flagSet("sign export", "sign export --dir DIR [--id ID] [--profile P] [--created-at T] --out-manifest FILE --out-bundle PATH [--out-envelope FILE] [flags]", signExportHelp)
	var (
		ef          exportFlags
		keyIDs      stringList
		materials   materialArgs
		dir         = fs.String("dir", "", "export root `DIR`")
		id          = fs.String("id", "", "export `ID` (default: the base name of --dir)")
		profile     = fs.String("profile", "default", "export `PROFILE`")
		createdAt   = fs.String("created-at", "", "creation `TIME`, RFC 3339 UTC (default: $SOURCE_DATE_EPOCH, else now)")
		scanner     = fs.String("scanner-digest", "", "scanner image `DIGEST` sha256:HEX (scannerImageDigest)")
		outManifest = fs.String("out-manifest", "", "write export.json to `FILE`")
		outEnvelope = fs.String("out-envelope", "", "write the DSSE envelope JSON to `FILE`")
		outBundle   = fs.String("out-bundle", "", "write the sigstore bundle(s) to `PATH`")
		credsPath   = fs.String("credentials", "", "credentials JSON `FILE` (signerctl dev token)")
	)
	ef.register(fs)
	fs.Var(&keyIDs, "key", "signing key `ID` (repeatable: one signature per key; default: the tenant's default key)")
	fs.Func("material", "`DIGEST,URI` of an input the export was made from (repeatable)", materials.set)
	a.socketFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	switch {
	case *dir == "":
		return usagef("--dir is required")
	case *outManifest == "":
		return usagef("--out-manifest is required")
	case *outBundle == "":
		return usagef("--out-bundle is required")
	}
	if err := ef.check(); err != nil {
		return err
	}
	if *scanner != "" {
		if err := proto.ValidateDigestString(*scanner); err != nil {
			return usagef("--scanner-digest: %v", err)
		}
	}
	created, err := exportCreatedAt(*createdAt, a.getenv("SOURCE_DATE_EPOCH"), time.Now)
	if err != nil {
		return err
	}
	root, err := exportRoot(*dir)
	if err != nil {
		return err
	}
	if *id == "" {
		*id = filepath.Base(root)
		if err := proto.ValidateExportName(*id); err != nil {
			return usagef("--id is required: the name of --dir is not a valid export id (%v)", err)
		}
	}
	req := &proto.ExportRequest{
		Export:             proto.Export{ID: *id, Profile: *profile, CreatedAt: created, Materials: materials},
		ScannerImageDigest: *scanner,
	}
	if len(keyIDs) > 0 {
		req.Options = &proto.SignOptions{KeyIDs: keyIDs}
	}
	// The outputs (every bundle file name included) are not part of the
	// export when they lie inside it.
	outs := []string{*outManifest, *outEnvelope}
	bundleKeys := []string(keyIDs)
	if len(bundleKeys) == 0 {
		bundleKeys = []string{"default"}
	}
	outs = append(outs, bundlePaths(*outBundle, bundleKeys)...)
	skip := map[string]bool{}
	for _, o := range outs {
		if o == "" {
			continue
		}
		if rel := relInRoot(root, o); rel != "" {
			skip[rel] = true
		}
	}

	// Walk, check, hash.
	tr, err := walkTree(ctx, root, skip)
	if err != nil {
		return err
	}
	if len(tr.other) > 0 {
		return fmt.Errorf("%s: %s is a %s; an export holds regular files only (%d such entries)",
			*dir, quotePath(tr.other[0].rel), tr.other[0].kind, len(tr.other))
	}
	if len(tr.files) == 0 {
		return fmt.Errorf("%s: no files to export", *dir)
	}
	if len(tr.files) > proto.MaxExportFiles {
		return fmt.Errorf("%s: %d files, more than the %d an export may hold; split the export", *dir, len(tr.files), proto.MaxExportFiles)
	}
	for _, f := range tr.files {
		if err := proto.ValidateExportPath(f.rel); err != nil {
			return fmt.Errorf("%s: file %s: %v", *dir, quotePath(f.rel), err)
		}
	}
	p := newProgress(ef.progress, a.stderr, "hashing", len(tr.files), tr.bytes)
	sums, err := hashFiles(ctx, tr.files, ef.jobs, p)
	p.finish()
	if err != nil {
		return err
	}
	req.Export.Files = make([]proto.ExportFile, len(tr.files))
	var total int64
	for i, f := range tr.files {
		req.Export.Files[i] = proto.ExportFile{Path: f.rel, Digest: proto.FileDigest{SHA256: sums[i].sha256}, Size: sums[i].size}
		total += sums[i].size
	}

	creds, err := a.loadCredentials(*credsPath)
	if err != nil {
		return err
	}
	if creds != nil {
		if req.PoE == nil && creds.PoE != "" {
			req.PoE = &proto.PoE{Format: "jwt", Value: creds.PoE}
		}
		if req.ScannerImageDigest == "" {
			req.ScannerImageDigest = creds.ScannerImageDigest
		}
	}
	// Check the request before it leaves, for a clear local error.
	if err := req.Validate(); err != nil {
		return err
	}
	c := a.client()
	creds.Apply(c)
	resp, err := c.SignExport(ctx, req)
	if err != nil {
		return err
	}
	if err := checkExportResponse(req, resp); err != nil {
		return err
	}

	var written []string
	if err := fsutil.WriteFileAtomic(*outManifest, resp.Manifest, 0o644); err != nil {
		return err
	}
	written = append(written, "manifest:       "+*outManifest)
	if *outEnvelope != "" {
		b, err := json.Marshal(resp.Envelope)
		if err != nil {
			return fmt.Errorf("encode envelope: %w", err)
		}
		if err := fsutil.WriteFileAtomic(*outEnvelope, append(b, '\n'), 0o644); err != nil {
			return err
		}
		written = append(written, "envelope:       "+*outEnvelope)
	}
	ids := make([]string, len(resp.Bundles))
	for i := range ids {
		ids[i] = keyIDAt(&resp.SignResponse, i)
	}
	for i, bp := range bundlePaths(*outBundle, ids) {
		if err := fsutil.WriteFileAtomic(bp, resp.Bundles[i], 0o644); err != nil {
			return err
		}
		written = append(written, fmt.Sprintf("bundle:         %s (key %s)", bp, ids[i]))
	}
	printExportSummary(a.stdout, req, resp, total, written)
	if n := len(req.Export.Files); n > export.CosignMaxFiles {
		fmt.Fprintf(a.stderr, "note: %d files: cosign verify-blob-attestation verifies exports of at most %d files (1024 subjects); verify this one with 'signerctl verify export'\n",
			n, export.CosignMaxFiles)
	}
	return nil
}

// exportCreatedAt is --created-at as given (validated), else the time of
// SOURCE_DATE_EPOCH, else now, in RFC 3339 UTC with whole seconds.
func exportCreatedAt(flag, epoch string, now func() time.Time) (string, error) {
	if flag != "" {
		if err := proto.ValidateExportCreatedAt(flag); err != nil {
			return "", usagef("--created-at: %v", err)
		}
		return flag, nil
	}
	if epoch != "" {
		s, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil || s < 0 || s > 253402300799 {
			return "", fmt.Errorf("SOURCE_DATE_EPOCH: want seconds since 1970 (got %q)", epoch)
		}
		return time.Unix(s, 0).UTC().Format(time.RFC3339), nil
	}
	return now().UTC().Truncate(time.Second).Format(time.RFC3339), nil
}

// checkExportResponse checks the agent's answer before anything is
// written: export.json is byte for byte the manifest of what was asked,
// manifestDigest is its digest, the envelope's statement is provenance
// over exactly that manifest and its files, and every bundle carries that
// same statement. (The signatures themselves are checked offline by
// 'signerctl verify export' with the agent's public key.)
func checkExportResponse(req *proto.ExportRequest, resp *proto.ExportResponse) error {
	want, err := export.NewManifest(&req.Export).Canonical()
	if err != nil {
		return err
	}
	if !bytes.Equal(resp.Manifest, want) {
		return errors.New("the agent returned an export.json other than the one requested; nothing written")
	}
	if resp.ManifestDigest != attest.Digest(resp.Manifest) {
		return errors.New("the agent's manifestDigest is not the digest of its export.json; nothing written")
	}
	m, err := export.ParseManifest(resp.Manifest)
	if err != nil {
		return fmt.Errorf("the agent's export.json: %w; nothing written", err)
	}
	if _, err := export.CheckProvenance(resp.Envelope.Payload, resp.Manifest, m); err != nil {
		return fmt.Errorf("the agent's statement: %w; nothing written", err)
	}
	if len(resp.Bundles) == 0 || len(resp.Bundles) != len(resp.Envelope.Signatures) {
		return fmt.Errorf("the agent returned %d bundles for %d signatures; nothing written", len(resp.Bundles), len(resp.Envelope.Signatures))
	}
	for i, b := range resp.Bundles {
		p, err := bundlePayload(b)
		if err != nil || !bytes.Equal(p, resp.Envelope.Payload) {
			return fmt.Errorf("bundle %d does not carry the envelope's statement; nothing written", i+1)
		}
	}
	return nil
}

// bundlePayload returns the DSSE payload of a sigstore bundle (not
// verified: callers compare it with a payload they trust or verify).
func bundlePayload(b []byte) ([]byte, error) {
	var v struct {
		DSSE struct {
			Payload string `json:"payload"`
		} `json:"dsseEnvelope"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("parse bundle: %w", err)
	}
	p, err := base64.StdEncoding.DecodeString(v.DSSE.Payload)
	if err != nil || len(p) == 0 {
		return nil, errors.New("parse bundle: no DSSE payload")
	}
	return p, nil
}

func printExportSummary(w io.Writer, req *proto.ExportRequest, resp *proto.ExportResponse, total int64, written []string) {
	printSummary(w, &resp.SignResponse, []summaryField{
		{"export", fmt.Sprintf("%s (profile %s, createdAt %s)", req.Export.ID, req.Export.Profile, req.Export.CreatedAt)},
		{"files", fmt.Sprintf("%d (%d bytes)", len(req.Export.Files), total)},
		{"manifestDigest", resp.ManifestDigest},
	}, written)
}
