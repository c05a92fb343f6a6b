package release

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func check(t *testing.T, c *Checker, digest string) Verdict {
	t.Helper()
	v, err := c.Check(context.Background(), digest)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	t.Logf("verdict: trusted=%v source=%q orig=%q version=%q reason=%q", v.Trusted, v.Source, v.OriginalSource, v.Version, v.Reason)
	if v.Digest != digest {
		t.Fatalf("verdict digest %s, want %s", v.Digest, digest)
	}
	return v
}

func wantTrusted(t *testing.T, v Verdict, source, keyHint string) {
	t.Helper()
	if !v.Trusted {
		t.Fatalf("untrusted: %s", v.Reason)
	}
	if v.Source != source {
		t.Errorf("source %q, want %q", v.Source, source)
	}
	if v.KeyHint != keyHint {
		t.Errorf("keyHint %q, want %q", v.KeyHint, keyHint)
	}
	if v.Reason != "" {
		t.Errorf("trusted verdict with reason %q", v.Reason)
	}
}

func wantUntrusted(t *testing.T, v Verdict, reasonParts ...string) {
	t.Helper()
	if v.Trusted {
		t.Fatalf("trusted (source %s), want untrusted", v.Source)
	}
	for _, p := range reasonParts {
		if !strings.Contains(v.Reason, p) {
			t.Errorf("reason %q does not contain %q", v.Reason, p)
		}
	}
}

