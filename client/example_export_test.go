package client_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

// Signing an export: the caller lists every file with its SHA-256 and size
// (and fixes createdAt, so that a retry signs the same bytes); the agent
// returns export.json and SLSA provenance over it and every file. (No
// Output: it needs a running agent.)
func ExampleClient_SignExport() {
	var c client.Client
	resp, err := c.SignExport(context.Background(), &proto.ExportRequest{Export: proto.Export{
		ID:        "exp-2026-12-03-001",
		Profile:   "offline-kit",
		CreatedAt: "2026-12-03T10:00:00Z",
		Files: []proto.ExportFile{{
			Path:   "sbom/app.cdx.json",
			Digest: proto.FileDigest{SHA256: "abababababababababababababababababababababababababababababababab"},
			Size:   412,
		}},
	}})
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("export.json", resp.Manifest, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("provenance.bundle.json", resp.Bundles[0], 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Println("manifest", resp.ManifestDigest, "signed by", resp.SigningIdentity[0].KeyID)
}
