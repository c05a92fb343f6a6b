// Package kittest builds small, complete offline kits for tests: real
// files, a real SHA256SUMS, and both statements signed with a real key
// through the same attest code the agent signs with.
package kittest

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/kit"
	"github.com/stellaops/signer-agent/proto"
)

// Commit is the source commit the test kits claim.
const Commit = "0123456789abcdef0123456789abcdef01234567"

// Spec says what to put in a kit. The zero value after Default is a
// valid kit; tests change one thing to make it invalid.
type Spec struct {
	Version string
	// Files are kit-relative paths and contents.
	Files map[string]string
	// Executable lists files written 0755.
	Executable []string
	// Subjects are the provenance subjects; nil means one per file that
	// kit.NeedsProvenance selects, plus External.
	Subjects []proto.Subject
	// External are subjects outside the kit (the OCI image).
	External []proto.Subject
	// ProvenanceCommit defaults to Commit.
	ProvenanceCommit string
	// SumsKey and ProvenanceKey sign the two statements (both default to
	// the key given to Build).
	SumsKey, ProvenanceKey crypto.Signer
}

// Default returns a spec with a .deb, two binaries, a README and units.
func Default() *Spec {
	return &Spec{
		Version: "1.2.3",
		Files: map[string]string{
			"README.md":                            "# kit\n",
			"install.sh":                           "#!/bin/sh\nexit 0\n",
			"signer-agent_1.2.3_amd64.deb":         "!<arch>\nnot really a deb\n",
			"bin/linux-amd64/signer-agent":         "\x7fELF agent\n",
			"bin/linux-amd64/signerctl":            "\x7fELF ctl\n",
			"systemd/signer-agent.service":         "[Unit]\n",
			"trust/release/README.md":              "release keys\n",
			"docs/runbooks/key-rotation.md":        "# rotate\n",
			"config/config.example.yaml":           "version: 1\n",
			"trust/authority/README.md":            "jwks\n",
			"trust/licensing/README.md":            "licensing\n",
			"docs/offline-kit.md":                  "# offline kit\n",
			"systemd/signer-agent.socket":          "[Socket]\n",
			"systemd/signer-agent-admin.socket":    "[Socket]\n",
			"bin/linux-arm64/signer-agent":         "\x7fELF agent arm64\n",
			"bin/linux-arm64/signerctl":            "\x7fELF ctl arm64\n",
			"signer-agent_1.2.3_arm64.deb":         "!<arch>\nnot really an arm64 deb\n",
			"systemd/signer-agent.sysusers":        "u signer-agent -\n",
			"systemd/signer-agent.tmpfiles":        "d /run/signer-agent\n",
			"trust/README.md":                      "trust roots\n",
			"docs/runbooks/audit-integrity.md":     "# audit\n",
			"config/README.md":                     "config\n",
			"docs/README.md":                       "docs\n",
			"systemd/README.md":                    "units\n",
			"trust/release/allowlist.example.yaml": "digests: []\n",
		},
		Executable: []string{"install.sh", "bin/linux-amd64/signer-agent", "bin/linux-amd64/signerctl", "bin/linux-arm64/signer-agent", "bin/linux-arm64/signerctl"},
		External:   []proto.Subject{{Name: "signer-agent_1.2.3_oci.tar", Digest: map[string]string{"sha256": SHA256([]byte("image"))}}},
	}
}

// SHA256 is the lowercase hex SHA-256 of b.
func SHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Build writes the kit described by s below parent, as directory
// "signer-agent-offline-kit_VERSION", and returns its path. key signs
// whatever s does not assign to another key.
func Build(t testing.TB, parent string, s *Spec, key crypto.Signer) string {
	t.Helper()
	top := filepath.Join(parent, "signer-agent-offline-kit_"+s.Version)
	exec := map[string]bool{}
	for _, p := range s.Executable {
		exec[p] = true
	}
	for p, content := range s.Files {
		full := filepath.Join(top, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if exec[p] {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	subjects := s.Subjects
	if subjects == nil {
		for p, content := range s.Files {
			if kit.NeedsProvenance(p) {
				subjects = append(subjects, proto.Subject{Name: p, Digest: map[string]string{"sha256": SHA256([]byte(content))}})
			}
		}
		sort.Slice(subjects, func(i, j int) bool { return subjects[i].Name < subjects[j].Name })
		subjects = append(subjects, s.External...)
	}
	commit := s.ProvenanceCommit
	if commit == "" {
		commit = Commit
	}
	pred, err := kit.ProvenanceJSON(kit.Build{
		Version: s.Version, SourceRepo: "git+https://example.invalid/signer-agent", SourceCommit: commit,
		Command: "make dist", SourceDateEpoch: 1700000000, BuilderID: "https://example.invalid/builder",
		BuilderVersion: map[string]string{"go": "go1.26.8"},
		Dependencies:   []kit.Dependency{{Name: "go", URI: "pkg:golang/go@1.26.8"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	pk := s.ProvenanceKey
	if pk == nil {
		pk = key
	}
	writeBundle(t, filepath.Join(top, kit.ProvenanceFile), pk, kit.ProvenancePredicateType, pred, subjects)
	if err := kit.WriteSums(top); err != nil {
		t.Fatal(err)
	}
	sums, err := os.ReadFile(filepath.Join(top, kit.SumsFile))
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := json.Marshal(kit.Checksums{Kit: filepath.Base(top), Version: s.Version, SourceCommit: Commit})
	sk := s.SumsKey
	if sk == nil {
		sk = key
	}
	writeBundle(t, filepath.Join(top, kit.SumsBundleFile), sk, kit.ChecksumsPredicateType, cs,
		[]proto.Subject{{Name: kit.SumsFile, Digest: map[string]string{"sha256": SHA256(sums)}}})
	return top
}

// TarGz packs the kit directory top into top+".tar.gz" and returns its path.
func TarGz(t testing.TB, top string) string {
	t.Helper()
	out := top + ".tar.gz"
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := kit.WriteTarGz(f, top, filepath.Base(top), time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// writeBundle signs an in-toto statement as the agent does and writes the
// sigstore bundle to path.
func writeBundle(t testing.TB, path string, key crypto.Signer, predType string, pred []byte, subjects []proto.Subject) {
	t.Helper()
	payload, err := attest.BuildStatement(&proto.SignRequest{Subject: subjects, PredicateType: predType, Predicate: pred})
	if err != nil {
		t.Fatal(err)
	}
	res, err := attest.Sign(context.Background(), payload, []attest.Signer{{ID: "release", Source: "memory", Key: key}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, res.Bundles[0], 0o644); err != nil {
		t.Fatal(err)
	}
}
