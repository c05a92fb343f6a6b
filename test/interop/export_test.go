package interop

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/export"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// signedExport is an export directory signed in-process the way the agent
// signs one: export.Build, then attest.Sign with file: keys opened by the
// agent's key opener.
type signedExport struct {
	dir, out string
	manifest string
	bundles  map[string]string // key id -> bundle file
	pubs     map[string]string // key id -> public key PEM file
	envelope string
}

func signExport(t *testing.T) *signedExport {
	t.Helper()
	s := &signedExport{dir: filepath.Join(t.TempDir(), "exp"), out: t.TempDir(), bundles: map[string]string{}, pubs: map[string]string{}}
	files := map[string]string{
		"README.txt":             "an offline export\n",
		"sbom/app.cdx.json":      `{"bomFormat":"CycloneDX","specVersion":"1.6"}`,
		"vex/app.openvex.json":   `{"@context":"https://openvex.dev/ns/v0.2.0"}`,
		"feeds/données-é.json":   `{"feed":true}`,
		"feeds/deep/er/x.tar.gz": strings.Repeat("x", 70000),
	}
	req := &proto.ExportRequest{Export: proto.Export{ID: "exp-interop", Profile: "offline-kit", CreatedAt: "2026-12-03T10:00:00Z"},
		ScannerImageDigest: "sha256:" + strings.Repeat("ab", 32)}
	for name, content := range files {
		p := filepath.Join(s.dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(content))
		req.Export.Files = append(req.Export.Files, proto.ExportFile{Path: name, Digest: proto.FileDigest{SHA256: hex.EncodeToString(sum[:])}, Size: int64(len(content))})
	}
	b, err := export.Build(req, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	var signers []attest.Signer
	for _, k := range []struct{ id, alg string }{{"tenant-p256", keys.AlgECDSAP256}, {"tenant-ed25519", keys.AlgEd25519}} {
		path := filepath.Join(s.out, k.id+".pem")
		if _, err := keys.GenerateFileKey(path, k.alg); err != nil {
			t.Fatal(err)
		}
		key, err := (&keys.Opener{}).Open(context.Background(), "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = key.Close() })
		pub, err := keys.MarshalPublicKeyPEM(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		s.pubs[k.id] = filepath.Join(s.out, k.id+".pub")
		if err := os.WriteFile(s.pubs[k.id], pub, 0o644); err != nil {
			t.Fatal(err)
		}
		signers = append(signers, attest.Signer{ID: k.id, Source: "file", Key: key})
	}
	res, err := attest.Sign(context.Background(), b.Statement, signers)
	if err != nil {
		t.Fatal(err)
	}
	s.manifest = filepath.Join(s.out, "export.json")
	if err := os.WriteFile(s.manifest, b.Manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, si := range res.SigningIdentity {
		s.bundles[si.KeyID] = filepath.Join(s.out, "provenance-"+si.KeyID+".bundle.json")
		if err := os.WriteFile(s.bundles[si.KeyID], res.Bundles[i], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env, _ := json.Marshal(res.Envelope)
	s.envelope = filepath.Join(s.out, "provenance.dsse.json")
	if err := os.WriteFile(s.envelope, env, 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCosignVerifiesExport: the pinned cosign, with no network, verifies
// the provenance bundle of each key against export.json and against any
// one file of the export, and refuses a modified file and a file that is
// not part of the export.
func TestCosignVerifiesExport(t *testing.T) {
	s := signExport(t)
	modified := filepath.Join(t.TempDir(), "app.cdx.json")
	os.WriteFile(modified, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.7"}`), 0o644)
	stranger := filepath.Join(t.TempDir(), "stranger")
	os.WriteFile(stranger, []byte("not in the export\n"), 0o644)
	for id, bundlePath := range s.bundles {
		pub, _ := os.ReadFile(s.pubs[id])
		bundle, _ := os.ReadFile(bundlePath)
		t.Run(id, func(t *testing.T) {
			for _, artifact := range []string{
				s.manifest,
				filepath.Join(s.dir, "sbom", "app.cdx.json"),
				filepath.Join(s.dir, "feeds", "données-é.json"),
				filepath.Join(s.dir, "feeds", "deep", "er", "x.tar.gz"),
			} {
				if out, err := cosignVerify(t, pub, bundle, proto.PredicateSLSAProvenanceV1, artifact); err != nil {
					t.Fatalf("cosign rejected %s: %v\n%s", artifact, err, out)
				}
			}
			for _, artifact := range []string{modified, stranger} {
				if out, err := cosignVerify(t, pub, bundle, proto.PredicateSLSAProvenanceV1, artifact); err == nil {
					t.Fatalf("cosign accepted %s:\n%s", artifact, out)
				}
			}
			// Another predicate type: refused.
			if out, err := cosignVerify(t, pub, bundle, "https://slsa.dev/provenance/v0.2", s.manifest); err == nil {
				t.Fatalf("cosign accepted another predicate type:\n%s", out)
			}
			// sigstore-go agrees.
			key, err := parsePub(pub)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`))
			if _, err := attest.VerifyBundle(bundle, []crypto.PublicKey{key}, attest.Expect{
				PredicateType: proto.PredicateSLSAProvenanceV1, ArtifactSHA256: hex.EncodeToString(sum[:])}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestVerifyExportOffline runs the built signerctl with no network
// (unshare -n as root): verify export passes on the intact export, for
// each key's bundle and with the multi-signature envelope, and names a
// modified, a missing and an extra file after changes, with exit status 1.
func TestVerifyExportOffline(t *testing.T) {
	s := signExport(t)
	ctl := harness.Binary(t, "cmd/signerctl")
	run := func(args ...string) (string, int) {
		cmd := offline(ctl, args...)
		out, err := cmd.CombinedOutput()
		code := 0
		if err != nil {
			code = cmd.ProcessState.ExitCode()
			if code <= 0 {
				t.Fatalf("signerctl: %v\n%s", err, out)
			}
		}
		return string(out), code
	}
	for id := range s.bundles {
		out, code := run("verify", "export", "--dir", s.dir, "--manifest", s.manifest, "--bundle", s.bundles[id],
			"--envelope", s.envelope, "--key", s.pubs["tenant-p256"], "--key", s.pubs["tenant-ed25519"])
		if code != 0 || !strings.Contains(out, "Verified OK: export exp-interop") {
			t.Fatalf("bundle of %s: exit %d\n%s", id, code, out)
		}
	}
	os.WriteFile(filepath.Join(s.dir, "sbom", "app.cdx.json"), []byte(`{"bomFormat":"CycloneDX","specVersion":"1.7"}`), 0o644)
	os.Remove(filepath.Join(s.dir, "README.txt"))
	os.WriteFile(filepath.Join(s.dir, "vex", "extra.json"), []byte("{}"), 0o644)
	out, code := run("verify", "export", "--dir", s.dir, "--manifest", s.manifest, "--bundle", s.bundles["tenant-p256"], "--key", s.pubs["tenant-p256"])
	if code != 1 {
		t.Fatalf("exit %d after changes\n%s", code, out)
	}
	for _, want := range []string{"missing:  README.txt", "modified: sbom/app.cdx.json (sha256 differs)", "extra:    vex/extra.json",
		"1 modified, 1 missing, 1 extra"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
