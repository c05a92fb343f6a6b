package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/kit/kittest"
)

// kitFixture builds a signed kit in a temporary directory and writes the
// release public key and an unrelated one.
func kitFixture(t *testing.T) (top, pub, wrongPub string) {
	t.Helper()
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	top = kittest.Build(t, dir, kittest.Default(), priv)
	for name, k := range map[string]ed25519.PrivateKey{"release.pub": priv, "wrong.pub": other} {
		b, err := keys.MarshalPublicKeyPEM(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return top, filepath.Join(dir, "release.pub"), filepath.Join(dir, "wrong.pub")
}

func TestKitVerifyOK(t *testing.T) {
	top, pub, _ := kitFixture(t)
	tgz := kittest.TarGz(t, top)
	for name, args := range map[string][]string{
		"tarball, operand first": {"kit", "verify", tgz, "--key", pub},
		"tarball, operand last":  {"kit", "verify", "--key", pub, tgz},
		"directory":              {"kit", "verify", top, "--key", pub},
	} {
		t.Run(name, func(t *testing.T) {
			r := runCtl(t, args...)
			r.wantCode(t, exitOK)
			for _, want := range []string{
				"Verified OK: signer-agent-offline-kit_1.2.3 (version 1.2.3, commit " + kittest.Commit + ")",
				"SHA256SUMS: 26 files match",
				"provenance: 6 subjects in the kit match",
				"  " + kittest.SHA256([]byte("image")) + "  signer-agent_1.2.3_oci.tar",
			} {
				if !strings.Contains(r.stdout, want) {
					t.Fatalf("stdout lacks %q:\n%s", want, r.stdout)
				}
			}
		})
	}
}

func TestKitVerifyFails(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, top string)
		tar    bool
		wrong  bool
		want   string
	}{
		{name: "tampered file", change: func(t *testing.T, top string) {
			writeFile(t, top, "install.sh", "#!/bin/sh\nrm -rf /\n")
		}, want: "install.sh: checksum mismatch"},
		{name: "tampered file in the tarball", tar: true, change: func(t *testing.T, top string) {
			writeFile(t, filepath.Join(top, "bin", "linux-arm64"), "signerctl", "evil")
		}, want: "bin/linux-arm64/signerctl: checksum mismatch"},
		{name: "missing file", change: func(t *testing.T, top string) {
			if err := os.Remove(filepath.Join(top, "systemd", "signer-agent.service")); err != nil {
				t.Fatal(err)
			}
		}, want: "systemd/signer-agent.service: listed in SHA256SUMS but missing"},
		{name: "extra file", change: func(t *testing.T, top string) {
			writeFile(t, top, "extra.sh", "#!/bin/sh\n")
		}, want: "extra.sh: in the kit but not listed in SHA256SUMS"},
		{name: "tampered SHA256SUMS", change: func(t *testing.T, top string) {
			p := filepath.Join(top, "SHA256SUMS")
			b, _ := os.ReadFile(p)
			if err := os.WriteFile(p, append(b, []byte(strings.Repeat("0", 64)+"  extra\n")...), 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: "SHA256SUMS.sigstore.json: does not verify SHA256SUMS"},
		{name: "wrong key", wrong: true, want: "SHA256SUMS.sigstore.json: does not verify SHA256SUMS with the given key"},
		{name: "wrong key, tarball", wrong: true, tar: true, want: "does not verify SHA256SUMS with the given key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			top, pub, wrong := kitFixture(t)
			if tc.change != nil {
				tc.change(t, top)
			}
			p := top
			if tc.tar {
				p = kittest.TarGz(t, top)
			}
			key := pub
			if tc.wrong {
				key = wrong
			}
			r := runCtl(t, "kit", "verify", p, "--key", key)
			r.wantCode(t, exitFailure)
			if !strings.Contains(r.stderr, "signerctl: kit verification failed: ") || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("stderr %q, want %q", r.stderr, tc.want)
			}
			if strings.Contains(r.stdout, "Verified OK") {
				t.Fatalf("stdout claims success: %s", r.stdout)
			}
		})
	}
}

func TestKitUsage(t *testing.T) {
	top, pub, _ := kitFixture(t)
	for name, tc := range map[string]struct {
		args []string
		code int
		out  string // in stdout (exit 0) or stderr
	}{
		"kit -h":                          {[]string{"kit", "-h"}, exitOK, "verify  verify an offline kit"},
		"kit verify -h":                   {[]string{"kit", "verify", "-h"}, exitOK, "Get release.pub from your release channel"},
		"kit verify --help after operand": {[]string{"kit", "verify", top, "--help"}, exitOK, "Usage: signerctl kit verify"},
		"no subcommand":                   {[]string{"kit"}, exitUsage, "missing subcommand (want verify)"},
		"no key":                          {[]string{"kit", "verify", top}, exitUsage, "--key is required"},
		"no operand":                      {[]string{"kit", "verify", "--key", pub}, exitUsage, "KIT is required"},
		"two operands":                    {[]string{"kit", "verify", top, "--key", pub, top}, exitUsage, "unexpected argument"},
		"missing kit":                     {[]string{"kit", "verify", filepath.Join(top, "nope.tar.gz"), "--key", pub}, exitFailure, "no such file"},
		"key is not PEM":                  {[]string{"kit", "verify", top, "--key", filepath.Join(top, "README.md")}, exitFailure, "not PEM"},
	} {
		t.Run(name, func(t *testing.T) {
			r := runCtl(t, tc.args...)
			r.wantCode(t, tc.code)
			got := r.stderr
			if tc.code == exitOK {
				got = r.stdout
			}
			if !strings.Contains(got, tc.out) {
				t.Fatalf("output %q, want %q", got, tc.out)
			}
		})
	}
}
