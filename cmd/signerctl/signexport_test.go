package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/export"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// exportRoute is a test double of the agent's POST /sign/export: it
// decodes the body with proto.DecodeExportRequest, builds with
// export.Build and signs with attest.Sign, as the agent's export body gate
// and signer do, with none of the agent's other gates, and can tamper with
// its answer (which the real agent cannot be made to do). It exercises the
// CLI's side of the exchange; TestExportEndToEndOffline (test/interop)
// runs the CLI against the real agent.
type exportRoute struct {
	sock string
	key  keys.Key
	pub  string // PEM file

	mu     sync.Mutex
	bodies [][]byte
	// tamper, when set, changes the response before it is sent.
	tamper func(*proto.ExportResponse)
}

func startExportRoute(t *testing.T) *exportRoute {
	t.Helper()
	dir, err := os.MkdirTemp("", "sx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	k := newKey(t)
	rt := &exportRoute{sock: filepath.Join(dir, "api.sock"), key: k, pub: writeFile(t, dir, "agent.pub", pubPEM(t, k))}
	ln, err := net.Listen("unix", rt.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(rt.serve)}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return rt
}

func (rt *exportRoute) serve(w http.ResponseWriter, r *http.Request) {
	problem := func(code proto.Code, detail string) {
		w.Header().Set("Content-Type", proto.MediaTypeProblem)
		w.WriteHeader(code.Status())
		_ = json.NewEncoder(w).Encode(proto.NewProblem(code, detail, "req-x"))
	}
	if r.Method != http.MethodPost || r.URL.Path != proto.PathSignExport || r.Host != proto.Host {
		problem(proto.CodeNotFound, "")
		return
	}
	body, _ := io.ReadAll(r.Body)
	rt.mu.Lock()
	rt.bodies = append(rt.bodies, body)
	rt.mu.Unlock()
	req, err := proto.DecodeExportRequest(body)
	if err != nil {
		problem(export.Code(err), err.Error())
		return
	}
	b, err := export.Build(req, "node-1")
	if err != nil {
		problem(export.Code(err), err.Error())
		return
	}
	res, err := attest.Sign(r.Context(), b.Statement, []attest.Signer{{ID: "dev", Source: "file", Key: rt.key}})
	if err != nil {
		problem(proto.CodeSigningBackendUnavailable, "")
		return
	}
	resp := &proto.ExportResponse{Manifest: b.Manifest, ManifestDigest: b.ManifestDigest, SignResponse: proto.SignResponse{
		RequestID: "req-1", Envelope: res.Envelope, Bundles: res.Bundles, SigningIdentity: res.SigningIdentity,
		PayloadDigest: res.PayloadDigest, BundleHash: res.BundleHash,
	}}
	if rt.tamper != nil {
		rt.tamper(resp)
	}
	w.Header().Set("Content-Type", proto.MediaTypeJSON)
	_ = json.NewEncoder(w).Encode(resp)
}

func (rt *exportRoute) lastRequest(t *testing.T) *proto.ExportRequest {
	t.Helper()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.bodies) == 0 {
		t.Fatal("no request reached the route")
	}
	req, err := proto.DecodeExportRequest(rt.bodies[len(rt.bodies)-1])
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func (rt *exportRoute) requests() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return len(rt.bodies)
}

