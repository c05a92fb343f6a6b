package agent_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/devauth"
	"github.com/stellaops/signer-agent/internal/export"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// sha256Hex is the hex SHA-256 of s.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// exportRequest is an export of n files (n ≥ 2: the first two are a
// README and an SBOM with a media type) with one material, files given
// in reverse path order (the agent sorts them).
func exportRequest(n int) *proto.ExportRequest {
	req := &proto.ExportRequest{Export: proto.Export{
		ID: "exp-2026-12-03-001", Profile: "offline-kit", CreatedAt: "2026-12-03T10:00:00Z",
		Materials: []proto.Material{{URI: "oci://registry.example/app@sha256:" + digestA, Digest: map[string]string{"sha256": digestA}}},
	}}
	req.Export.Files = append(req.Export.Files,
		proto.ExportFile{Path: "sbom/app.cdx.json", Digest: proto.FileDigest{SHA256: sha256Hex("sbom")}, Size: 4, MediaType: "application/vnd.cyclonedx+json"},
		proto.ExportFile{Path: "README.txt", Digest: proto.FileDigest{SHA256: sha256Hex("readme")}, Size: 6})
	for i := n - 1; i >= 2; i-- {
		content := fmt.Sprintf("file %d", i)
		req.Export.Files = append(req.Export.Files, proto.ExportFile{
			Path: fmt.Sprintf("data/d%02d/file-%05d.json", i/100, i), Digest: proto.FileDigest{SHA256: sha256Hex(content)}, Size: int64(len(content))})
	}
	return req
}

