package release

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Registry lookup limits.
const (
	maxReferrers = 64 // signature referrers examined per digest
	maxSigLayers = 32 // signature layers examined per manifest
)

// ociManifest is the part of an image manifest the checker reads.
type ociManifest struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Config       v1.Descriptor     `json:"config"`
	Layers       []v1.Descriptor   `json:"layers"`
	Subject      *v1.Descriptor    `json:"subject"`
	Annotations  map[string]string `json:"annotations"`
}

func remoteOptions(cfg Config) []remote.Option {
	rt := cfg.Transport
	if rt == nil {
		rt = defaultTransport()
	}
	if !cfg.Insecure {
		rt = httpsOnly{next: rt}
	}
	auth := remote.WithAuth(authn.Anonymous)
	if cfg.Keychain != nil {
		auth = remote.WithAuthFromKeychain(cfg.Keychain)
	}
	return []remote.Option{
		remote.WithTransport(rt),
		auth,
		remote.WithUserAgent("signer-agent"),
		// A short retry budget: the lookup is bounded by LookupTimeout and
		// an untrusted verdict is retried after NegativeTTL anyway.
		remote.WithRetryBackoff(remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 2}),
	}
}

func defaultTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 30 * time.Second
	t.MaxResponseHeaderBytes = 1 << 20
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return t
}

// httpsOnly refuses plain-HTTP requests unless Config.Insecure is set.
type httpsOnly struct{ next http.RoundTripper }

func (h httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" {
		return nil, fmt.Errorf("refusing %s request to %s: the registry must use HTTPS (Insecure is off)", r.URL.Scheme, r.URL.Host)
	}
	return h.next.RoundTrip(r)
}

// checkRegistry looks the digest up in the configured repository: the image
// manifest (it must exist; it gives the version), the referrers, and the
// cosign signature tag. Any registry error makes the verdict untrusted.
func (c *Checker) checkRegistry(ctx context.Context, digest string) Verdict {
	puller, err := remote.NewPuller(c.remoteOpts...)
	if err != nil {
		return c.untrusted(digest, "registry: "+err.Error())
	}
	ref := c.repo.Digest(digest)
	img, err := puller.Get(ctx, ref)
	if err != nil {
		if isNotFound(err) {
			return c.untrusted(digest, fmt.Sprintf("registry: image %s not found in %s", digest, c.repo))
		}
		return c.untrusted(digest, "registry: fetch image manifest: "+regErr(err))
	}

	var fs []finding
	idx, err := remote.Referrers(ref, remote.Reuse(puller), remote.WithContext(ctx))
	if err != nil {
		return c.untrusted(digest, "registry: list referrers: "+regErr(err))
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return c.untrusted(digest, "registry: referrers index: "+regErr(err))
	}
	listed, examined := len(im.Manifests), 0
	for _, d := range im.Manifests {
		if !candidate(d) {
			continue
		}
		if examined++; examined > maxReferrers {
			break
		}
		rfs, err := c.evalReferrer(ctx, puller, digest, d, img.Manifest)
		if err != nil {
			return c.untrusted(digest, fmt.Sprintf("registry: referrer %s: %s", d.Digest, regErr(err)))
		}
		fs = append(fs, rfs...)
	}

	tag := c.repo.Tag(strings.Replace(digest, ":", "-", 1) + ".sig")
	tagState := "not found"
	sd, err := puller.Get(ctx, tag)
	switch {
	case isNotFound(err):
	case err != nil:
		return c.untrusted(digest, fmt.Sprintf("registry: fetch signature tag %s: %s", tag.TagStr(), regErr(err)))
	default:
		tagState = "present"
		tfs, err := c.evalSigManifest(ctx, puller, "tag "+tag.TagStr(), SourceTag, sd.Manifest, digest, img.Manifest, true)
		if err != nil {
			return c.untrusted(digest, fmt.Sprintf("registry: signature tag %s: %s", tag.TagStr(), regErr(err)))
		}
		fs = append(fs, tfs...)
	}

	none := fmt.Sprintf("no cosign signature or sigstore bundle for %s in %s (referrers: %d listed, none a signature; tag %s: %s)",
		digest, c.repo, listed, tag.TagStr(), tagState)
	ok, reason := decide(fs, none)
	if ok == nil {
		return c.untrusted(digest, reason)
	}
	version, err := imageVersion(img)
	if err != nil {
		return c.untrusted(digest, "registry: image version: "+regErr(err))
	}
	if version == "" {
		version = ok.version
	}
	return c.trusted(digest, ok.source, ok, version)
}

// candidate reports whether a referrer descriptor may be a signature: its
// artifactType is one of ours, or is absent/empty and the manifest must be
// read to tell. The registry may not filter by artifactType, so this does.
func candidate(d v1.Descriptor) bool {
	switch d.MediaType {
	case types.OCIManifestSchema1, types.DockerManifestSchema2, "":
	default:
		return false
	}
	switch d.ArtifactType {
	case MediaTypeSimpleSigning, ArtifactTypeCosignSig, MediaTypeBundleV03, mediaTypeBundleV03Param, mediaTypeOCIEmpty, "":
		return true
	}
	return false
}

