package release

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// offlineImage is a fake image manifest with a version annotation and its digest.
func offlineImage(t *testing.T, version string) (string, []byte) {
	t.Helper()
	m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%x","size":2},"layers":[],"annotations":{%q:%q}}`,
		sha256.Sum256([]byte("{}")), AnnotationVersion, version)
	return fmt.Sprintf("sha256:%x", sha256.Sum256(m)), m
}

func TestOffline(t *testing.T) {
	release := newKey(t)
	stranger := newKey(t)
	releaseHint := hintOf(t, &release.PublicKey)

	tests := []struct {
		name    string
		files   func(t *testing.T, dir, digest string, manifest []byte)
		trusted bool
		version string
		reason  []string
	}{
		{
			name: "message-signature bundle, digest only",
			files: func(t *testing.T, dir, digest string, manifest []byte) {
				writeFile(t, dir, base(digest)+".sigstore.json", messageBundle(t, release, digest, manifest))
			},
			trusted: true,
		},
		{
			name: "DSSE bundle with manifest file for the version",
			files: func(t *testing.T, dir, digest string, manifest []byte) {
				writeFile(t, dir, base(digest)+".release.sigstore.json", dsseBundle(t, release, "registry.example/stella/scanner", digest))
				writeFile(t, dir, base(digest)+".manifest.json", manifest)
			},
			trusted: true, version: "3.1.0",
		},
		{
			name: "cosign signature and payload",
			files: func(t *testing.T, dir, digest string, _ []byte) {
				pl := simpleSigningPayload("registry.example/stella/scanner", digest, map[string]string{AnnotationVersion: "3.1.0-rc.1"})
				writeFile(t, dir, base(digest)+".payload", pl)
				writeFile(t, dir, base(digest)+".sig", []byte(signB64(t, release, pl)+"\n"))
			},
			trusted: true, version: "3.1.0-rc.1",
		},
		{
			name: "unknown key, then a trusted one",
			files: func(t *testing.T, dir, digest string, manifest []byte) {
				writeFile(t, dir, base(digest)+".a.sigstore.json", messageBundle(t, stranger, digest, manifest))
				writeFile(t, dir, base(digest)+".b.sigstore.json", messageBundle(t, release, digest, manifest))
			},
			trusted: true,
		},
		{
			name: "unknown key only",
			files: func(t *testing.T, dir, digest string, manifest []byte) {
				writeFile(t, dir, base(digest)+".sigstore.json", messageBundle(t, stranger, digest, manifest))
			},
			reason: []string{"offline: no signature verified", "does not verify with any trusted release key"},
		},
		{
			name:   "nothing for this digest",
			files:  func(*testing.T, string, string, []byte) {},
			reason: []string{"offline: no signature or bundle"},
		},
		{
			name: "signature without payload",
			files: func(t *testing.T, dir, digest string, _ []byte) {
				writeFile(t, dir, base(digest)+".sig", []byte("AAAA"))
			},
			reason: []string{"has no " + "sha256-"},
		},
		{
			name: "manifest file not matching the digest",
			files: func(t *testing.T, dir, digest string, manifest []byte) {
				writeFile(t, dir, base(digest)+".sigstore.json", messageBundle(t, release, digest, manifest))
				writeFile(t, dir, base(digest)+".manifest.json", append(manifest, ' '))
			},
			reason: []string{"manifest.json does not hash to the digest"},
		},
		{
			name: "payload naming another digest",
			files: func(t *testing.T, dir, digest string, _ []byte) {
				pl := simpleSigningPayload("registry.example/stella/scanner", "sha256:"+strings.Repeat("ab", 32), nil)
				writeFile(t, dir, base(digest)+".payload", pl)
				writeFile(t, dir, base(digest)+".sig", []byte(signB64(t, release, pl)))
			},
			reason: []string{"offline: ambiguous"},
		},
		{
			name: "another digest's files are not used",
			files: func(t *testing.T, dir, digest string, manifest []byte) {
				other := "sha256:" + strings.Repeat("ab", 32)
				writeFile(t, dir, base(other)+".sigstore.json", messageBundle(t, release, digest, manifest))
			},
			reason: []string{"offline: no signature or bundle"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			digest, manifest := offlineImage(t, "3.1.0")
			tc.files(t, dir, digest, manifest)
			c := mustNew(t, Config{OfflineDir: dir, PublicKeys: []crypto.PublicKey{&release.PublicKey}})
			v := check(t, c, digest)
			if !tc.trusted {
				wantUntrusted(t, v, tc.reason...)
				return
			}
			wantTrusted(t, v, SourceOfflineBundle, releaseHint)
			if v.Version != tc.version {
				t.Errorf("version %q, want %q", v.Version, tc.version)
			}
		})
	}
}

func base(digest string) string { return strings.Replace(digest, ":", "-", 1) }