// TestSignExport: POST /sign/export through every gate answers with
// export.json exactly as export.Build makes it for the agent's
// installation, and a signature over the provenance statement that
// verifies (sigstore-go) for export.json and for any one file; the
// statement names the installation as builder; the allow record carries
// the export id, the manifest digest as the only subject digest and the
// number of files; the quota field counts one artifact.
func TestSignExport(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	ctx := context.Background()
	req := exportRequest(5)
	res, err := h.Client.SignExport(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	withScanner := *req
	withScanner.ScannerImageDigest = h.Creds.ScannerImageDigest
	want, err := export.Build(&withScanner, devauth.Installation)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Manifest, want.Manifest) || res.ManifestDigest != want.ManifestDigest || res.ManifestDigest != attest.Digest(res.Manifest) {
		t.Fatalf("manifest %s (%s), want %s (%s)", res.Manifest, res.ManifestDigest, want.Manifest, want.ManifestDigest)
	}
	if !bytes.Equal(res.Envelope.Payload, want.Statement) || res.PayloadDigest != want.PayloadDigest {
		t.Fatalf("payload\n got %s\nwant %s", res.Envelope.Payload, want.Statement)
	}
	if !bytes.Contains(res.Envelope.Payload, []byte(`"builder":{"id":"`+export.BuilderIDPrefix+devauth.Installation+`"}`)) {
		t.Fatalf("builder id not the installation: %s", res.Envelope.Payload)
	}
	m, err := export.ParseManifest(res.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := export.CheckProvenance(res.Envelope.Payload, res.Manifest, m); err != nil {
		t.Fatal(err)
	}
	pub := h.PublicKey(t).(crypto.PublicKey)
	if len(res.Bundles) != 1 || len(res.SigningIdentity) != 1 || res.SigningIdentity[0].KeyID != "dev" || res.AuditID == "" || res.RequestID == "" || res.BundleHash == "" {
		t.Fatalf("response %+v", res.SignResponse)
	}
	for _, artifact := range []string{strings.TrimPrefix(res.ManifestDigest, "sha256:"), sha256Hex("sbom"), sha256Hex("file 4")} {
		if _, err := attest.VerifyBundle(res.Bundles[0], []crypto.PublicKey{pub}, attest.Expect{PredicateType: proto.PredicateSLSAProvenanceV1, ArtifactSHA256: artifact}); err != nil {
			t.Fatalf("bundle for %s: %v", artifact, err)
		}
	}
	if _, err := attest.VerifyBundle(res.Bundles[0], []crypto.PublicKey{pub}, attest.Expect{PredicateType: proto.PredicateSLSAProvenanceV1, ArtifactSHA256: sha256Hex("not in the export")}); err == nil {
		t.Fatal("bundle verified for a file that is not in the export")
	}
	env, _ := json.Marshal(res.Envelope)
	if _, err := attest.VerifyEnvelope(ctx, env, []crypto.PublicKey{pub}, attest.Expect{ArtifactSHA256: sha256Hex("readme")}); err != nil {
		t.Fatal(err)
	}
	if res.Quota == nil || res.Quota.Plan != devauth.Plan {
		t.Fatalf("quota %+v", res.Quota)
	}
	signed := h.Signed()
	if len(signed) != 1 {
		t.Fatalf("%d allow records", len(signed))
	}
	r := signed[0]
	if r.Route != proto.PathSignExport || r.AuditID != res.AuditID || r.ExportID != req.Export.ID || r.ManifestDigest != res.ManifestDigest || r.ExportFiles != 5 ||
		!slices.Equal(r.SubjectDigests, []string{res.ManifestDigest}) || r.PredicateType != proto.PredicateSLSAProvenanceV1 ||
		r.PayloadDigest != res.PayloadDigest || r.BundleHash != res.BundleHash || r.ScannerDigest != h.Creds.ScannerImageDigest ||
		!slices.Equal(r.KeyIDs, []string{"dev"}) || r.Plan != devauth.Plan || r.Installation != devauth.Installation {
		t.Fatalf("allow record %+v", r)
	}
}

// TestSignExportSeveralKeys: options.keyIds signs the statement with each
// key (one bundle each, every one verifying for export.json), and the
// response still names export.json once.
func TestSignExportSeveralKeys(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "second.pem")
	k, err := keys.GenerateFileKey(keyPath, keys.AlgEd25519)
	if err != nil {
		t.Fatal(err)
	}
	second := k.Public()
	_ = k.Close()
	h := harness.StartAgent(t, harness.Options{Edit: harness.WithKey("second", "file:"+keyPath)})
	req := exportRequest(3)
	req.Options = &proto.SignOptions{KeyIDs: []string{"dev", "second"}}
	res, err := h.Client.SignExport(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Bundles) != 2 || len(res.Envelope.Signatures) != 2 {
		t.Fatalf("%d bundles, %d envelope signatures", len(res.Bundles), len(res.Envelope.Signatures))
	}
	for i, pub := range []crypto.PublicKey{h.PublicKey(t), second} {
		if _, err := attest.VerifyBundle(res.Bundles[i], []crypto.PublicKey{pub}, attest.Expect{PredicateType: proto.PredicateSLSAProvenanceV1,
			ArtifactSHA256: strings.TrimPrefix(res.ManifestDigest, "sha256:")}); err != nil {
			t.Fatalf("bundle %d: %v", i, err)
		}
	}
	if r := h.Signed(); len(r) != 1 || !slices.Equal(r[0].KeyIDs, []string{"dev", "second"}) || r[0].ExportFiles != 3 {
		t.Fatalf("allow records %+v", r)
	}
}

