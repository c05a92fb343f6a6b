package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

// A scanner sidecar signs an image's SBOM, report and VEX statements in
// one call. The batch carries one token, one DPoP proof and one
// Idempotency-Key: a 429, 503 or dropped connection is retried with the
// same key, and the agent answers a retry with its first answer, so
// nothing is signed or counted twice. Each item succeeds or fails on its
// own. (No Output: it needs a running agent.)
func ExampleClient_SignBatch() {
	creds, err := client.LoadCredentials("/run/secrets/signer-credentials.json")
	if err != nil {
		log.Fatal(err)
	}
	var c client.Client
	creds.Apply(&c) // token, DPoP key, PoE and scanner digest

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	image, err := client.ImageSubject("registry.example/app@sha256:2d71…",
		"sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881")
	if err != nil {
		log.Fatal(err)
	}
	sbom, err := client.SBOMRequest(image, client.SBOMPredicate{
		Format: "cyclonedx-1.6", ComponentCount: 412,
		Digest: "sha256:6f1ed002ab5595859014ebf0951522d9a8ae5a3a4a1a3c5bf5ef8f2d6c8b9c1a",
	})
	if err != nil {
		log.Fatal(err)
	}
	report, err := client.ReportRequest(image, client.ReportPredicate{
		Format: "stella-report-1", Verdict: client.VerdictPass,
		Digest:   "sha256:0b3ec9d7d3ac4ff1a7f9a0b3a0a1d7a1c5e1c1a1b5f1a1d9e1f1a1c1b1d1e1f1",
		Findings: map[string]int64{"critical": 0, "high": 2},
	}, proto.Policy{Digest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", ViewSet: []string{"prod"}})
	if err != nil {
		log.Fatal(err)
	}
	vex, err := client.VEXRequest(image, client.VEXPredicate{
		Format: "openvex-0.2.0", StatementCount: 3,
		Digest: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	})
	if err != nil {
		log.Fatal(err)
	}

	resp, err := c.SignBatch(ctx, &proto.BatchRequest{Requests: []proto.SignRequest{*sbom, *report, *vex}})
	if err != nil {
		log.Fatal(err) // the batch as a whole was refused (token, entitlement, release, …)
	}
	for i, r := range resp.Results {
		if err := client.BatchItemError(&r); err != nil {
			fmt.Println("item", i, "refused:", err)
			continue
		}
		fmt.Println("item", i, "signed:", r.PayloadDigest, "bundles:", len(r.Bundles))
	}
}

// Checking the sidecar's own release before signing anything: an
// untrusted or unknown scanner digest shows up at start rather than as
// release_untrusted on the first sign call. (No Output: it needs a
// running agent.)
func ExampleClient_Referrers() {
	var c client.Client
	v, err := c.Referrers(context.Background(), "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881")
	if err != nil {
		log.Fatal(err)
	}
	if !v.Trusted {
		log.Fatalf("this scanner release is not trusted by the agent: %s", v.Reason)
	}
	fmt.Println("release", v.Version, "trusted via", v.Source)
}

// A sidecar that may crash between signing and storing the result keeps
// its own Idempotency-Key with the work item: after a restart it sends the
// same key and gets the original signature back (within the agent's
// window, 10 minutes by default) instead of a second signature.
// (No Output: it needs a running agent.)
func ExampleWithIdempotencyKey() {
	c := &client.Client{MaxAttempts: 5}
	ctx := client.WithIdempotencyKey(context.Background(), "scan-7f3a/sbom")
	_, err := c.SignDSSE(ctx, &proto.SignRequest{ /* … */ })
	if errors.Is(err, client.ErrIdempotencyKeyReused) {
		log.Fatal("the key was used for a different request: ", err)
	}
}
