//go:build dist

package dist

import (
	"archive/tar"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/kit"
	"github.com/stellaops/signer-agent/test/harness"
)

// offline runs a command in a new network namespace with no interfaces
// up: whatever it does, it cannot reach a network.
func offline(name string, args ...string) *exec.Cmd {
	return exec.Command("unshare", append([]string{"--net", "--", name}, args...)...)
}

// TestOfflineKit runs the kit's own signerctl with no network: the kit
// verifies with the release key; a tampered file, a tampered SHA256SUMS
// and a wrong key each fail with exit status 1 and name the problem.
func TestOfflineKit(t *testing.T) {
	a := distArtifacts(t)
	needRoot(t)
	needTool(t, "unshare", "util-linux")
	dir := t.TempDir()
	top := unpackKit(t, a.kit, dir)
	if filepath.Base(top) != "signer-agent-offline-kit_"+a.version {
		t.Fatalf("kit top directory %q", filepath.Base(top))
	}
	ctl := filepath.Join(top, "bin", "linux-amd64", "signerctl")
	wrongPub := filepath.Join(dir, "wrong.pub")
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	b, _ := keys.MarshalPublicKeyPEM(other.Public())
	if err := os.WriteFile(wrongPub, b, 0o644); err != nil {
		t.Fatal(err)
	}

	// Proof that the namespace really has no network: /proc/net/dev lists
	// the namespace's own interfaces, and there is only the loopback (down
	// in a new namespace).
	out, err := offline("sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '").CombinedOutput()
	if err != nil || strings.Join(strings.Fields(string(out)), " ") != "lo" {
		t.Fatalf("unshare -n: interfaces %q (%v), want only lo", out, err)
	}

	t.Run("verifies", func(t *testing.T) {
		for _, target := range []string{a.kit, top} {
			out, err := offline(ctl, "kit", "verify", target, "--key", a.pub).CombinedOutput()
			if err != nil {
				t.Fatalf("kit verify %s: %v\n%s", target, err, out)
			}
			if !strings.Contains(string(out), "Verified OK: signer-agent-offline-kit_"+a.version+" (version "+a.version) {
				t.Fatalf("output: %s", out)
			}
			// The image is a provenance subject outside the kit: its digest is
			// printed for comparison, and matches the artifact.
			want := sha256File(t, a.oci) + "  " + filepath.Base(a.oci)
			if !strings.Contains(string(out), want) {
				t.Fatalf("output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("cosign verifies the SHA256SUMS signature", func(t *testing.T) {
		out, err := offline(harness.Cosign(t), "verify-blob-attestation", "--key", a.pub, "--insecure-ignore-tlog",
			"--type", kit.ChecksumsPredicateType, "--bundle", filepath.Join(top, kit.SumsBundleFile),
			filepath.Join(top, kit.SumsFile)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Verified OK") {
			t.Fatalf("cosign: %v\n%s", err, out)
		}
	})

	fails := []struct {
		name   string
		change func(t *testing.T, top string) // on a fresh copy
		key    string
		tar    bool
		want   string
	}{
		{name: "tampered file", change: func(t *testing.T, top string) {
			appendTo(t, filepath.Join(top, "docs", "offline-kit.md"), "\nevil\n")
		}, want: "docs/offline-kit.md: checksum mismatch"},
		{name: "tampered binary in a repacked tarball", tar: true, change: func(t *testing.T, top string) {
			appendTo(t, filepath.Join(top, "bin", "linux-arm64", "signer-agent"), "x")
		}, want: "bin/linux-arm64/signer-agent: checksum mismatch"},
		{name: "tampered SHA256SUMS", change: func(t *testing.T, top string) {
			p := filepath.Join(top, kit.SumsFile)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] == '0' {
				b[0] = '1'
			} else {
				b[0] = '0'
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: "SHA256SUMS.sigstore.json: does not verify SHA256SUMS"},
		{name: "unlisted file", change: func(t *testing.T, top string) {
			if err := os.WriteFile(filepath.Join(top, "trust", "release", "attacker.pub"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: "trust/release/attacker.pub: in the kit but not listed"},
		{name: "wrong key", key: wrongPub, want: "does not verify SHA256SUMS with the given key"},
	}
	for _, tc := range fails {
		t.Run(tc.name, func(t *testing.T) {
			copyDir := filepath.Join(t.TempDir(), filepath.Base(top))
			run(t, "cp", "-a", top, copyDir)
			if tc.change != nil {
				tc.change(t, copyDir)
			}
			target := copyDir
			if tc.tar {
				target = copyDir + ".tar.gz"
				f, err := os.Create(target)
				if err != nil {
					t.Fatal(err)
				}
				if err := kit.WriteTarGz(f, copyDir, filepath.Base(copyDir), time.Unix(0, 0)); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
			key := a.pub
			if tc.key != "" {
				key = tc.key
			}
			out, err := offline(ctl, "kit", "verify", target, "--key", key).CombinedOutput()
			if code := exitCode(err); code != 1 {
				t.Fatalf("exit status %d, want 1\n%s", code, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("output %q, want %q", out, tc.want)
			}
		})
	}

	t.Run("install.sh into a root", func(t *testing.T) { installIntoRoot(t, a, top) })
}

// installIntoRoot runs the kit's install.sh, offline, into a temporary
// root: twice (idempotent), then --uninstall, then --uninstall --purge.
func installIntoRoot(t *testing.T, a artifacts, top string) {
	root := filepath.Join(t.TempDir(), "root")
	for _, d := range []string{"etc", "usr", "var/lib", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	install := func(args ...string) string {
		t.Helper()
		out, err := offline("sh", append([]string{filepath.Join(top, "install.sh"), "--root", root}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("install.sh %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	install("--arch", "amd64", "--key", a.pub)
	first := snapshot(t, root)

	passwd, _ := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	group, _ := os.ReadFile(filepath.Join(root, "etc", "group"))
	if !strings.Contains(string(passwd), "\nsigner-agent:") && !strings.HasPrefix(string(passwd), "signer-agent:") {
		t.Fatalf("no signer-agent user in the root's /etc/passwd:\n%s", passwd)
	}
	if !strings.Contains(string(group), "signer-clients:") {
		t.Fatalf("no signer-clients group in the root's /etc/group:\n%s", group)
	}
	gid := fieldOf(t, string(group), "signer-agent", 2)
	uid := fieldOf(t, string(passwd), "signer-agent", 2)
	for p, want := range map[string]string{
		"usr/local/bin/signer-agent":                                  "755 0 0",
		"usr/local/bin/signerctl":                                     "755 0 0",
		"usr/local/lib/systemd/system/signer-agent.service":           "644 0 0",
		"usr/local/lib/systemd/system/signer-agent.socket":            "644 0 0",
		"usr/local/lib/sysusers.d/signer-agent.conf":                  "644 0 0",
		"etc/signer-agent/config.yaml":                                "640 0 " + gid,
		"etc/signer-agent/keys":                                       "750 0 " + gid,
		"etc/signer-agent/trust/authority":                            "755 0 0",
		"etc/signer-agent/trust/licensing":                            "755 0 0",
		"etc/signer-agent/trust/release":                              "755 0 0",
		"var/lib/signer-agent":                                        "700 " + uid + " " + gid,
		"usr/local/share/doc/signer-agent/trust/README.md":            "644 0 0",
		"etc/systemd/system/sockets.target.wants/signer-agent.socket": "link",
	} {
		if got := statOf(t, filepath.Join(root, p)); got != want {
			t.Errorf("%s: %q, want %q", p, got, want)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(root, "usr/local/lib/systemd/system/signer-agent.service"))
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/signer-agent --config /etc/signer-agent/config.yaml") {
		t.Errorf("installed unit does not start /usr/local/bin/signer-agent")
	}
	if out := run(t, filepath.Join(root, "usr/local/bin/signer-agent"), "--version"); strings.TrimSpace(out) != "signer-agent "+a.version {
		t.Errorf("installed binary: %q", out)
	}
	run(t, filepath.Join(root, "usr/local/bin/signer-agent"), "--check-config", filepath.Join(root, "etc/signer-agent/config.yaml"))

	// Idempotent: a second run changes nothing, and keeps an edited config.
	install("--arch", "amd64")
	if second := snapshot(t, root); second != first {
		t.Fatalf("a second install.sh changed the root:\n--- first\n%s\n--- second\n%s", first, second)
	}
	appendTo(t, filepath.Join(root, "etc/signer-agent/config.yaml"), "# edited\n")
	install("--arch", "amd64")
	if b, _ := os.ReadFile(filepath.Join(root, "etc/signer-agent/config.yaml")); !strings.HasSuffix(string(b), "# edited\n") {
		t.Fatal("install.sh overwrote an edited config")
	}

	// Uninstall keeps config and state; purge keeps the audit log only.
	for _, f := range []string{"var/lib/signer-agent/audit/segment-000001.log", "var/lib/signer-agent/quota.db"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	install("--uninstall")
	for _, gone := range []string{"usr/local/bin/signer-agent", "usr/local/lib/systemd/system/signer-agent.service",
		"usr/local/share/signer-agent/installed-files", "etc/systemd/system/sockets.target.wants/signer-agent.socket"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); err == nil {
			t.Errorf("--uninstall left %s", gone)
		}
	}
	for _, kept := range []string{"etc/signer-agent/config.yaml", "var/lib/signer-agent/quota.db", "var/lib/signer-agent/audit/segment-000001.log"} {
		if _, err := os.Stat(filepath.Join(root, kept)); err != nil {
			t.Errorf("--uninstall removed %s", kept)
		}
	}
	out := install("--uninstall", "--purge")
	if !strings.Contains(out, "audit log") || !strings.Contains(out, "was kept") {
		t.Errorf("--purge does not say that it kept the audit log:\n%s", out)
	}
	for _, gone := range []string{"etc/signer-agent/config.yaml", "var/lib/signer-agent/quota.db"} {
		if _, err := os.Stat(filepath.Join(root, gone)); err == nil {
			t.Errorf("--purge left %s", gone)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/signer-agent/audit/segment-000001.log")); err != nil {
		t.Errorf("--purge removed the audit log: %v", err)
	}
}

// unpackKit unpacks the kit tarball into dir and returns its top directory.
func unpackKit(t *testing.T, tgz, dir string) string {
	t.Helper()
	f, err := os.Open(tgz)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, tar.NewReader(zr), dir)
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("kit unpacks to %d entries: %v", len(ents), err)
	}
	return filepath.Join(dir, ents[0].Name())
}

// snapshot describes every file under root: path, type, mode, owner, digest.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := rel + " " + statOf(t, p)
		if d.Type().IsRegular() {
			line += " " + sha256File(t, p)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// statOf returns "MODE UID GID" (octal permission bits), or "link".
func statOf(t *testing.T, p string) string {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		return "missing"
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return "link"
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%o %d %d", fi.Mode().Perm(), st.Uid, st.Gid)
}

// fieldOf returns field i (0-based) of the colon-separated line for name.
func fieldOf(t *testing.T, db, name string, i int) string {
	t.Helper()
	for _, l := range strings.Split(db, "\n") {
		f := strings.Split(l, ":")
		if len(f) > i && f[0] == name {
			return f[i]
		}
	}
	t.Fatalf("no %s entry", name)
	return ""
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func appendTo(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