// TestSignExportRefused: every bad export input of issue #14 (and the
// other refusals of docs/exports.md §2), through the route: its exact
// status and code, nothing signed, one denial record naming the gate, the
// request id the caller got and a reason; the problem never echoes the
// offending path.
func TestSignExportRefused(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{Edit: func(c *config.Config) {
		c.Transport.MaxBodyBytes = 16 << 20
	}})
	base := exportRequest(3)
	base.PoE = &proto.PoE{Format: "jwt", Value: h.Creds.PoE}
	base.ScannerImageDigest = h.Creds.ScannerImageDigest
	// body returns base, changed by edit, as JSON; raw replaces in it.
	body := func(edit func(r *proto.ExportRequest)) string {
		r := *base
		r.Export.Files = slices.Clone(base.Export.Files)
		r.Export.Materials = slices.Clone(base.Export.Materials)
		if edit != nil {
			edit(&r)
		}
		b, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	good := body(nil)
	raw := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("request lacks %q", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	path := func(p string) func(r *proto.ExportRequest) {
		return func(r *proto.ExportRequest) { r.Export.Files[0].Path = p }
	}
	tooMany := func(r *proto.ExportRequest) {
		r.Export.Files = make([]proto.ExportFile, proto.MaxExportFiles+1)
		for i := range r.Export.Files {
			r.Export.Files[i] = proto.ExportFile{Path: fmt.Sprintf("f%06d", i), Digest: proto.FileDigest{SHA256: digestA}, Size: 1}
		}
	}
	const secretish = "marker-zq"
	cases := []struct {
		name string
		body string
		code proto.Code
		gate string
	}{
		{"dot-dot", body(path("../" + secretish)), proto.CodeInvalidRequest, "body"},
		{"dot-dot inside", body(path("a/../" + secretish)), proto.CodeInvalidRequest, "body"},
		{"dot segment", body(path("./" + secretish)), proto.CodeInvalidRequest, "body"},
		{"absolute", body(path("/" + secretish)), proto.CodeInvalidRequest, "body"},
		{"empty segment", body(path("a//" + secretish)), proto.CodeInvalidRequest, "body"},
		{"trailing slash", body(path(secretish + "/")), proto.CodeInvalidRequest, "body"},
		{"empty path", body(path("")), proto.CodeInvalidRequest, "body"},
		{"backslash", body(path(`a\` + secretish)), proto.CodeInvalidRequest, "body"},
		{"control character", body(path(secretish + "\x01")), proto.CodeInvalidRequest, "body"},
		{"reserved export.json", body(path("export.json")), proto.CodeInvalidRequest, "body"},
		{"duplicate paths", body(func(r *proto.ExportRequest) { r.Export.Files[1].Path = r.Export.Files[0].Path }), proto.CodeInvalidRequest, "body"},
		{"file and directory", body(func(r *proto.ExportRequest) { r.Export.Files[1].Path = r.Export.Files[0].Path + "/x" }), proto.CodeInvalidRequest, "body"},
		{"non-UTF-8 path", raw(`"path":"README.txt"`, "\"path\":\"READ\xffME.txt\""), proto.CodeInvalidRequest, "body"},
		{"lone surrogate path", raw(`"path":"README.txt"`, `"path":"READ\ud800ME.txt"`), proto.CodeInvalidRequest, "body"},
		{"digest uppercase", raw(sha256Hex("readme"), strings.ToUpper(sha256Hex("readme"))), proto.CodeInvalidRequest, "body"},
		{"digest short", raw(sha256Hex("readme"), sha256Hex("readme")[:63]), proto.CodeInvalidRequest, "body"},
		{"digest not hex", raw(sha256Hex("readme"), strings.Repeat("z", 64)), proto.CodeInvalidRequest, "body"},
		{"digest sha512 only", raw(`{"sha256":"`+sha256Hex("readme")+`"}`, `{"sha512":"`+strings.Repeat("a", 128)+`"}`), proto.CodeInvalidRequest, "body"},
		{"negative size", raw(`"size":6`, `"size":-6`), proto.CodeInvalidRequest, "body"},
		{"fractional size", raw(`"size":6`, `"size":6.5`), proto.CodeInvalidRequest, "body"},
		{"size over 2^53-1", raw(`"size":6`, `"size":9007199254740992`), proto.CodeInvalidRequest, "body"},
		{"missing size", raw(`,"size":6`, ``), proto.CodeInvalidRequest, "body"},
		{"bad media type", body(func(r *proto.ExportRequest) { r.Export.Files[0].MediaType = "text/plain; charset=utf-8" }), proto.CodeInvalidRequest, "body"},
		{"empty file list", body(func(r *proto.ExportRequest) { r.Export.Files = nil }), proto.CodeInvalidRequest, "body"},
		{"too many files", body(tooMany), proto.CodeInvalidRequest, "body"},
		{"empty id", body(func(r *proto.ExportRequest) { r.Export.ID = "" }), proto.CodeInvalidRequest, "body"},
		{"id with a space", body(func(r *proto.ExportRequest) { r.Export.ID = "exp " + secretish }), proto.CodeInvalidRequest, "body"},
		{"createdAt not UTC", body(func(r *proto.ExportRequest) { r.Export.CreatedAt = "2026-12-03T10:00:00+01:00" }), proto.CodeInvalidRequest, "body"},
		{"relative material URI", body(func(r *proto.ExportRequest) { r.Export.Materials[0].URI = secretish }), proto.CodeInvalidRequest, "body"},
		{"unknown member", raw(`"profile":"offline-kit"`, `"profile":"offline-kit","builder":"`+secretish+`"`), proto.CodeInvalidRequest, "body"},
		{"duplicate member", raw(`"profile":"offline-kit"`, `"profile":"offline-kit","profile":"other"`), proto.CodeInvalidRequest, "body"},
		{"a sign request", func() string { b, _ := json.Marshal(signRequest()); return string(b) }(), proto.CodeInvalidRequest, "body"},
		{"bad scanner digest", body(func(r *proto.ExportRequest) { r.ScannerImageDigest = "sha256:" + secretish }), proto.CodeInvalidRequest, "body"},
		{"keyless not configured", body(func(r *proto.ExportRequest) { r.Options = &proto.SignOptions{Mode: proto.ModeKeyless} }), proto.CodeKeyUnavailable, "policy"},
		{"unknown key", body(func(r *proto.ExportRequest) { r.Options = &proto.SignOptions{KeyIDs: []string{"nope"}} }), proto.CodeNotFound, "policy"},
		{"scanner not released", body(func(r *proto.ExportRequest) { r.ScannerImageDigest = "sha256:" + strings.Repeat("5", 64) }), proto.CodeReleaseUntrusted, "release"},
		{"over the body cap", body(func(r *proto.ExportRequest) { r.Export.Files[0].Path = strings.Repeat("p", 17<<20) }), proto.CodePayloadTooLarge, "transport"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, signedBefore := len(h.Audit.Records()), len(h.Signed())
			status, p, resp := exportPost(t, h, []byte(c.body))
			if p == nil || p.Code != c.code || status != c.code.Status() || p.RequestID == "" {
				t.Fatalf("status %d, problem %+v, want %d %s: %.300s", status, p, c.code.Status(), c.code, resp)
			}
			if bytes.Contains(resp, []byte(secretish)) {
				t.Fatalf("problem echoes request content: %s", resp)
			}
			if n := len(h.Signed()) - signedBefore; n != 0 {
				t.Fatalf("%d signatures made", n)
			}
			recs := h.Audit.Records()[before:]
			if len(recs) != 1 || recs[0].Decision != audit.Deny || recs[0].Code != string(c.code) || recs[0].Gate != c.gate ||
				recs[0].RequestID != p.RequestID || recs[0].Reason == "" || recs[0].Route != proto.PathSignExport {
				t.Fatalf("audit records %+v", recs)
			}
			if c.gate == "body" && (recs[0].ManifestDigest != "" || recs[0].PayloadDigest != "") {
				t.Fatalf("a refused body left a manifest in the record: %+v", recs[0])
			}
		})
	}
}

// TestSignExportGateOrder: an unauthenticated caller learns nothing about
// the body rules (401, not 400), and the wrong method is 405 with Allow.
func TestSignExportGateOrder(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	for _, tc := range []struct {
		name, method string
		auth         bool
		status       int
		code         proto.Code
	}{
		{"no token, bad body", http.MethodPost, false, 401, proto.CodeInvalidToken},
		{"GET", http.MethodGet, true, 405, proto.CodeMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://signer-agent"+proto.PathSignExport, strings.NewReader(`{"export":{"files":[{"path":"../x"}]}}`))
			req.Host = proto.Host
			if tc.auth {
				for k, v := range h.AuthHeaders(t, h.Creds, tc.method, proto.PathSignExport) {
					req.Header[k] = v
				}
			}
			resp, err := harness.HTTPClient(h.APISock).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			p, err := proto.DecodeProblem(b)
			if resp.StatusCode != tc.status || err != nil || p.Code != tc.code {
				t.Fatalf("status %d, %s", resp.StatusCode, b)
			}
			if tc.code == proto.CodeMethodNotAllowed && resp.Header.Get(proto.HeaderAllow) != http.MethodPost {
				t.Fatalf("Allow %q", resp.Header.Get(proto.HeaderAllow))
			}
		})
	}
	if n := len(h.Signed()); n != 0 {
		t.Fatalf("%d signatures", n)
	}
}

// TestSignExportPolicy: the tenant must allow the SLSA provenance type
// (predicate_not_allowed otherwise, after the body was accepted, so the
// denial names the export); the plan's maxArtifactBytes applies to the
// provenance statement (artifact_too_large); an export counts as one
// artifact against artifactsPerDay, whatever its number of files.
func TestSignExportPolicy(t *testing.T) {
	ctx := context.Background()
	t.Run("predicate not allowed", func(t *testing.T) {
		h := harness.StartAgent(t, harness.Options{Edit: func(c *config.Config) {
			tn := harness.DevTenant(c)
			tn.PredicateTypes = slices.DeleteFunc(tn.PredicateTypes, func(s string) bool { return s == proto.PredicateSLSAProvenanceV1 })
		}})
		_, err := h.Client.SignExport(ctx, exportRequest(3))
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != proto.CodePredicateNotAllowed || ce.Status != 400 {
			t.Fatalf("got %v", err)
		}
		recs := h.Audit.Records()
		last := recs[len(recs)-1]
		if len(h.Signed()) != 0 || last.Decision != audit.Deny || last.Gate != "policy" || last.ExportID != "exp-2026-12-03-001" ||
			last.ExportFiles != 3 || last.ManifestDigest == "" || last.PredicateType != proto.PredicateSLSAProvenanceV1 {
			t.Fatalf("denial %+v", last)
		}
	})
	t.Run("statement over maxArtifactBytes", func(t *testing.T) {
		h := harness.StartAgent(t, harness.Options{Edit: withPlan(config.Plan{Name: "small", MaxArtifactBytes: 2048, ArtifactsPerDay: 10})})
		cl := clientOnPlan(t, h, "small")
		big := exportRequest(40)
		withScanner := *big
		withScanner.ScannerImageDigest = h.Creds.ScannerImageDigest
		b, err := export.Build(&withScanner, devauth.Installation)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Statement) <= 2048 {
			t.Fatalf("test export: statement %d bytes", len(b.Statement))
		}
		_, err = cl.SignExport(ctx, big)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != proto.CodeArtifactTooLarge || ce.Status != 413 {
			t.Fatalf("got %v", err)
		}
		recs := h.Audit.Records()
		if last := recs[len(recs)-1]; last.Gate != "quota" || last.Code != string(proto.CodeArtifactTooLarge) || last.ExportFiles != 40 {
			t.Fatalf("denial %+v", last)
		}
		// A small export of the same plan signs: the limit is the statement's.
		res, err := cl.SignExport(ctx, exportRequest(3))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Envelope.Payload) > 2048 || len(h.Signed()) != 1 {
			t.Fatalf("payload %d bytes, %d signed", len(res.Envelope.Payload), len(h.Signed()))
		}
	})
	t.Run("one artifact per export", func(t *testing.T) {
		h := harness.StartAgent(t, harness.Options{Edit: withPlan(config.Plan{Name: "three", ArtifactsPerDay: 3})})
		cl := clientOnPlan(t, h, "three")
		r1, err := cl.SignExport(ctx, exportRequest(500))
		if err != nil {
			t.Fatal(err)
		}
		if r1.Quota == nil || r1.Quota.Plan != "three" || r1.Quota.RemainingToday != 2 {
			t.Fatalf("quota after a 500-file export: %+v", r1.Quota)
		}
		if _, err := cl.SignDSSE(ctx, signRequest()); err != nil {
			t.Fatal(err)
		}
		r3, err := cl.SignExport(ctx, exportRequest(2))
		if err != nil {
			t.Fatal(err)
		}
		if r3.Quota == nil || r3.Quota.RemainingToday != 0 {
			t.Fatalf("quota %+v", r3.Quota)
		}
		_, err = cl.SignExport(ctx, exportRequest(2))
		if !errors.Is(err, client.ErrQuotaExhausted) {
			t.Fatalf("over the daily cap: %v", err)
		}
		if n := len(h.Signed()); n != 3 {
			t.Fatalf("%d signed", n)
		}
	})
}

// TestSignExportInstallation: the builder is authority.installation when
// configured; without it, the verified token's inst claim; with neither,
// the export is refused (403 tenant_mismatch, audited, nothing signed).
func TestSignExportInstallation(t *testing.T) {
	ctx := context.Background()
	h := harness.StartAgent(t, harness.Options{Edit: func(c *config.Config) { c.Authority.Installation = "" }})
	cl := h.ClientWith(h.Mint(t, devauth.Options{Installation: "node 7/eu"}))
	res, err := cl.SignExport(ctx, exportRequest(2))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(res.Envelope.Payload, []byte(`"builder":{"id":"`+export.BuilderIDPrefix+`node%207%2Feu"}`)) {
		t.Fatalf("builder id not the token's inst: %s", res.Envelope.Payload)
	}

	// A token without inst, on an agent without an installation.
	iss := h.DevIssuer(t)
	claims := harness.StandardClaims(t, h.Creds.Key)
	delete(claims, "inst")
	tok := harness.SignToken(t, iss.Key, "ES256", iss.KeyID, claims)
	req := exportRequest(2)
	req.PoE = &proto.PoE{Format: "jwt", Value: h.Creds.PoE}
	req.ScannerImageDigest = h.Creds.ScannerImageDigest
	b, _ := json.Marshal(req)
	noInst := harness.Credentials{Token: tok, Key: h.Creds.Key}
	hreq, _ := http.NewRequest(http.MethodPost, "http://signer-agent"+proto.PathSignExport, bytes.NewReader(b))
	hreq.Host = proto.Host
	for k, v := range h.AuthHeaders(t, noInst, http.MethodPost, proto.PathSignExport) {
		hreq.Header[k] = v
	}
	before, signedBefore := len(h.Audit.Records()), len(h.Signed())
	r, err := harness.HTTPClient(h.APISock).Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(r.Body)
	r.Body.Close()
	p, err := proto.DecodeProblem(rb)
	if r.StatusCode != 403 || err != nil || p.Code != proto.CodeTenantMismatch {
		t.Fatalf("status %d: %s", r.StatusCode, rb)
	}
	recs := h.Audit.Records()[before:]
	if len(recs) != 1 || recs[0].Gate != "body" || recs[0].Code != string(proto.CodeTenantMismatch) || len(h.Signed()) != signedBefore {
		t.Fatalf("audit %+v", recs)
	}
}

// TestSignExportDeterministic: two agents sharing one key sign the same
// export (files given in another order to the second) to byte-identical
// manifest, statement and digests.
func TestSignExportDeterministic(t *testing.T) {
	a := harness.StartAgent(t, harness.Options{})
	dir2 := harness.ShortTempDir(t)
	if err := os.MkdirAll(filepath.Join(dir2, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"dev.pem", "dev.pub"} {
		b, err := os.ReadFile(filepath.Join(a.Dir, "keys", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir2, "keys", f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := harness.StartAgent(t, harness.Options{Dir: dir2})
	ctx := context.Background()
	req := exportRequest(50)
	r1, err := a.Client.SignExport(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	shuffled := exportRequest(50)
	slices.Reverse(shuffled.Export.Files)
	r2, err := b.Client.SignExport(ctx, shuffled)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r1.Manifest, r2.Manifest) || r1.ManifestDigest != r2.ManifestDigest {
		t.Fatalf("manifests differ:\n%s\n%s", r1.Manifest, r2.Manifest)
	}
	if !bytes.Equal(r1.Envelope.Payload, r2.Envelope.Payload) || r1.PayloadDigest != r2.PayloadDigest {
		t.Fatalf("payloads differ:\n%s\n%s", r1.Envelope.Payload, r2.Envelope.Payload)
	}
	if r1.SigningIdentity[0].PublicKeyHint != r2.SigningIdentity[0].PublicKeyHint {
		t.Fatal("same key, different hints")
	}
	// Both verify with the one public key.
	pub := a.PublicKey(t).(crypto.PublicKey)
	for _, r := range []*proto.ExportResponse{r1, r2} {
		if _, err := attest.VerifyBundle(r.Bundles[0], []crypto.PublicKey{pub}, attest.Expect{PredicateType: proto.PredicateSLSAProvenanceV1,
			ArtifactSHA256: strings.TrimPrefix(r.ManifestDigest, "sha256:")}); err != nil {
			t.Fatal(err)
		}
	}
}

// exportPost posts body to /sign/export with h's credentials (postProblem).
func exportPost(t *testing.T, h *harness.Agent, body []byte) (int, *proto.Problem, []byte) {
	t.Helper()
	return postProblem(t, h, proto.PathSignExport, string(body))
}
