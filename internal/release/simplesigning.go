package release

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Media types and annotations of cosign signatures and sigstore bundles.
const (
	// MediaTypeSimpleSigning is the layer media type of a cosign
	// simple-signing payload (and the artifactType of such referrers).
	MediaTypeSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	// ArtifactTypeCosignSig is the artifactType cosign gives signature
	// referrers in its OCI 1.1 referrers mode.
	ArtifactTypeCosignSig = "application/vnd.dev.cosign.artifact.sig.v1+json"
	// MediaTypeBundleV03 is the sigstore bundle v0.3 media type, as layer
	// media type and referrer artifactType.
	MediaTypeBundleV03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// mediaTypeBundleV03Param is the parameterised spelling of the same type.
	mediaTypeBundleV03Param = "application/vnd.dev.sigstore.bundle+json;version=0.3"
	// AnnotationSignature carries the base64 signature on a simple-signing layer.
	AnnotationSignature = "dev.cosignproject.cosign/signature"
	// AnnotationVersion is the OCI annotation (and label) naming a release version.
	AnnotationVersion = "org.opencontainers.image.version"

	mediaTypeOCIEmpty = "application/vnd.oci.empty.v1+json"
)

// maxPayload caps a simple-signing payload; cosign's are well under 1 KiB
// plus whatever optional annotations the signer added.
const maxPayload = 256 << 10

// ErrSimpleSigning is wrapped by every simple-signing payload parse failure.
var ErrSimpleSigning = errors.New("not a cosign simple-signing payload")

// SimpleSigning is what a parsed simple-signing payload claims.
type SimpleSigning struct {
	// Digest is critical.image.docker-manifest-digest ("sha256:<hex>").
	Digest string
	// DockerReference is critical.identity.docker-reference (informative).
	DockerReference string
	// Version is optional["org.opencontainers.image.version"] when it is a string.
	Version string
}

// ParseSimpleSigning parses a cosign simple-signing payload (the bytes a
// cosign signature signs). It checks the structure only, not the signature:
// critical.type must be "cosign container image signature", the manifest
// digest must be sha256:<64 lowercase hex>, and nothing may follow the JSON
// object.
func ParseSimpleSigning(b []byte) (SimpleSigning, error) {
	if len(b) > maxPayload {
		return SimpleSigning{}, fmt.Errorf("%w: %d bytes (limit %d)", ErrSimpleSigning, len(b), maxPayload)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var p payload.SimpleContainerImage
	if err := dec.Decode(&p); err != nil {
		return SimpleSigning{}, fmt.Errorf("%w: %v", ErrSimpleSigning, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return SimpleSigning{}, fmt.Errorf("%w: trailing data after the JSON object", ErrSimpleSigning)
	}
	if p.Critical.Type != payload.CosignSignatureType {
		return SimpleSigning{}, fmt.Errorf("%w: critical.type is %q", ErrSimpleSigning, truncate(p.Critical.Type, 64))
	}
	d := p.Critical.Image.DockerManifestDigest
	if err := ValidateDigest(d); err != nil {
		return SimpleSigning{}, fmt.Errorf("%w: critical.image.docker-manifest-digest: %v", ErrSimpleSigning, err)
	}
	out := SimpleSigning{Digest: d, DockerReference: p.Critical.Identity.DockerReference}
	if v, ok := p.Optional[AnnotationVersion].(string); ok {
		out.Version = v
	}
	return out, nil
}

// evalSimpleSigning verifies one cosign signature (sigB64 over payload)
// against the trusted keys and checks that the payload names digest.
func (c *Checker) evalSimpleSigning(where string, pl []byte, sigB64, digest string) finding {
	f := finding{where: where, kind: "cosign signature"}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sigB64))
	if err != nil || len(sig) == 0 {
		f.problem = "is not base64"
		return f
	}
	if len(pl) > maxPayload {
		f.problem = fmt.Sprintf("has a payload of %d bytes, over the %d-byte limit", len(pl), maxPayload)
		return f
	}
	hint := ""
	for _, k := range c.keys {
		for _, v := range k.verifiers {
			if v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(pl)) == nil {
				hint = k.hint
				break
			}
		}
		if hint != "" {
			break
		}
	}
	if hint == "" {
		f.problem = "does not verify with any trusted release key (unknown key or altered payload)"
		return f
	}
	f.keyHint = hint
	ss, err := ParseSimpleSigning(pl)
	if err != nil {
		f.problem = fmt.Sprintf("is signed by trusted key %s, but %v", hint, err)
		return f
	}
	if ss.Digest != digest {
		f.conflict = fmt.Sprintf("is signed by trusted key %s for %s, not for the requested digest", hint, ss.Digest)
		return f
	}
	f.verified = true
	f.version = ss.Version
	return f
}