func (c *Checker) evalReferrer(ctx context.Context, p *remote.Puller, digest string, d v1.Descriptor, image []byte) ([]finding, error) {
	where := "referrer " + d.Digest.String()
	rd, err := p.Get(ctx, c.repo.Digest(d.Digest.String()))
	if err != nil {
		return nil, err
	}
	return c.evalSigManifest(ctx, p, where, SourceReferrers, rd.Manifest, digest, image, false)
}

// evalSigManifest examines the signature layers of a cosign signature image
// or a bundle artifact. named is true for the .sig tag, whose name alone
// ties it to the digest; a referrer must name the digest as its subject.
func (c *Checker) evalSigManifest(ctx context.Context, p *remote.Puller, where, source string, raw []byte, digest string, image []byte, named bool) ([]finding, error) {
	var m ociManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return []finding{{where: where, kind: "signature manifest", source: source, problem: "is malformed"}}, nil
	}
	if m.Subject != nil && m.Subject.Digest.String() != digest {
		return []finding{{where: where, kind: "signature manifest", source: source,
			conflict: fmt.Sprintf("names subject %s, not the requested digest", m.Subject.Digest)}}, nil
	}
	if m.Subject == nil && !named {
		return []finding{{where: where, kind: "signature manifest", source: source, problem: "is listed as a referrer but has no subject"}}, nil
	}
	var fs []finding
	n := 0
	for i, l := range m.Layers {
		mt := string(l.MediaType)
		if mt != MediaTypeSimpleSigning && mt != MediaTypeBundleV03 && mt != mediaTypeBundleV03Param {
			continue
		}
		if n++; n > maxSigLayers {
			break
		}
		lw := fmt.Sprintf("%s layer %d", where, i)
		switch mt {
		case MediaTypeSimpleSigning:
			sig, ok := l.Annotations[AnnotationSignature]
			if !ok {
				fs = append(fs, finding{where: lw, kind: "cosign signature", source: source, problem: "has no " + AnnotationSignature + " annotation"})
				continue
			}
			if l.Size > maxPayload {
				fs = append(fs, finding{where: lw, kind: "cosign signature", source: source, problem: fmt.Sprintf("has a payload of %d bytes, over the %d-byte limit", l.Size, maxPayload)})
				continue
			}
			pl, err := c.fetchBlob(ctx, p, l, maxPayload)
			if err != nil {
				return nil, err
			}
			f := c.evalSimpleSigning(lw, pl, sig, digest)
			f.source = source
			fs = append(fs, f)
		default:
			if l.Size > maxBundle {
				fs = append(fs, finding{where: lw, kind: "sigstore bundle", source: source, problem: fmt.Sprintf("is %d bytes, over the %d-byte limit", l.Size, maxBundle)})
				continue
			}
			b, err := c.fetchBlob(ctx, p, l, maxBundle)
			if err != nil {
				return nil, err
			}
			f := c.evalBundle(lw, b, digest, image)
			f.source = source
			fs = append(fs, f)
		}
	}
	if len(fs) == 0 && isSigType(m) {
		fs = append(fs, finding{where: where, kind: "signature manifest", source: source, problem: "has no signature layer"})
	}
	return fs, nil
}

func isSigType(m ociManifest) bool {
	for _, t := range []string{m.ArtifactType, string(m.Config.MediaType)} {
		switch t {
		case MediaTypeSimpleSigning, ArtifactTypeCosignSig, MediaTypeBundleV03, mediaTypeBundleV03Param:
			return true
		}
	}
	return false
}

// fetchBlob reads one blob of at most limit bytes and checks its digest.
func (c *Checker) fetchBlob(ctx context.Context, p *remote.Puller, d v1.Descriptor, limit int64) ([]byte, error) {
	if d.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("blob %s: unsupported digest algorithm", d.Digest)
	}
	l, err := p.Layer(ctx, c.repo.Digest(d.Digest.String()))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("blob %s: over %d bytes", d.Digest, limit)
	}
	if sha256Hex(b) != d.Digest.Hex {
		return nil, fmt.Errorf("blob %s: content does not match its digest", d.Digest)
	}
	return b, nil
}

// imageVersion reads org.opencontainers.image.version from the image
// manifest's annotations, then from the image config's labels.
func imageVersion(img *remote.Descriptor) (string, error) {
	if v := manifestVersion(img.Manifest); v != "" {
		return v, nil
	}
	switch img.MediaType {
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
	default:
		return "", nil
	}
	i, err := img.Image()
	if err != nil {
		return "", err
	}
	cf, err := i.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("image config: %w", err)
	}
	return cf.Config.Labels[AnnotationVersion], nil
}

// manifestVersion returns the version annotation of a manifest or index.
func manifestVersion(raw []byte) string {
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	return m.Annotations[AnnotationVersion]
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// regErr renders a registry error for a Reason: one line, bounded.
func regErr(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	return truncate(s, 300)
}

// sha256Hex is the hex SHA-256 of b.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
