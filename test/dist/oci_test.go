//go:build dist

package dist

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/stellaops/signer-agent/test/harness"
)

// TestOCIImage: the layout holds one multi-arch index that validates
// (every blob's digest and size, configs, platforms), each image is one
// layer of exactly the files the agent needs, runs as 65532, and the
// amd64 root file system runs `signer-agent --version` and a dev-mode sign
// under chroot, whose bundle the cosign CLI verifies.
func TestOCIImage(t *testing.T) {
	a := distArtifacts(t)
	needRoot(t)
	needTool(t, "chroot", "coreutils")
	dir := t.TempDir()
	untar(t, a.oci, dir)
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatalf("not an OCI layout: %v", err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 || tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != a.version {
		t.Fatalf("index.json: want one index named %s, got %+v", a.version, tm.Manifests)
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("go-containerregistry validate: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	platforms := map[string]v1.Hash{}
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Fatalf("manifest %s has no platform", d.Digest)
		}
		platforms[d.Platform.String()] = d.Digest
	}
	if len(platforms) != 2 || platforms["linux/amd64"] == (v1.Hash{}) || platforms["linux/arm64/v8"] == (v1.Hash{}) {
		t.Fatalf("platforms %v, want linux/amd64 and linux/arm64/v8", platforms)
	}
	for plat, interp := range map[string]string{"linux/amd64": "/lib64/ld-linux-x86-64.so.2", "linux/arm64/v8": "/lib/ld-linux-aarch64.so.1"} {
		t.Run(plat, func(t *testing.T) {
			img, err := idx.Image(platforms[plat])
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, img, a.version, plat, interp)
		})
	}
	// What `crane push layout REF` does: the index and every blob go to a
	// registry (go-containerregistry's, in process) and keep their digest.
	t.Run("push to a registry", func(t *testing.T) {
		srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		defer srv.Close()
		ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/stellaops/signer-agent:" + strings.ReplaceAll(a.version, "+", "_"))
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.WriteIndex(ref, idx); err != nil {
			t.Fatalf("push: %v", err)
		}
		got, err := remote.Index(ref)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := idx.Digest()
		if d, _ := got.Digest(); d != want || want != tm.Manifests[0].Digest {
			t.Fatalf("pushed index digest %v, layout %v, index.json %v", d, want, tm.Manifests[0].Digest)
		}
		if err := validate.Index(got); err != nil {
			t.Fatalf("the pushed index does not validate: %v", err)
		}
	})
	t.Run("run amd64 rootfs", func(t *testing.T) {
		img, err := idx.Image(platforms["linux/amd64"])
		if err != nil {
			t.Fatal(err)
		}
		rootfs := filepath.Join(dir, "rootfs")
		extract(t, img, rootfs)
		out := run(t, "chroot", rootfs, "/usr/bin/signer-agent", "--version")
		if strings.TrimSpace(out) != "signer-agent "+a.version {
			t.Fatalf("signer-agent --version: %q, want %q", out, "signer-agent "+a.version)
		}
		if out := run(t, "chroot", rootfs, "/usr/bin/signerctl", "version"); !strings.HasPrefix(out, "signerctl "+a.version+" ") {
			t.Fatalf("signerctl version: %q", out)
		}
		devSignInRootfs(t, rootfs)
	})
}

