package release

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxAllowlist caps the allowlist file.
const maxAllowlist = 4 << 20

// ErrAllowlist is wrapped by every allowlist parse or validation failure.
var ErrAllowlist = errors.New("invalid release allowlist")

type allowlistFile struct {
	Entries []allowlistEntry `yaml:"entries"`
}

type allowlistEntry struct {
	Digest     string `yaml:"digest"`
	Version    string `yaml:"version"`
	ApprovedBy string `yaml:"approvedBy"`
	ApprovedAt string `yaml:"approvedAt"`
	Note       string `yaml:"note"`
}

// LoadAllowlist reads a release allowlist:
//
//	entries:
//	  - digest: sha256:<64 hex>          # required, lowercase
//	    version: 1.4.2                   # optional semantic version (v prefix optional)
//	    approvedBy: alice@example.org    # optional; makes the entry a manual approval
//	    approvedAt: 2026-05-01T10:00:00Z # optional RFC 3339 time or date; needs approvedBy
//	    note: emergency hotfix build     # optional
//
// Unknown keys, duplicate digests and more than one YAML document are
// refused. An empty file is an empty allowlist.
func LoadAllowlist(path string) ([]AllowEntry, error) {
	b, err := readCapped(path, maxAllowlist)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAllowlist, err)
	}
	out, err := ParseAllowlist(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// ParseAllowlist parses allowlist YAML (see LoadAllowlist).
func ParseAllowlist(b []byte) ([]AllowEntry, error) {
	if len(b) > maxAllowlist {
		return nil, fmt.Errorf("%w: over %d bytes", ErrAllowlist, maxAllowlist)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f allowlistFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %v", ErrAllowlist, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrAllowlist)
	}
	out := make([]AllowEntry, 0, len(f.Entries))
	seen := map[string]bool{}
	for i, e := range f.Entries {
		a := AllowEntry{Digest: e.Digest, Version: e.Version, ApprovedBy: e.ApprovedBy, Note: e.Note}
		if e.ApprovedAt != "" {
			t, err := parseApprovedAt(e.ApprovedAt)
			if err != nil {
				return nil, fmt.Errorf("%w: entry %d: approvedAt: %v", ErrAllowlist, i, err)
			}
			a.ApprovedAt = &t
		}
		if err := validateEntry(a); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrAllowlist, i, err)
		}
		if seen[a.Digest] {
			return nil, fmt.Errorf("%w: entry %d: %s listed twice", ErrAllowlist, i, a.Digest)
		}
		seen[a.Digest] = true
		out = append(out, a)
	}
	return out, nil
}

func parseApprovedAt(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a date", truncate(s, 64))
	}
	return t, nil
}

func validateEntry(e AllowEntry) error {
	if err := ValidateDigest(e.Digest); err != nil {
		return err
	}
	if e.Version != "" {
		if _, err := canonicalVersion(e.Version); err != nil {
			return fmt.Errorf("version: %w", err)
		}
	}
	if e.ApprovedAt != nil && e.ApprovedBy == "" {
		return errors.New("approvedAt without approvedBy")
	}
	return nil
}
