package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// everything sets the values the example config leaves at zero: TCP on,
// nonces off, an empty admin allowlist, online entitlement and release,
// validity windows, retention.
const everything = `version: 1
stateDir: /srv/sa
listen:
  api: {path: /srv/sa/api.sock, mode: "0640", group: "5001"}
  admin: {path: /srv/sa/admin.sock}
  tcp: {address: "0.0.0.0:8443", certFile: tls/cert.pem, keyFile: tls/key.pem, clientCAFile: tls/ca.pem}
transport: {maxBodyBytes: 4096, readTimeout: 1m30s}
peers:
  allow: {uids: [0, 4300], gids: [5001]}
  admin: {}
authority: {issuer: "https://authority.example", discovery: true, installation: node-2, skew: 10s}
dpop: {htuBase: "https://signer.example", nonceRequired: false, nonceWindow: 30s}
entitlement: {introspectionURL: "https://licensing.example", issuer: lic, retries: 5, grace: 2h}
release: {repository: registry.example/stella/scanner, keyFiles: [a.pub, /b.pub], offlineDir: offline, insecure: true, cacheTTL: 1m}
plans:
  - {name: slow, qps: 0.5, burst: 2, concurrency: 1, maxArtifactBytes: 400, artifactsPerDay: 3}
limits: {globalConcurrency: 8}
tenants:
  - {id: t, plan: slow, predicateTypes: [stella.ops/sbom@v1, "https://cyclonedx.org/bom"], defaultKey: k, fallbackKey: f}
  - {id: u, predicateTypes: [x]}
keys:
  - {id: k, uri: "file:keys/k.pem?password-file=keys/k.pass", tenants: [t], status: active, notBefore: 2026-01-01T00:00:00Z, notAfter: 2027-01-31T12:30:00+02:00}
  - {id: f, uri: "memory:f?alg=ed25519", tenants: [t, u], status: verify-only}
revocationList: revoked.yaml
audit: {dir: /srv/audit, segmentBytes: 1048576, preallocateBytes: -1, journal: true, retention: {maxAge: 720h, maxBytes: 1000000, deleteUnexported: true}}
metrics: {listen: "off"}
logging: {level: debug, format: console}
`

// TestMarshalRoundTrips: Decode(Marshal(c)) is c, before and after
// defaults, for the reference config and configs that set every kind of
// value; the output is stable and holds no zero values.
func TestMarshalRoundTrips(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "..", "packaging", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{"example": example, "minimal": []byte(minimal), "everything": []byte(everything)} {
		t.Run(name, func(t *testing.T) {
			raw, err := Decode(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := raw.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Decode(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			// An empty list written as [] comes back as no list: the same.
			if !cmp.Equal(raw, back, cmpopts.EquateEmpty(), cmp.AllowUnexported(Config{})) {
				t.Fatalf("as written: round trip changed the config\nin:  %+v\nout: %+v\n%s", raw, back, out)
			}
			again, err := back.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, again) {
				t.Fatalf("output not stable:\n%s\n---\n%s", out, again)
			}
			if bytes.Contains(out, []byte(`: ""`)) || bytes.Contains(out, []byte(": null")) || bytes.Contains(out, []byte(": 0s\n")) {
				t.Fatalf("zero values written:\n%s", out)
			}

			// With defaults: what the agent loads is the same.
			want, err := Parse(in, "/etc/sa", "/etc/sa/config.yaml")
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(out, "/etc/sa", "/etc/sa/config.yaml")
			if err != nil {
				t.Fatal(err)
			}
			// The file bytes differ, and so their digests.
			want.digest, got.digest = "", ""
			if !cmp.Equal(want, got, cmpopts.EquateEmpty(), cmp.AllowUnexported(Config{})) {
				t.Fatalf("loaded config changed\nwant %+v\ngot  %+v", want, got)
			}
			// A loaded config marshals to a file that loads the same.
			loaded, err := want.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			reloaded, err := Parse(loaded, "/elsewhere", "/etc/sa/config.yaml")
			if err != nil {
				t.Fatal(err)
			}
			reloaded.digest = ""
			if !cmp.Equal(want, reloaded, cmpopts.EquateEmpty(), cmp.AllowUnexported(Config{})) {
				t.Fatalf("loaded config does not round-trip\n%s", loaded)
			}
		})
	}
}

func TestMarshalFormat(t *testing.T) {
	c, err := Decode([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `version: 1
authority:
  issuer: https://authority.example
  jwksFile: trust/authority/jwks.json
entitlement:
  licensingKeysFile: trust/licensing/public.pem
release:
  allowlistFile: trust/release/allowlist.yaml
tenants:
  - id: t
    predicateTypes:
      - stella.ops/sbom@v1
    defaultKey: k
keys:
  - id: k
    uri: file:keys/k.pem
    tenants:
      - t
`
	if string(out) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
}

func TestDecodeRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"empty":         "",
		"unknown key":   "version: 1\nbogus: 1\n",
		"two documents": "version: 1\n---\nversion: 1\n",
		"wrong type":    "version: one\n",
	} {
		if _, err := Decode([]byte(in)); err == nil || !strings.HasPrefix(err.Error(), "config: ") {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

// FuzzMarshal: whatever Decode accepts, Marshal writes YAML that Decode
// reads back and that marshals to the same bytes.
func FuzzMarshal(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(everything))
	if b, err := os.ReadFile(filepath.Join("..", "..", "packaging", "config.example.yaml")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			return
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := Decode(out)
		if err != nil {
			t.Fatalf("marshalled config does not decode: %v\n%s", err, out)
		}
		again, err := back.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, again) {
			t.Fatalf("not stable:\n%s\n---\n%s", out, again)
		}
	})
}