// checkImage checks one platform's image: config, one layer, its files.
func checkImage(t *testing.T, img v1.Image, version, plat, interp string) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (non-root)", cf.Config.User)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != "/usr/bin/signer-agent" {
		t.Errorf("entrypoint %q", got)
	}
	if cf.Config.Labels["org.opencontainers.image.version"] != version || cf.Config.Labels["org.opencontainers.image.revision"] == "" {
		t.Errorf("labels %v", cf.Config.Labels)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want one", len(layers), err)
	}
	files := map[string]*tar.Header{}
	data := map[string][]byte{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := "/" + strings.TrimSuffix(h.Name, "/")
		files[name] = h
		if strings.HasPrefix(name, "/usr/bin/") {
			data[name], _ = io.ReadAll(tr)
		}
	}
	libc := map[string]string{"linux/amd64": "/lib/x86_64-linux-gnu/libc.so.6", "linux/arm64/v8": "/lib/aarch64-linux-gnu/libc.so.6"}[plat]
	for _, want := range []string{"/usr/bin/signer-agent", "/usr/bin/signerctl", interp, libc,
		"/etc/passwd", "/etc/group", "/etc/ssl/certs/ca-certificates.crt",
		"/etc/signer-agent/trust/authority", "/etc/signer-agent/trust/licensing", "/etc/signer-agent/trust/release",
		"/var/lib/signer-agent", "/run/signer-agent", "/tmp"} {
		if files[want] == nil {
			t.Errorf("image lacks %s", want)
		}
	}
	// Only what the agent needs: no shell, no package manager.
	for _, unwanted := range []string{"/bin/sh", "/usr/bin/sh", "/bin", "/usr/bin/dpkg", "/root"} {
		if files[unwanted] != nil {
			t.Errorf("image holds %s", unwanted)
		}
	}
	if len(files) > 40 {
		t.Errorf("image holds %d entries; expected a minimal root", len(files))
	}
	if h := files["/var/lib/signer-agent"]; h != nil && (h.Uid != 65532 || h.Mode&0o777 != 0o700) {
		t.Errorf("/var/lib/signer-agent: uid %d mode %o", h.Uid, h.Mode)
	}
	for name, h := range files {
		if !h.ModTime.Equal(files["/usr/bin/signer-agent"].ModTime) {
			t.Errorf("%s: mtime %v differs (not SOURCE_DATE_EPOCH)", name, h.ModTime)
		}
	}
	// The binaries are for this platform and name the loader the image has.
	machine := map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64/v8": elf.EM_AARCH64}[plat]
	for _, b := range []string{"/usr/bin/signer-agent", "/usr/bin/signerctl"} {
		f, err := elf.NewFile(bytes.NewReader(data[b]))
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if f.Machine != machine {
			t.Errorf("%s: machine %v, want %v", b, f.Machine, machine)
		}
		if f.Type != elf.ET_DYN {
			t.Errorf("%s: type %v, want ET_DYN (PIE)", b, f.Type)
		}
		var got string
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				b, _ := io.ReadAll(p.Open())
				got = strings.TrimRight(string(b), "\x00")
			}
		}
		if got != interp {
			t.Errorf("%s: interpreter %q, want %q", b, got, interp)
		}
	}
}

// devSignInRootfs runs the image's agent in dev mode as 65532 inside the
// root file system, signs through the image's signerctl, and verifies the
// bundle with cosign outside.
func devSignInRootfs(t *testing.T, rootfs string) {
	t.Helper()
	cosign := harness.Cosign(t)
	agent := exec.Command("chroot", "--userspec=65532:65532", rootfs, "/usr/bin/signer-agent", "--dev", "--state-dir", "/tmp/dev")
	var log bytes.Buffer
	agent.Stdout, agent.Stderr = &log, &log
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- agent.Wait() }()
	defer func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = agent.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", log.String())
		}
	}()
	ctl := func(args ...string) (string, error) {
		out, err := exec.Command("chroot", append([]string{rootfs, "/usr/bin/signerctl", "--socket", "unix:///tmp/dev/api.sock"}, args...)...).CombinedOutput()
		return string(out), err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := ctl("health"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent in the image did not become healthy")
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the agent in the image exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "tmp", "artifact.txt"), []byte("scanned in the image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "tmp", "pred.json"), []byte(`{"format":"cyclonedx-1.6","componentCount":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := ctl("dev", "token", "--state-dir", "/tmp/dev", "--out", "/tmp/creds.json"); err != nil {
		t.Fatalf("dev token: %v\n%s", err, out)
	}
	if out, err := ctl("sign", "--credentials", "/tmp/creds.json", "--predicate", "/tmp/pred.json", "--type", "stella.ops/sbom@v1",
		"--artifact", "/tmp/artifact.txt", "--out-bundle", "/tmp/bundle.json"); err != nil {
		t.Fatalf("sign: %v\n%s", err, out)
	}
	run(t, cosign, "verify-blob-attestation", "--key", filepath.Join(rootfs, "tmp", "dev", "keys", "dev.pub"),
		"--bundle", filepath.Join(rootfs, "tmp", "bundle.json"), "--insecure-ignore-tlog", "--type", "stella.ops/sbom@v1",
		filepath.Join(rootfs, "tmp", "artifact.txt"))
}

// untar unpacks a plain tar (the layout) into dir.
func untar(t *testing.T, src, dir string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	writeTree(t, tar.NewReader(f), dir)
}

// extract unpacks an image's flattened file system into dir, with owners
// and modes.
func extract(t *testing.T, img v1.Image, dir string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	writeTree(t, tar.NewReader(rc), dir)
}

func writeTree(t *testing.T, tr *tar.Reader, dir string) {
	t.Helper()
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, filepath.Clean(dir)+string(filepath.Separator)) {
			t.Fatalf("tar entry %q escapes", h.Name)
		}
		mode := h.FileInfo().Mode()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		default:
			t.Fatalf("unexpected tar entry %q of type %q", h.Name, string(h.Typeflag))
		}
		if err := os.Chown(p, h.Uid, h.Gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode.Perm()|mode&(os.ModeSticky|os.ModeSetuid|os.ModeSetgid)); err != nil {
			t.Fatal(err)
		}
	}
}