func TestOfflineCached(t *testing.T) {
	k := newKey(t)
	dir := t.TempDir()
	digest, manifest := offlineImage(t, "1.0.0")
	writeFile(t, dir, base(digest)+".sigstore.json", messageBundle(t, k, digest, manifest))
	clock := newFakeClock()
	c := mustNew(t, Config{OfflineDir: dir, PublicKeys: []crypto.PublicKey{&k.PublicKey}, Now: clock.Now})
	wantTrusted(t, check(t, c, digest), SourceOfflineBundle, hintOf(t, &k.PublicKey))
	if err := os.Remove(filepath.Join(dir, base(digest)+".sigstore.json")); err != nil {
		t.Fatal(err)
	}
	v := check(t, c, digest)
	wantTrusted(t, v, SourceCache, hintOf(t, &k.PublicKey))
	if v.OriginalSource != SourceOfflineBundle {
		t.Errorf("original source %q", v.OriginalSource)
	}
	clock.Advance(DefaultCacheTTL)
	wantUntrusted(t, check(t, c, digest), "offline: no signature")
}

// An offline directory without the digest falls through to the registry;
// an ambiguous offline result does not.
func TestOfflineThenRegistry(t *testing.T) {
	k := newKey(t)
	r := newTestRegistry(t)
	digest, _ := r.pushImage(t, testVersion)
	pl := simpleSigningPayload(r.repo.String(), digest, nil)
	r.push(t, cosignArtifact(pl, signB64(t, k, pl), digest, ""))
	dir := t.TempDir()
	cfg := r.config(&k.PublicKey)
	cfg.OfflineDir = dir
	wantTrusted(t, check(t, mustNew(t, cfg), digest), SourceReferrers, hintOf(t, &k.PublicKey))

	bad := simpleSigningPayload(r.repo.String(), "sha256:"+strings.Repeat("ab", 32), nil)
	writeFile(t, dir, base(digest)+".payload", bad)
	writeFile(t, dir, base(digest)+".sig", []byte(signB64(t, k, bad)))
	r.requests.Store(0)
	wantUntrusted(t, check(t, mustNew(t, cfg), digest), "offline: ambiguous")
	if n := r.requests.Load(); n != 0 {
		t.Errorf("ambiguous offline result still asked the registry (%d requests)", n)
	}
}

// TestKeyTypes verifies cosign signatures made with each supported key type,
// including P-384 signed with SHA-256 as cosign does.
func TestKeyTypes(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name string
		pub  crypto.PublicKey
		sign func(msg []byte) []byte
	}{
		{"P-256", nil, nil},
		{"P-384 SHA-384", &p384.PublicKey, func(msg []byte) []byte {
			h := sha512.Sum384(msg)
			s, _ := ecdsa.SignASN1(rand.Reader, p384, h[:])
			return s
		}},
		{"P-384 SHA-256", &p384.PublicKey, func(msg []byte) []byte {
			h := sha256.Sum256(msg)
			s, _ := ecdsa.SignASN1(rand.Reader, p384, h[:])
			return s
		}},
		{"RSA PKCS#1 v1.5", &rsaKey.PublicKey, func(msg []byte) []byte {
			h := sha256.Sum256(msg)
			s, _ := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, h[:])
			return s
		}},
		{"Ed25519", edPub, func(msg []byte) []byte { return ed25519.Sign(edPriv, msg) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.pub == nil {
				k := newKey(t)
				tc.pub = &k.PublicKey
				tc.sign = func(msg []byte) []byte { return signRaw(t, k, msg) }
			}
			dir := t.TempDir()
			digest, _ := offlineImage(t, "1.0.0")
			pl := simpleSigningPayload("registry.example/stella/scanner", digest, nil)
			writeFile(t, dir, base(digest)+".payload", pl)
			writeFile(t, dir, base(digest)+".sig", []byte(base64.StdEncoding.EncodeToString(tc.sign(pl))))
			other := newKey(t)
			c := mustNew(t, Config{OfflineDir: dir, PublicKeys: []crypto.PublicKey{&other.PublicKey, tc.pub}, Now: func() time.Time { return time.Unix(0, 0) }})
			wantTrusted(t, check(t, c, digest), SourceOfflineBundle, hintOf(t, tc.pub))
		})
	}
}

// Ed25519 message signatures can only be checked against the manifest bytes.
func TestEd25519MessageBundleNeedsManifest(t *testing.T) {
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	dir := t.TempDir()
	digest, manifest := offlineImage(t, "1.0.0")
	sum := sha256.Sum256(manifest)
	b := fmt.Appendf(nil, `{"mediaType":%q,"verificationMaterial":{"publicKey":{"hint":%q}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":%q},"signature":%q}}`,
		MediaTypeBundleV03, hintOf(t, edPub), base64.StdEncoding.EncodeToString(sum[:]), base64.StdEncoding.EncodeToString(ed25519.Sign(edPriv, manifest)))
	writeFile(t, dir, base(digest)+".sigstore.json", b)
	cfg := Config{OfflineDir: dir, PublicKeys: []crypto.PublicKey{edPub}}
	wantUntrusted(t, check(t, mustNew(t, cfg), digest), "sigstore bundle does not verify")
	writeFile(t, dir, base(digest)+".manifest.json", manifest)
	v := check(t, mustNew(t, cfg), digest)
	wantTrusted(t, v, SourceOfflineBundle, hintOf(t, edPub))
	if v.Version != "1.0.0" {
		t.Errorf("version %q", v.Version)
	}
}