// TestSignExportThenVerify: sign export hashes the tree, sends the request
// and writes what verify export (and sigstore-go) accept; the same tree
// signs byte-identically twice.
func TestSignExportThenVerify(t *testing.T) {
	rt := startExportRoute(t)
	dir := exportTree(t)
	out := t.TempDir()
	sign := func(suffix string, extra ...string) result {
		args := []string{"sign", "export", "--socket", rt.sock, "--dir", dir, "--profile", "offline-kit",
			"--created-at", "2026-12-03T10:00:00Z", "--scanner-digest", "sha256:" + hex256,
			"--out-manifest", filepath.Join(out, "export"+suffix+".json"),
			"--out-envelope", filepath.Join(out, "provenance"+suffix+".dsse.json"),
			"--out-bundle", filepath.Join(out, "provenance"+suffix+".bundle.json")}
		return runCtl(t, append(args, extra...)...)
	}
	r := sign("", "--material", "sha256:"+hex256+",oci://registry.example/app@sha256:"+hex256)
	r.wantCode(t, exitOK)
	for _, want := range []string{"export:         exp-1 (profile offline-kit, createdAt 2026-12-03T10:00:00Z)", "files:          7 (83 bytes)", "manifest:       " + filepath.Join(out, "export.json")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.stderr != "" {
		t.Errorf("stderr %q (no progress off a terminal)", r.stderr)
	}
	req := rt.lastRequest(t)
	if req.Export.ID != "exp-1" || len(req.Export.Files) != 7 || req.ScannerImageDigest != "sha256:"+hex256 || len(req.Export.Materials) != 1 {
		t.Fatalf("request %+v", req)
	}
	if req.Export.Files[0].Path != "README.txt" || req.Export.Files[1].Path != "a-b" || req.Export.Files[2].Path != "a/b" {
		t.Errorf("files not in path byte order: %v", req.Export.Files[:3])
	}
	want := exportRequestFor(t, dir, "2026-12-03T10:00:00Z").Export.Files
	for i, f := range req.Export.Files {
		if f != want[i] {
			t.Errorf("file %d: %+v, want %+v", i, f, want[i])
		}
	}
	runCtl(t, "verify", "export", "--dir", dir, "--manifest", filepath.Join(out, "export.json"),
		"--bundle", filepath.Join(out, "provenance.bundle.json"), "--envelope", filepath.Join(out, "provenance.dsse.json"),
		"--key", rt.pub).wantCode(t, exitOK)

	// Determinism: a second run writes identical manifest and statement.
	sign("-2", "--material", "sha256:"+hex256+",oci://registry.example/app@sha256:"+hex256).wantCode(t, exitOK)
	m1, _ := os.ReadFile(filepath.Join(out, "export.json"))
	m2, _ := os.ReadFile(filepath.Join(out, "export-2.json"))
	if !bytes.Equal(m1, m2) {
		t.Fatal("manifests differ between two runs")
	}
	b1, _ := os.ReadFile(filepath.Join(out, "provenance.bundle.json"))
	b2, _ := os.ReadFile(filepath.Join(out, "provenance-2.bundle.json"))
	p1, err1 := bundlePayload(b1)
	p2, err2 := bundlePayload(b2)
	if err1 != nil || err2 != nil || !bytes.Equal(p1, p2) {
		t.Fatalf("payloads differ between two runs (%v %v)", err1, err2)
	}
}

// TestSignExportOutputsInside: outputs written into the export directory
// are not part of the export, and verify export accepts the tree as left.
func TestSignExportOutputsInside(t *testing.T) {
	rt := startExportRoute(t)
	dir := exportTree(t)
	// Left over from an earlier run: excluded because they are outputs.
	writeFile(t, dir, "export.json", "old")
	writeFile(t, dir, "provenance.bundle.json", "old")
	runCtl(t, "sign", "export", "--socket", rt.sock, "--dir", dir, "--created-at", "2026-12-03T10:00:00Z",
		"--out-manifest", filepath.Join(dir, "export.json"), "--out-bundle", filepath.Join(dir, "provenance.bundle.json"),
		"--progress", "never").wantCode(t, exitOK)
	if n := len(rt.lastRequest(t).Export.Files); n != 7 {
		t.Fatalf("%d files sent, want 7", n)
	}
	runCtl(t, "verify", "export", "--dir", dir, "--manifest", filepath.Join(dir, "export.json"),
		"--bundle", filepath.Join(dir, "provenance.bundle.json"), "--key", rt.pub).wantCode(t, exitOK)
}

func TestSignExportRefuses(t *testing.T) {
	rt := startExportRoute(t)
	out := t.TempDir()
	outs := []string{"--out-manifest", filepath.Join(out, "export.json"), "--out-bundle", filepath.Join(out, "b.json")}
	withSymlink := exportTree(t)
	if err := os.Symlink("README.txt", filepath.Join(withSymlink, "sbom", "link")); err != nil {
		t.Fatal(err)
	}
	backslash := exportTree(t)
	writeFile(t, backslash, `a\b`, "x")
	reserved := exportTree(t)
	writeFile(t, reserved, "export.json", "{}")
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	badName := filepath.Join(t.TempDir(), "-x")
	if err := os.Mkdir(badName, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, badName, "f", "x")
	tests := map[string]struct {
		args    []string
		code    int
		wantErr string
	}{
		"symlink":         {args: []string{"--dir", withSymlink}, code: exitFailure, wantErr: "sbom/link is a symlink"},
		"backslash":       {args: []string{"--dir", backslash}, code: exitFailure, wantErr: "contains a backslash"},
		"reserved name":   {args: []string{"--dir", reserved}, code: exitFailure, wantErr: `"export.json" is reserved`},
		"empty dir":       {args: []string{"--dir", empty}, code: exitFailure, wantErr: "no files to export"},
		"missing dir":     {args: []string{"--dir", filepath.Join(out, "nope")}, code: exitFailure, wantErr: "no such file"},
		"dir name as id":  {args: []string{"--dir", badName}, code: exitUsage},
		"bad id":          {args: []string{"--dir", exportTree(t), "--id", "a b"}, code: exitFailure, wantErr: "export.id"},
		"bad created-at":  {args: []string{"--dir", exportTree(t), "--created-at", "2026-12-03T10:00:00+01:00"}, code: exitUsage},
		"bad material":    {args: []string{"--dir", exportTree(t), "--material", "oci://x"}, code: exitUsage},
		"bad scanner":     {args: []string{"--dir", exportTree(t), "--scanner-digest", "sha256:x"}, code: exitUsage},
		"no dir":          {args: []string{}, code: exitUsage},
		"no out-manifest": {args: []string{"--dir", exportTree(t), "--out-manifest", ""}, code: exitUsage},
		"bad jobs":        {args: []string{"--dir", exportTree(t), "--jobs", "-1"}, code: exitUsage},
		"positional":      {args: []string{"--dir", exportTree(t), "extra"}, code: exitUsage},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := rt.requests()
			r := runCtl(t, append(append([]string{"sign", "export", "--socket", rt.sock}, outs...), tc.args...)...)
			r.wantCode(t, tc.code)
			if tc.code == exitFailure && !strings.Contains(r.stderr, tc.wantErr) {
				t.Fatalf("stderr %q, want %q", r.stderr, tc.wantErr)
			}
			if rt.requests() != before {
				t.Fatal("a request was sent")
			}
			if _, err := os.Stat(filepath.Join(out, "export.json")); err == nil {
				t.Fatal("an output was written")
			}
		})
	}
}