// TestOnline covers the registry lookups: referrers, the .sig tag,
// bundles, unknown keys, missing signatures and payloads naming another
// image.
func TestOnline(t *testing.T) {
	release := newKey(t)
	stranger := newKey(t)
	releaseHint := hintOf(t, &release.PublicKey)

	tests := []struct {
		name string
		// setup pushes signatures for the image (digest, manifest).
		setup   func(t *testing.T, r *testRegistry, digest string, manifest []byte)
		trusted bool
		source  string
		reason  []string
	}{
		{
			name: "cosign referrer",
			setup: func(t *testing.T, r *testRegistry, digest string, _ []byte) {
				pl := simpleSigningPayload(r.repo.String(), digest, nil)
				r.push(t, cosignArtifact(pl, signB64(t, release, pl), digest, ""))
			},
			trusted: true, source: SourceReferrers,
		},
		{
			name: "cosign sig tag only",
			setup: func(t *testing.T, r *testRegistry, digest string, _ []byte) {
				pl := simpleSigningPayload(r.repo.String(), digest, nil)
				r.push(t, cosignArtifact(pl, signB64(t, release, pl), "", strings.Replace(digest, ":", "-", 1)+".sig"))
			},
			trusted: true, source: SourceTag,
		},
		{
			name: "DSSE bundle referrer",
			setup: func(t *testing.T, r *testRegistry, digest string, _ []byte) {
				r.push(t, bundleArtifact(dsseBundle(t, release, r.repo.String(), digest), digest))
			},
			trusted: true, source: SourceReferrers,
		},
		{
			name: "message-signature bundle referrer",
			setup: func(t *testing.T, r *testRegistry, digest string, manifest []byte) {
				r.push(t, bundleArtifact(messageBundle(t, release, digest, manifest), digest))
			},
			trusted: true, source: SourceReferrers,
		},
		{
			name: "unrelated referrers are filtered, signature still found",
			setup: func(t *testing.T, r *testRegistry, digest string, _ []byte) {
				r.push(t, artifact{configType: "application/spdx+json",
					layers: []layer{{data: []byte(`{"spdxVersion":"SPDX-2.3"}`), mediaType: "application/spdx+json"}}, subject: digest})
				pl := simpleSigningPayload(r.repo.String(), digest, nil)
				r.push(t, cosignArtifact(pl, signB64(t, release, pl), digest, ""))
			},
			trusted: true, source: SourceReferrers,
		},
		{
			name: "signature by an unknown key",
			setup: func(t *testing.T, r *testRegistry, digest string, _ []byte) {
				pl := simpleSigningPayload(r.repo.String(), digest, nil)
				r.push(t, cosignArtifact(pl, signB64(t, stranger, pl), digest, ""))
			},
			reason: []string{"no signature verified with a trusted release key", "does not verify with any trusted release key"},
		},
		{
			name: "bundle by an unknown key",
			setup: func(t *testing.T, r *testRegistry, digest string, _ []byte) {
				r.push(t, bundleArtifact(dsseBundle(t, stranger, r.repo.String(), digest), digest))
			},
			reason: []string{"no signature verified with a trusted release key", "sigstore bundle"},
		},
		{
			name:   "no signature",
			setup:  func(*testing.T, *testRegistry, string, []byte) {},
			reason: []string{"no cosign signature or sigstore bundle", "referrers: 0 listed", ".sig: not found"},
		},
		{
			name: "only an SBOM referrer",
			setup: func(t *testing.T, r *testRegistry, digest string, _ []byte) {
				r.push(t, artifact{configType: "application/spdx+json",
					layers: []layer{{data: []byte(`{}`), mediaType: "application/spdx+json"}}, subject: digest})
			},
			reason: []string{"no cosign signature or sigstore bundle", "referrers: 1 listed, none a signature"},
		},
		{
			name: "payload naming another digest",
			setup: func(t *testing.T, r *testRegistry, digest string, _ []byte) {
				other := "sha256:" + strings.Repeat("ab", 32)
				pl := simpleSigningPayload(r.repo.String(), other, nil)
				r.push(t, cosignArtifact(pl, signB64(t, release, pl), digest, ""))
			},
			reason: []string{"ambiguous", "sha256:" + strings.Repeat("ab", 32), "not for the requested digest"},
		},
		{
			name: "valid signature plus one naming another digest is ambiguous",
			setup: func(t *testing.T, r *testRegistry, digest string, _ []byte) {
				pl := simpleSigningPayload(r.repo.String(), digest, nil)
				r.push(t, cosignArtifact(pl, signB64(t, release, pl), digest, ""))
				other := simpleSigningPayload(r.repo.String(), "sha256:"+strings.Repeat("cd", 32), nil)
				r.push(t, cosignArtifact(other, signB64(t, release, other), "", strings.Replace(digest, ":", "-", 1)+".sig"))
			},
			reason: []string{"ambiguous", "tag sha256-"},
		},
		{
			name: "bundle for another digest",
			setup: func(t *testing.T, r *testRegistry, digest string, _ []byte) {
				r.push(t, bundleArtifact(dsseBundle(t, release, r.repo.String(), "sha256:"+strings.Repeat("ef", 32)), digest))
			},
			reason: []string{"ambiguous", "sha256:" + strings.Repeat("ef", 32)},
		},
		{
			name: "signature layer without the signature annotation",
			setup: func(t *testing.T, r *testRegistry, digest string, _ []byte) {
				pl := simpleSigningPayload(r.repo.String(), digest, nil)
				r.push(t, artifact{configType: MediaTypeSimpleSigning,
					layers: []layer{{data: pl, mediaType: MediaTypeSimpleSigning}}, subject: digest})
			},
			reason: []string{"has no dev.cosignproject.cosign/signature annotation"},
		},
		{
			name: "tampered payload",
			setup: func(t *testing.T, r *testRegistry, digest string, _ []byte) {
				pl := simpleSigningPayload(r.repo.String(), digest, nil)
				sig := signB64(t, release, pl)
				pl = simpleSigningPayload(r.repo.String(), digest, map[string]string{AnnotationVersion: "9.9.9"})
				r.push(t, cosignArtifact(pl, sig, digest, ""))
			},
			reason: []string{"does not verify with any trusted release key"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRegistry(t)
			digest, manifest := r.pushImage(t, testVersion)
			tc.setup(t, r, digest, manifest)
			c := mustNew(t, r.config(&release.PublicKey))
			v := check(t, c, digest)
			if !tc.trusted {
				wantUntrusted(t, v, tc.reason...)
				if v.KeyHint != "" || v.Version != "" || v.Source != "" {
					t.Errorf("untrusted verdict carries keyHint %q version %q source %q", v.KeyHint, v.Version, v.Source)
				}
				return
			}
			wantTrusted(t, v, tc.source, releaseHint)
			if v.Version != testVersion {
				t.Errorf("version %q, want %q", v.Version, testVersion)
			}
		})
	}
}

