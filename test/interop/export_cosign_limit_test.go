package interop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/export"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// TestCosignExportSubjectLimit pins what docs/exports.md §5 says of the
// pinned cosign: it verifies a file of an export, and export.json, when
// the export has export.CosignMaxFiles files (1024 subjects), and refuses
// any artifact of an export with one file more ("too many subjects", a
// sigstore-go limit). If a cosign upgrade lifts the limit this test fails,
// and the documentation and signerctl's note must change with it.
func TestCosignExportSubjectLimit(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "k.pem")
	if _, err := keys.GenerateFileKey(keyPath, keys.AlgECDSAP256); err != nil {
		t.Fatal(err)
	}
	key, err := (&keys.Opener{}).Open(context.Background(), "file:"+keyPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = key.Close() })
	pub, err := keys.MarshalPublicKeyPEM(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "f00000")
	content := []byte("the one file on disk\n")
	if err := os.WriteFile(file, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	for _, tc := range []struct {
		files int
		ok    bool
	}{{export.CosignMaxFiles, true}, {export.CosignMaxFiles + 1, false}} {
		t.Run(fmt.Sprintf("%d files", tc.files), func(t *testing.T) {
			req := &proto.ExportRequest{Export: proto.Export{ID: "exp-limit", Profile: "p", CreatedAt: "2026-12-03T10:00:00Z"}}
			for i := range tc.files {
				d := hex.EncodeToString(sum[:])
				if i > 0 {
					s := sha256.Sum256([]byte(fmt.Sprint(i)))
					d = hex.EncodeToString(s[:])
				}
				req.Export.Files = append(req.Export.Files, proto.ExportFile{Path: fmt.Sprintf("f%05d", i), Digest: proto.FileDigest{SHA256: d}, Size: 1})
			}
			b, err := export.Build(req, "node-1")
			if err != nil {
				t.Fatal(err)
			}
			res, err := attest.Sign(context.Background(), b.Statement, []attest.Signer{{ID: "k", Source: "file", Key: key}})
			if err != nil {
				t.Fatal(err)
			}
			manifest := filepath.Join(t.TempDir(), "export.json")
			if err := os.WriteFile(manifest, b.Manifest, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, artifact := range []string{file, manifest} {
				out, err := cosignVerify(t, pub, res.Bundles[0], proto.PredicateSLSAProvenanceV1, artifact)
				switch {
				case tc.ok && err != nil:
					t.Fatalf("cosign rejected %s: %v\n%s", filepath.Base(artifact), err, out)
				case !tc.ok && err == nil:
					t.Fatalf("cosign accepted %s with %d subjects: the limit docs/exports.md describes is gone\n%s", filepath.Base(artifact), tc.files+1, out)
				case !tc.ok && !strings.Contains(out, "too many subjects"):
					t.Fatalf("cosign refused %s for another reason: %s", filepath.Base(artifact), out)
				}
			}
		})
	}
}
