// Command oci builds the signer-agent OCI image layout tarball (SPEC §13):
// one multi-arch image index (linux/amd64, linux/arm64), each image a
// single layer holding the two binaries, the C library they link against,
// CA roots, a passwd/group with the non-root user, and the directories the
// agent uses. No Docker daemon or registry is involved.
//
// The output is byte-for-byte reproducible: every timestamp is
// SOURCE_DATE_EPOCH, tar entries are sorted, owners and modes are fixed,
// and the layout tarball itself is written the same way.
//
//	go run ./packaging/oci --version V --epoch E --out FILE \
//	  --bin amd64=DIR --bin arm64=DIR \
//	  --lib amd64=SRC:DST ... --ca-bundle FILE \
//	  --label org.opencontainers.image.revision=COMMIT ...
//
// See docs/install.md for pushing it with skopeo or crane.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stellaops/signer-agent/internal/fsutil"
)

// The image's user and groups. 65532 is the customary "nonroot" id of
// minimal images; signer-clients is the group scanner pods join
// (supplementalGroups) to reach the API socket.
const (
	agentUID   = 65532
	agentGID   = 65532
	clientsGID = 65533
)

type multiFlag map[string][]string

func (m multiFlag) String() string { return fmt.Sprint(map[string][]string(m)) }
func (m multiFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" || val == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	m[k] = append(m[k], val)
	return nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "oci:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("oci", flag.ContinueOnError)
	version := fs.String("version", "", "image version (also the layout's ref name)")
	epoch := fs.Int64("epoch", -1, "SOURCE_DATE_EPOCH: every timestamp")
	out := fs.String("out", "", "output layout tarball")
	caBundle := fs.String("ca-bundle", "", "CA roots copied to /etc/ssl/certs/ca-certificates.crt")
	bins, libs, labels := multiFlag{}, multiFlag{}, multiFlag{}
	fs.Var(bins, "bin", "ARCH=DIR holding signer-agent and signerctl (repeatable)")
	fs.Var(libs, "lib", "ARCH=SRC:DST shared library for ARCH (repeatable)")
	fs.Var(labels, "label", "KEY=VALUE image label (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" || *epoch < 0 || *out == "" || len(bins) == 0 {
		return errors.New("--version, --epoch, --out and at least one --bin are required")
	}
	created := time.Unix(*epoch, 0).UTC()
	lbl := map[string]string{}
	for k, v := range labels {
		lbl[k] = v[len(v)-1]
	}
	lbl["org.opencontainers.image.version"] = *version
	lbl["org.opencontainers.image.created"] = created.Format(time.RFC3339)

	archs := make([]string, 0, len(bins))
	for a := range bins {
		archs = append(archs, a)
	}
	sort.Strings(archs)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range archs {
		files, err := rootfs(bins[arch][0], libs[arch], *caBundle)
		if err != nil {
			return fmt.Errorf("%s: %w", arch, err)
		}
		img, err := image(arch, files, created, lbl)
		if err != nil {
			return fmt.Errorf("%s: %w", arch, err)
		}
		p := v1.Platform{OS: "linux", Architecture: arch}
		if arch == "arm64" {
			p.Variant = "v8"
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return writeLayoutTar(*out, idx, *version, created)
}

// entry is one file or directory of the image's root file system.
type entry struct {
	name     string // absolute path
	dir      bool
	mode     int64
	uid, gid int
	data     []byte
}

// rootfs lists the image's files: only what the agent needs to run.
func rootfs(binDir string, libs []string, caBundle string) ([]entry, error) {
	var es []entry
	dir := func(name string, mode int64, uid, gid int) {
		es = append(es, entry{name: name, dir: true, mode: mode, uid: uid, gid: gid})
	}
	file := func(name string, mode int64, data []byte) {
		es = append(es, entry{name: name, mode: mode, data: data})
	}
	for _, d := range []string{"/etc", "/etc/signer-agent", "/etc/signer-agent/trust", "/etc/signer-agent/trust/authority",
		"/etc/signer-agent/trust/licensing", "/etc/signer-agent/trust/release", "/usr", "/usr/bin", "/var", "/var/lib", "/run"} {
		dir(d, 0o755, 0, 0)
	}
	dir("/etc/signer-agent/keys", 0o750, 0, agentGID)
	dir("/var/lib/signer-agent", 0o700, agentUID, agentGID)
	dir("/run/signer-agent", 0o750, agentUID, clientsGID)
	dir("/tmp", 0o1777, 0, 0)
	file("/etc/passwd", 0o644, []byte(fmt.Sprintf(
		"root:x:0:0:root:/root:/usr/sbin/nologin\nsigner-agent:x:%d:%d:signer-agent signing daemon:/var/lib/signer-agent:/usr/sbin/nologin\n", agentUID, agentGID)))
	file("/etc/group", 0o644, []byte(fmt.Sprintf("root:x:0:\nsigner-agent:x:%d:\nsigner-clients:x:%d:\n", agentGID, clientsGID)))
	for _, b := range []string{"signer-agent", "signerctl"} {
		data, err := os.ReadFile(filepath.Join(binDir, b))
		if err != nil {
			return nil, err
		}
		file("/usr/bin/"+b, 0o755, data)
	}
	for _, l := range libs {
		src, dst, ok := strings.Cut(l, ":")
		if !ok || !path.IsAbs(dst) {
			return nil, fmt.Errorf("--lib %q: want SRC:/ABS/DST", l)
		}
		data, err := os.ReadFile(src) // follows symlinks: the image holds real files
		if err != nil {
			return nil, err
		}
		file(dst, 0o755, data)
	}
	if caBundle != "" {
		data, err := os.ReadFile(caBundle)
		if err != nil {
			return nil, err
		}
		file("/etc/ssl/certs/ca-certificates.crt", 0o644, data)
	}
	return withParents(es), nil
}

// withParents adds missing parent directories (0755 root) and sorts by name.
func withParents(es []entry) []entry {
	have := map[string]bool{}
	for _, e := range es {
		have[e.name] = true
	}
	for _, e := range append([]entry(nil), es...) {
		for d := path.Dir(e.name); d != "/"; d = path.Dir(d) {
			if !have[d] {
				have[d] = true
				es = append(es, entry{name: d, dir: true, mode: 0o755})
			}
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].name < es[j].name })
	return es
}

// layerTar writes the entries as an uncompressed tar with fixed metadata.
func layerTar(es []entry, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: strings.TrimPrefix(e.name, "/"), Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: mtime, Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// image builds one platform's image: a single layer and its config.
func image(arch string, es []entry, created time.Time, labels map[string]string) (v1.Image, error) {
	raw, err := layerTar(es, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	cfg := &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      v1.Time{Time: created},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			User:       fmt.Sprintf("%d:%d", agentUID, agentGID),
			Entrypoint: []string{"/usr/bin/signer-agent"},
			Cmd:        []string{"--config", "/etc/signer-agent/config.yaml"},
			Env:        []string{"PATH=/usr/bin", "SIGNER_AGENT_SOCKET=unix:///run/signer-agent/api.sock"},
			WorkingDir: "/var/lib/signer-agent",
			Labels:     labels,
		},
	}
	if arch == "arm64" {
		cfg.Variant = "v8"
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: created}, CreatedBy: "make dist (packaging/oci)", Comment: "signer-agent, signerctl, libc, CA roots"},
	})
}

// writeLayoutTar writes the index as an OCI image layout and packs it
// into a tar with fixed metadata, sorted by name.
func writeLayoutTar(out string, idx v1.ImageIndex, version string, mtime time.Time) error {
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".oci-layout-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	lp, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": version,
	})); err != nil {
		return err
	}
	var names []string
	err = filepath.WalkDir(tmp, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != tmp {
			rel, _ := filepath.Rel(tmp, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	return fsutil.WriteAtomic(out, 0o644, func(f io.Writer) error {
		tw := tar.NewWriter(f)
		for _, n := range names {
			full := filepath.Join(tmp, filepath.FromSlash(n))
			fi, err := os.Stat(full)
			if err != nil {
				return err
			}
			h := &tar.Header{Name: n, ModTime: mtime.UTC(), Format: tar.FormatUSTAR}
			if fi.IsDir() {
				h.Typeflag, h.Name, h.Mode = tar.TypeDir, n+"/", 0o755
			} else {
				h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, fi.Size()
			}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if !fi.IsDir() {
				b, err := os.ReadFile(full)
				if err != nil {
					return err
				}
				if _, err := tw.Write(b); err != nil {
					return err
				}
			}
		}
		return tw.Close()
	})
}