func TestOnlineVersionFromSignedPayload(t *testing.T) {
	k := newKey(t)
	r := newTestRegistry(t)
	digest, _ := r.pushImage(t, "")
	pl := simpleSigningPayload(r.repo.String(), digest, map[string]string{AnnotationVersion: "v2.0.1"})
	r.push(t, cosignArtifact(pl, signB64(t, k, pl), digest, ""))
	v := check(t, mustNew(t, r.config(&k.PublicKey)), digest)
	wantTrusted(t, v, SourceReferrers, hintOf(t, &k.PublicKey))
	if v.Version != "v2.0.1" {
		t.Errorf("version %q, want v2.0.1", v.Version)
	}
}

func TestOnlineUnknownImage(t *testing.T) {
	k := newKey(t)
	r := newTestRegistry(t)
	r.pushImage(t, testVersion) // the repository exists
	v := check(t, mustNew(t, r.config(&k.PublicKey)), "sha256:"+strings.Repeat("0", 64))
	wantUntrusted(t, v, "not found in")
}

func TestRegistryDown(t *testing.T) {
	k := newKey(t)
	r := newTestRegistry(t)
	digest, _ := r.pushImage(t, testVersion)
	pl := simpleSigningPayload(r.repo.String(), digest, nil)
	r.push(t, cosignArtifact(pl, signB64(t, k, pl), digest, ""))
	c := mustNew(t, r.config(&k.PublicKey))
	r.srv.Close()
	v := check(t, c, digest)
	wantUntrusted(t, v, "registry: fetch image manifest", "connection refused")
}

func TestPlainHTTPRefusedWithoutInsecure(t *testing.T) {
	k := newKey(t)
	r := newTestRegistry(t)
	digest, _ := r.pushImage(t, testVersion)
	pl := simpleSigningPayload(r.repo.String(), digest, nil)
	r.push(t, cosignArtifact(pl, signB64(t, k, pl), digest, ""))
	cfg := r.config(&k.PublicKey)
	cfg.Insecure = false
	v := check(t, mustNew(t, cfg), digest)
	wantUntrusted(t, v, "registry:", "must use HTTPS")
}

func TestCache(t *testing.T) {
	k := newKey(t)
	r := newTestRegistry(t)
	digest, _ := r.pushImage(t, testVersion)
	pl := simpleSigningPayload(r.repo.String(), digest, nil)
	r.push(t, cosignArtifact(pl, signB64(t, k, pl), digest, ""))
	clock := newFakeClock()
	cfg := r.config(&k.PublicKey)
	cfg.Now = clock.Now
	cfg.CacheTTL = 5 * time.Minute
	c := mustNew(t, cfg)

	r.requests.Store(0)
	first := check(t, c, digest)
	wantTrusted(t, first, SourceReferrers, hintOf(t, &k.PublicKey))
	perLookup := r.requests.Load()
	if perLookup == 0 {
		t.Fatal("first check made no registry request")
	}

	clock.Advance(5*time.Minute - time.Second)
	r.requests.Store(0)
	second := check(t, c, digest)
	if n := r.requests.Load(); n != 0 {
		t.Errorf("cached check made %d registry requests", n)
	}
	wantTrusted(t, second, SourceCache, first.KeyHint)
	if second.OriginalSource != SourceReferrers || !second.CheckedAt.Equal(first.CheckedAt) || second.Version != testVersion {
		t.Errorf("cached verdict %+v does not keep the original %+v", second, first)
	}

	clock.Advance(2 * time.Second)
	r.requests.Store(0)
	third := check(t, c, digest)
	wantTrusted(t, third, SourceReferrers, first.KeyHint)
	if n := r.requests.Load(); n != perLookup {
		t.Errorf("check after expiry made %d registry requests, want %d", n, perLookup)
	}
	if !third.CheckedAt.After(first.CheckedAt) {
		t.Errorf("CheckedAt not refreshed")
	}
}

