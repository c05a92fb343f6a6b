package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

// Signing an SBOM statement. The zero-value Client finds the agent through
// SIGNER_AGENT_SOCKET or the default socket. (No Output: it needs a running
// agent.)
func ExampleClient_SignDSSE() {
	var c client.Client
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = client.WithRequestID(ctx, "scan-2026-05-01-0001")

	resp, err := c.SignDSSE(ctx, &proto.SignRequest{
		Subject: []proto.Subject{{
			Name:   "registry.example/app@sha256:ab…",
			Digest: map[string]string{"sha256": "abababababababababababababababababababababababababababababababab"},
		}},
		PredicateType: "stella.ops/sbom@v1",
		Predicate:     json.RawMessage(`{"format":"cyclonedx-1.6","componentCount":412}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range resp.SigningIdentity {
		fmt.Println("signed with", id.KeyID, id.Algorithm)
	}
}

// Listing the agent's public keys, for example to verify envelopes offline.
func ExampleClient_Keys() {
	c := &client.Client{Socket: "unix:///run/signer-agent/api.sock"}
	keys, err := c.Keys(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range keys.Keys {
		fmt.Println(k.ID, k.Algorithm, k.Status)
	}
}

// Branching on the agent's error codes with errors.Is and reading details
// with errors.As.
func ExampleError() {
	var c client.Client
	_, err := c.SignDSSE(context.Background(), &proto.SignRequest{ /* … */ })
	var e *client.Error
	switch {
	case err == nil:
	case errors.Is(err, client.ErrPeerNotAllowed):
		// This process's uid/gid is not allowed on the socket: add the
		// service user to the signer-clients group.
		log.Fatal("not allowed to use signer-agent: ", err)
	case errors.Is(err, client.ErrPlanThrottled) && errors.As(err, &e):
		time.Sleep(e.RetryAfter) // then retry
	case errors.As(err, &e):
		log.Fatalf("agent refused (HTTP %d, code %q, request %s): %s", e.Status, e.Code, e.RequestID, e.Detail)
	default:
		log.Fatal("agent unreachable: ", err)
	}
}

// Signing with the credentials `signerctl dev token` prints (SPEC §12): the
// DPoP-bound OpTok and its key go to the Client, the PoE and scanner digest
// into the request. Every call then carries a fresh DPoP proof, and the
// agent's nonce is picked up transparently. (No Output: it needs a running
// agent.)
func ExampleLoadCredentials() {
	creds, err := client.LoadCredentials("creds.json")
	if err != nil {
		log.Fatal(err) // names the file and the problem, never a secret
	}
	fmt.Println("loaded", creds) // secrets print as [redacted]

	var c client.Client
	creds.Apply(&c) // sets c.Token, c.DPoPKey, c.PoE and c.ScannerImageDigest

	req := &proto.SignRequest{
		Subject: []proto.Subject{{
			Name:   "registry.example/app@sha256:ab…",
			Digest: map[string]string{"sha256": "abababababababababababababababababababababababababababababababab"},
		}},
		PredicateType:      "stella.ops/sbom@v1",
		Predicate:          json.RawMessage(`{"format":"cyclonedx-1.6","componentCount":412}`),
		ScannerImageDigest: creds.ScannerImageDigest,
	}
	if creds.PoE != "" {
		req.PoE = &proto.PoE{Format: "jwt", Value: creds.PoE}
	}
	resp, err := c.SignDSSE(context.Background(), req)
	switch {
	case errors.Is(err, client.ErrInvalidToken):
		log.Fatal("the OpTok expired or was refused; fetch new credentials: ", err)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println("payload digest", resp.PayloadDigest)
}
