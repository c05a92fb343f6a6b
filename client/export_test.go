package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

const exportHex = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"

func exportRequest() *proto.ExportRequest {
	return &proto.ExportRequest{Export: proto.Export{
		ID: "exp-1", Profile: "offline-kit", CreatedAt: "2026-12-03T10:00:00Z",
		Files: []proto.ExportFile{{Path: "sbom/app.cdx.json", Digest: proto.FileDigest{SHA256: exportHex}, Size: 412}},
	}}
}

const exportResponseJSON = `{"manifest":"eyJpZCI6ImV4cC0xIn0=","manifestDigest":"sha256:33","requestId":"req-1","auditId":"aud-1",
"envelope":{"payloadType":"application/vnd.in-toto+json","payload":"eyJfdHlwZSI6InN0bXQifQ==","signatures":[{"keyid":"k","sig":"AQID"}]},
"bundles":[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}],
"signingIdentity":[{"mode":"keyful","keyId":"k","keySource":"file","algorithm":"ecdsa-p256-sha256","publicKeyHint":"aA==","certificateChain":[],"bundleHash":"sha256:44"}],
"payloadDigest":"sha256:11","bundleHash":"sha256:22","quota":{"plan":"team","remainingToday":7}}`

func TestSignExport(t *testing.T) {
	var got *proto.ExportRequest
	a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != proto.PathSignExport {
			t.Errorf("got %s %s, want POST %s", r.Method, r.URL.Path, proto.PathSignExport)
		}
		body, _ := io.ReadAll(r.Body)
		// The agent decodes strictly: the client must send exactly the wire form.
		req, err := proto.DecodeExportRequest(body)
		if err != nil {
			t.Errorf("agent cannot decode request: %v", err)
		}
		got = req
		writeJSON(w, http.StatusOK, exportResponseJSON)
	})
	poe := &proto.PoE{Format: "jwt", Value: "poe-value"}
	c := &client.Client{Socket: "unix://" + a.path, PoE: poe, ScannerImageDigest: "sha256:" + exportHex}
	defer c.CloseIdleConnections()
	req := exportRequest()
	resp, err := c.SignExport(context.Background(), req)
	if err != nil {
		t.Fatalf("SignExport: %v", err)
	}
	if string(resp.Manifest) != `{"id":"exp-1"}` || resp.ManifestDigest != "sha256:33" {
		t.Errorf("manifest %q %s", resp.Manifest, resp.ManifestDigest)
	}
	if resp.RequestID != "req-1" || resp.AuditID != "aud-1" || resp.PayloadDigest != "sha256:11" || resp.BundleHash != "sha256:22" ||
		resp.Quota == nil || resp.Quota.RemainingToday != 7 || len(resp.Bundles) != 1 || resp.SigningIdentity[0].BundleHash != "sha256:44" ||
		string(resp.Envelope.Payload) != `{"_type":"stmt"}` {
		t.Errorf("response = %+v", resp)
	}
	// Defaults from the client fill the request sent, not the caller's.
	if got == nil || got.PoE == nil || got.PoE.Value != "poe-value" || got.ScannerImageDigest != "sha256:"+exportHex {
		t.Errorf("agent got %+v", got)
	}
	if req.PoE != nil || req.ScannerImageDigest != "" {
		t.Error("SignExport modified the caller's request")
	}
	// The request's own values win over the client's.
	own := exportRequest()
	own.PoE = &proto.PoE{Format: "opaque", Value: "own"}
	if _, err := c.SignExport(context.Background(), own); err != nil {
		t.Fatal(err)
	}
	if got.PoE.Value != "own" {
		t.Errorf("request PoE replaced by the client's: %+v", got.PoE)
	}
}

func TestSignExportRefused(t *testing.T) {
	a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, proto.CodeInvalidRequest, "export.files[0].path: \"..\" segment", "req-9")
	})
	c := newClient(a)
	defer c.CloseIdleConnections()
	_, err := c.SignExport(context.Background(), exportRequest())
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != proto.CodeInvalidRequest || ce.RequestID != "req-9" || !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("got %v", err)
	}
	if _, err := c.SignExport(context.Background(), nil); err == nil {
		t.Fatal("SignExport(nil) succeeded")
	}
	if n := a.count(); n != 1 {
		t.Errorf("agent received %d requests, want 1", n)
	}
}

func TestExportResponseWire(t *testing.T) {
	// Every §4.2 field sits at the top level next to manifest and
	// manifestDigest.
	b, err := json.Marshal(&proto.ExportResponse{Manifest: []byte("m"), ManifestDigest: "sha256:1", SignResponse: proto.SignResponse{RequestID: "r"}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for _, k := range []string{"manifest", "manifestDigest", "requestId", "envelope", "bundles", "signingIdentity", "payloadDigest", "bundleHash"} {
		if _, ok := m[k]; !ok {
			t.Errorf("member %s missing from %s", k, b)
		}
	}
}