func TestNegativeCache(t *testing.T) {
	k := newKey(t)
	r := newTestRegistry(t)
	digest, _ := r.pushImage(t, testVersion)
	clock := newFakeClock()
	cfg := r.config(&k.PublicKey)
	cfg.Now = clock.Now
	c := mustNew(t, cfg)

	wantUntrusted(t, check(t, c, digest), "no cosign signature")
	// The signature is pushed just after the denial.
	pl := simpleSigningPayload(r.repo.String(), digest, nil)
	r.push(t, cosignArtifact(pl, signB64(t, k, pl), digest, ""))

	clock.Advance(DefaultNegativeTTL - time.Second)
	r.requests.Store(0)
	v := check(t, c, digest)
	wantUntrusted(t, v, "no cosign signature")
	if v.Source != SourceCache || r.requests.Load() != 0 {
		t.Errorf("negative verdict not served from cache: source %q, %d requests", v.Source, r.requests.Load())
	}

	clock.Advance(2 * time.Second)
	wantTrusted(t, check(t, c, digest), SourceReferrers, hintOf(t, &k.PublicKey))
}

func TestSingleFlight(t *testing.T) {
	k := newKey(t)
	r := newTestRegistry(t)
	digest, _ := r.pushImage(t, testVersion)
	pl := simpleSigningPayload(r.repo.String(), digest, nil)
	r.push(t, cosignArtifact(pl, signB64(t, k, pl), digest, ""))

	// Requests of one lookup, measured with an ungated registry.
	r.requests.Store(0)
	wantTrusted(t, check(t, mustNew(t, r.config(&k.PublicKey)), digest), SourceReferrers, hintOf(t, &k.PublicKey))
	perLookup := r.requests.Load()

	c := mustNew(t, r.config(&k.PublicKey))
	gate := make(chan struct{})
	r.gate.Store(&gate)
	r.requests.Store(0)

	const n = 50
	var wg sync.WaitGroup
	verdicts := make([]Verdict, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { verdicts[i], errs[i] = c.Check(context.Background(), digest) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.waiting.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d checks waiting", c.waiting.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	r.gate.Store(nil)
	close(gate)
	wg.Wait()

	if got := c.lookups.Load(); got != 1 {
		t.Errorf("%d lookups, want 1", got)
	}
	if got := r.requests.Load(); got != perLookup {
		t.Errorf("%d registry requests, want %d (one lookup)", got, perLookup)
	}
	for i := range n {
		if errs[i] != nil || !verdicts[i].Trusted || verdicts[i].Source != SourceReferrers {
			t.Fatalf("check %d: %+v, %v", i, verdicts[i], errs[i])
		}
	}
}

func TestCallerCancelled(t *testing.T) {
	k := newKey(t)
	r := newTestRegistry(t)
	digest, _ := r.pushImage(t, testVersion)
	pl := simpleSigningPayload(r.repo.String(), digest, nil)
	r.push(t, cosignArtifact(pl, signB64(t, k, pl), digest, ""))
	c := mustNew(t, r.config(&k.PublicKey))

	gate := make(chan struct{})
	r.gate.Store(&gate)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Verdict)
	go func() {
		v, _ := c.Check(ctx, digest)
		done <- v
	}()
	for c.waiting.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wantUntrusted(t, <-done, "abandoned", "context canceled")

	// The shared lookup carries on and its verdict serves the next caller.
	r.gate.Store(nil)
	close(gate)
	wantTrusted(t, check(t, c, digest), SourceReferrers, hintOf(t, &k.PublicKey))
	if got := c.lookups.Load(); got != 1 {
		t.Errorf("%d lookups, want 1", got)
	}
}

func TestAllowlistVerdict(t *testing.T) {
	at := time.Date(2026, 4, 30, 9, 0, 0, 0, time.UTC)
	approved := "sha256:" + strings.Repeat("1", 64)
	plain := "sha256:" + strings.Repeat("2", 64)
	c := mustNew(t, Config{Allowlist: []AllowEntry{
		{Digest: approved, Version: "1.5.0", ApprovedBy: "alice@example.org", ApprovedAt: &at, Note: "hotfix"},
		{Digest: plain, Version: "1.4.0"},
	}})

	v := check(t, c, approved)
	wantTrusted(t, v, SourceAllowlist, "")
	if v.Version != "1.5.0" || v.ManualApproval == nil || v.ManualApproval.ApprovedBy != "alice@example.org" ||
		v.ManualApproval.ApprovedAt == nil || !v.ManualApproval.ApprovedAt.Equal(at) || v.ManualApproval.Note != "hotfix" {
		t.Errorf("verdict %+v, approval %+v", v, v.ManualApproval)
	}
	v = check(t, c, plain)
	wantTrusted(t, v, SourceAllowlist, "")
	if v.ManualApproval != nil {
		t.Errorf("plain entry has a manual approval")
	}
	wantUntrusted(t, check(t, c, "sha256:"+strings.Repeat("3", 64)), "not in the release allowlist")
}

func TestAllowlistBeforeRegistry(t *testing.T) {
	k := newKey(t)
	r := newTestRegistry(t)
	digest, _ := r.pushImage(t, testVersion)
	cfg := r.config(&k.PublicKey)
	cfg.Allowlist = []AllowEntry{{Digest: digest, ApprovedBy: "bob"}}
	c := mustNew(t, cfg)
	r.requests.Store(0)
	wantTrusted(t, check(t, c, digest), SourceAllowlist, "")
	if n := r.requests.Load(); n != 0 {
		t.Errorf("allowlisted digest made %d registry requests", n)
	}
}

func TestCheckInvalidDigest(t *testing.T) {
	c := mustNew(t, Config{Allowlist: []AllowEntry{{Digest: "sha256:" + strings.Repeat("1", 64)}}})
	for _, d := range []string{"", "sha256:", "sha512:" + strings.Repeat("1", 128), "sha256:" + strings.Repeat("A", 64),
		"sha256:" + strings.Repeat("1", 63), "sha256:" + strings.Repeat("1", 64) + "/../x"} {
		if _, err := c.Check(context.Background(), d); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("Check(%q): %v, want ErrInvalidDigest", d, err)
		}
	}
}

