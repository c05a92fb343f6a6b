package kit

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/proto"
)

// ErrVerify is wrapped by every verification failure.
var ErrVerify = errors.New("kit verification failed")

// Result is what a successful verification established.
type Result struct {
	// Top is the kit's top directory name (as found, not signed).
	Top string
	// Kit, Version and SourceCommit come from the signed checksums
	// statement.
	Kit, Version, SourceCommit string
	// Files is the number of files SHA256SUMS lists (all verified).
	Files int
	// KeyHint is the hint of the release key that signed SHA256SUMS.
	KeyHint string
	// InKit are the provenance subjects found in the kit (all matched);
	// External the ones the kit does not hold (such as the OCI image),
	// for the operator to compare with the artifacts they have.
	InKit, External []proto.Subject
}

// Verify checks the kit at p (a directory or a .tar.gz) against the
// release public keys, with no network: the signature over SHA256SUMS, the
// digest of every file, that no file is unlisted, and the signed
// provenance's subjects. The error names the first mismatch and wraps
// ErrVerify.
func Verify(ctx context.Context, p string, pubs []crypto.PublicKey) (*Result, error) {
	if len(pubs) == 0 {
		return nil, fmt.Errorf("%w: no release public key", ErrVerify)
	}
	c, err := readKit(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := verifyContents(c, pubs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	return res, nil
}

func verifyContents(c *contents, pubs []crypto.PublicKey) (*Result, error) {
	res := &Result{Top: c.top}

	// 1. The signature over SHA256SUMS.
	sums, sig := c.files[SumsFile], c.files[SumsBundleFile]
	if sums == nil {
		return nil, fmt.Errorf("%s: missing", SumsFile)
	}
	if sig == nil {
		return nil, fmt.Errorf("%s: missing", SumsBundleFile)
	}
	v, err := attest.VerifyBundle(sig.data, pubs, attest.Expect{
		PredicateType: ChecksumsPredicateType, ArtifactSHA256: sums.sha256})
	if err != nil {
		return nil, fmt.Errorf("%s: does not verify %s with the given key: %w", SumsBundleFile, SumsFile, err)
	}
	if len(v.KeyHints) > 0 {
		res.KeyHint = v.KeyHints[0]
	}
	pred, err := bundlePredicate(sig.data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SumsBundleFile, err)
	}
	var cs Checksums
	dec := json.NewDecoder(bytes.NewReader(pred))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cs); err != nil {
		return nil, fmt.Errorf("%s: checksums predicate: %w", SumsBundleFile, err)
	}
	if cs.Version == "" || cs.SourceCommit == "" {
		return nil, fmt.Errorf("%s: checksums predicate without version or sourceCommit", SumsBundleFile)
	}
	res.Kit, res.Version, res.SourceCommit = cs.Kit, cs.Version, cs.SourceCommit

	// 2. Every listed file, then every unlisted one.
	list, err := ParseSums(sums.data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SumsFile, err)
	}
	listed := make(map[string]bool, len(list))
	for _, s := range list {
		f := c.files[s.Path]
		if f == nil {
			return nil, fmt.Errorf("%s: listed in %s but missing from the kit", s.Path, SumsFile)
		}
		if f.sha256 != s.SHA256 {
			return nil, fmt.Errorf("%s: checksum mismatch: %s says sha256:%s, the file has sha256:%s", s.Path, SumsFile, s.SHA256, f.sha256)
		}
		listed[s.Path] = true
	}
	for _, p := range sortedPaths(c.files) {
		if !listed[p] && p != SumsFile && p != SumsBundleFile {
			return nil, fmt.Errorf("%s: in the kit but not listed in %s", p, SumsFile)
		}
	}
	res.Files = len(list)

	// 3. The provenance: signed by the same keys, valid SLSA v1, of the
	// same commit, covering every package and binary of the kit.
	prov := c.files[ProvenanceFile]
	if prov == nil {
		return nil, fmt.Errorf("%s: missing", ProvenanceFile)
	}
	pv, err := attest.VerifyBundle(prov.data, pubs, attest.Expect{PredicateType: ProvenancePredicateType, AnyArtifact: true})
	if err != nil {
		return nil, fmt.Errorf("%s: does not verify with the given key: %w", ProvenanceFile, err)
	}
	ppred, err := bundlePredicate(prov.data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ProvenanceFile, err)
	}
	commit, err := parseProvenance(ppred)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ProvenanceFile, err)
	}
	if commit != cs.SourceCommit {
		return nil, fmt.Errorf("%s: source commit %s, but %s was signed for %s", ProvenanceFile, commit, SumsFile, cs.SourceCommit)
	}
	subjects := map[string]bool{}
	for _, s := range pv.Subjects {
		f := c.files[s.Name]
		if f == nil {
			res.External = append(res.External, s)
			continue
		}
		want := s.Digest["sha256"]
		if want == "" {
			return nil, fmt.Errorf("%s: provenance subject without a sha256 digest", s.Name)
		}
		if want != f.sha256 {
			return nil, fmt.Errorf("%s: provenance subject digest sha256:%s, the file has sha256:%s", s.Name, want, f.sha256)
		}
		subjects[s.Name] = true
		res.InKit = append(res.InKit, s)
	}
	for _, p := range sortedPaths(c.files) {
		if NeedsProvenance(p) && !subjects[p] {
			return nil, fmt.Errorf("%s: not a subject of the provenance", p)
		}
	}
	if len(res.InKit) == 0 {
		return nil, fmt.Errorf("%s: no subject is a file of the kit", ProvenanceFile)
	}
	return res, nil
}

// NeedsProvenance reports whether a kit file must be a provenance subject:
// the Debian packages and the plain binaries.
func NeedsProvenance(p string) bool {
	return path.Ext(p) == ".deb" || strings.HasPrefix(p, "bin/")
}

// bundlePredicate returns the predicate of the in-toto statement inside a
// sigstore bundle whose signature has already been verified.
func bundlePredicate(bundleJSON []byte) (json.RawMessage, error) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(bundleJSON); err != nil {
		return nil, fmt.Errorf("parse bundle: %w", err)
	}
	env, err := b.Envelope()
	if err != nil {
		return nil, err
	}
	payload, err := env.RawEnvelope().DecodeB64Payload()
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	var st struct {
		Predicate json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	if len(st.Predicate) == 0 {
		return nil, errors.New("statement without a predicate")
	}
	return st.Predicate, nil
}

func sortedPaths(m map[string]*file) []string {
	out := make([]string, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