// TestSignExportChecksResponse: an answer that does not sign what was
// asked is refused and nothing is written.
func TestSignExportChecksResponse(t *testing.T) {
	rt := startExportRoute(t)
	dir := exportTree(t)
	other := append([]byte(nil), []byte(`{"_type":"x"}`)...)
	tests := map[string]struct {
		tamper  func(*proto.ExportResponse)
		wantErr string
	}{
		"other manifest": {func(r *proto.ExportResponse) { r.Manifest = other }, "an export.json other than the one requested"},
		"wrong digest":   {func(r *proto.ExportResponse) { r.ManifestDigest = "sha256:" + hex256 }, "manifestDigest"},
		"other statement": {func(r *proto.ExportResponse) {
			r.Envelope.Payload = bytes.Replace(r.Envelope.Payload, []byte(`"name":"README.txt"`), []byte(`"name":"README.md"`), 1)
		}, "not in the manifest"},
		"bundle of another statement": {func(r *proto.ExportResponse) {
			b, _ := attest.BundleJSON([]byte(`{"_type":"x"}`), []byte{1}, "aGludA==")
			r.Bundles[0] = b
		}, "bundle 1 does not carry"},
		"no bundle": {func(r *proto.ExportResponse) { r.Bundles = nil }, "0 bundles for 1 signatures"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rt.tamper = tc.tamper
			out := t.TempDir()
			r := runCtl(t, "sign", "export", "--socket", rt.sock, "--dir", dir, "--created-at", "2026-12-03T10:00:00Z",
				"--out-manifest", filepath.Join(out, "export.json"), "--out-bundle", filepath.Join(out, "b.json"))
			r.wantCode(t, exitFailure)
			if !strings.Contains(r.stderr, tc.wantErr) || !strings.Contains(r.stderr, "nothing written") {
				t.Fatalf("stderr %q, want %q", r.stderr, tc.wantErr)
			}
			if ents, _ := os.ReadDir(out); len(ents) != 0 {
				t.Fatalf("files written: %v", ents)
			}
		})
	}
	rt.tamper = nil
	// An agent refusal is reported with its code.
	r := runCtl(t, "sign", "export", "--socket", rt.sock, "--dir", dir, "--created-at", "2026-12-03T10:00:00Z",
		"--key", "a", "--key", "a", "--out-manifest", filepath.Join(t.TempDir(), "e.json"), "--out-bundle", filepath.Join(t.TempDir(), "b.json"))
	r.wantCode(t, exitFailure)
	if !strings.Contains(r.stderr, "options.keyIds[1]: duplicate key id") {
		t.Fatalf("stderr %q", r.stderr)
	}
}

func TestExportCreatedAt(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 12, 3, 10, 0, 0, 999, time.FixedZone("x", 3600)) }
	for _, tc := range []struct {
		flag, epoch, want string
		err               bool
	}{
		{flag: "2026-01-02T03:04:05.5Z", want: "2026-01-02T03:04:05.5Z"},
		{flag: "2026-01-02 03:04:05Z", err: true},
		{epoch: "1764756000", want: "2025-12-03T10:00:00Z"},
		{epoch: "soon", err: true},
		{flag: "2026-01-02T03:04:05Z", epoch: "1", want: "2026-01-02T03:04:05Z"},
		{want: "2026-12-03T09:00:00Z"},
	} {
		got, err := exportCreatedAt(tc.flag, tc.epoch, now)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%q %q: got %q, %v; want %q (error %v)", tc.flag, tc.epoch, got, err, tc.want, tc.err)
		}
	}
	// SOURCE_DATE_EPOCH reaches the request.
	rt := startExportRoute(t)
	ctlEnv["SOURCE_DATE_EPOCH"] = "1764756000"
	t.Cleanup(func() { delete(ctlEnv, "SOURCE_DATE_EPOCH") })
	out := t.TempDir()
	runCtl(t, "sign", "export", "--socket", rt.sock, "--dir", exportTree(t), "--out-manifest", filepath.Join(out, "e.json"),
		"--out-bundle", filepath.Join(out, "b.json")).wantCode(t, exitOK)
	if got := rt.lastRequest(t).Export.CreatedAt; got != "2025-12-03T10:00:00Z" {
		t.Fatalf("createdAt %q", got)
	}
}