func TestNewConfigErrors(t *testing.T) {
	k := newKey(t)
	dir := t.TempDir()
	file := dir + "/f"
	writeFile(t, dir, "f", []byte("x"))
	good := AllowEntry{Digest: "sha256:" + strings.Repeat("1", 64)}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"nothing configured", Config{}},
		{"repository without keys", Config{Repository: "registry.example/stella/scanner"}},
		{"offline dir without keys", Config{OfflineDir: dir}},
		{"bad repository", Config{Repository: "registry.example/Stella:tag", PublicKeys: []crypto.PublicKey{&k.PublicKey}}},
		{"offline dir missing", Config{OfflineDir: dir + "/nope", PublicKeys: []crypto.PublicKey{&k.PublicKey}}},
		{"offline dir is a file", Config{OfflineDir: file, PublicKeys: []crypto.PublicKey{&k.PublicKey}}},
		{"bad allowlist digest", Config{Allowlist: []AllowEntry{{Digest: "sha256:xyz"}}}},
		{"duplicate allowlist digest", Config{Allowlist: []AllowEntry{good, good}}},
		{"unsupported key", Config{Repository: "r.example/s", PublicKeys: []crypto.PublicKey{"not a key"}}},
		{"negative TTL", Config{Allowlist: []AllowEntry{good}, CacheTTL: -time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); !errors.Is(err, ErrConfig) {
				t.Errorf("New: %v, want ErrConfig", err)
			}
		})
	}
}

// The registry lists referrers with the config media type as artifactType;
// a manifest's own artifactType with an empty config must still be read.
func TestReferrerCandidates(t *testing.T) {
	tests := []struct {
		at, mt string
		want   bool
	}{
		{MediaTypeSimpleSigning, string(types.OCIManifestSchema1), true},
		{ArtifactTypeCosignSig, string(types.OCIManifestSchema1), true},
		{MediaTypeBundleV03, string(types.OCIManifestSchema1), true},
		{mediaTypeOCIEmpty, string(types.OCIManifestSchema1), true},
		{"", string(types.DockerManifestSchema2), true},
		{"application/spdx+json", string(types.OCIManifestSchema1), false},
		{MediaTypeBundleV03, string(types.OCIImageIndex), false},
	}
	for _, tc := range tests {
		d := referrerDesc(tc.at, tc.mt)
		if got := candidate(d); got != tc.want {
			t.Errorf("candidate(%q, %q) = %v, want %v", tc.at, tc.mt, got, tc.want)
		}
	}
}

func referrerDesc(artifactType, mediaType string) v1.Descriptor {
	return v1.Descriptor{ArtifactType: artifactType, MediaType: types.MediaType(mediaType)}
}
