package release

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/stellaops/signer-agent/internal/clocktest"
)

const testVersion = "1.4.2"

// testRegistry is go-containerregistry's registry with the Referrers API,
// on an httptest server (127.0.0.1), counting requests and optionally
// holding them until released.
type testRegistry struct {
	srv      *httptest.Server
	repo     name.Repository
	requests atomic.Int64
	gate     atomic.Pointer[chan struct{}]
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{}
	h := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		if g := r.gate.Load(); g != nil {
			<-*g
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	repo, err := name.NewRepository(strings.TrimPrefix(r.srv.URL, "http://")+"/stella/scanner", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	r.repo = repo
	return r
}

func (r *testRegistry) opts() []remote.Option {
	return []remote.Option{remote.WithTransport(r.srv.Client().Transport)}
}

// config is a Checker config for this registry.
func (r *testRegistry) config(keys ...crypto.PublicKey) Config {
	return Config{
		Repository: r.repo.String(),
		PublicKeys: keys,
		Transport:  r.srv.Client().Transport,
		Insecure:   true,
	}
}

// pushImage pushes a random scanner image carrying the version annotation
// (none when version is "") and returns its digest and manifest.
func (r *testRegistry) pushImage(t *testing.T, version string) (string, []byte) {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	if version != "" {
		img = mutate.Annotations(img, map[string]string{AnnotationVersion: version}).(v1.Image)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r.repo.Tag("v"+version+"-"+d.Hex[:8]), img, r.opts()...); err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), raw
}

// blob uploads b and returns its descriptor.
func (r *testRegistry) blob(t *testing.T, b []byte, mt types.MediaType) v1.Descriptor {
	t.Helper()
	l := static.NewLayer(b, mt)
	if err := remote.WriteLayer(r.repo, l, r.opts()...); err != nil {
		t.Fatal(err)
	}
	h, _ := l.Digest()
	return v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(b))}
}

type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.b, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// artifact describes a signature manifest to push.
type artifact struct {
	artifactType string          // manifest artifactType field ("" for none)
	configType   types.MediaType // config media type ("" for the OCI empty config)
	layers       []layer
	subject      string // subject digest ("" for none)
	tag          string // push under this tag ("" for by digest)
}

type layer struct {
	data        []byte
	mediaType   types.MediaType
	annotations map[string]string
}

// push pushes the artifact and returns its manifest digest.
func (r *testRegistry) push(t *testing.T, a artifact) string {
	t.Helper()
	cfgType := a.configType
	cfgData := []byte("{}")
	if cfgType == "" {
		cfgType = mediaTypeOCIEmpty
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  a.artifactType,
		Config:        r.blob(t, cfgData, cfgType),
	}
	for _, l := range a.layers {
		d := r.blob(t, l.data, l.mediaType)
		d.Annotations = l.annotations
		m.Layers = append(m.Layers, d)
	}
	if a.subject != "" {
		h, err := v1.NewHash(a.subject)
		if err != nil {
			t.Fatal(err)
		}
		m.Subject = &v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: 1}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	dg := fmt.Sprintf("sha256:%x", sum)
	var ref name.Reference = r.repo.Digest(dg)
	if a.tag != "" {
		ref = r.repo.Tag(a.tag)
	}
	if err := remote.Put(ref, rawManifest{b: raw, mt: types.OCIManifestSchema1}, r.opts()...); err != nil {
		t.Fatal(err)
	}
	return dg
}

// cosignArtifact is a cosign simple-signing signature manifest as a referrer
// of subject (or, with tag set, as the .sig tag image).
func cosignArtifact(payload []byte, sig, subject, tag string) artifact {
	return artifact{
		configType: MediaTypeSimpleSigning,
		layers: []layer{{data: payload, mediaType: MediaTypeSimpleSigning,
			annotations: map[string]string{AnnotationSignature: sig}}},
		subject: subject,
		tag:     tag,
	}
}

func bundleArtifact(b []byte, subject string) artifact {
	return artifact{
		artifactType: MediaTypeBundleV03,
		layers:       []layer{{data: b, mediaType: MediaTypeBundleV03}},
		subject:      subject,
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func hintOf(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	h, err := KeyHint(pub)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// simpleSigningPayload is the cosign payload for an image digest, built by
// hand as cosign does.
func simpleSigningPayload(ref, digest string, optional map[string]string) []byte {
	opt := "null"
	if optional != nil {
		b, _ := json.Marshal(optional)
		opt = string(b)
	}
	return fmt.Appendf(nil, `{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":%s}`,
		ref, digest, opt)
}

// signB64 signs msg with ECDSA P-256 SHA-256 and returns the base64 ASN.1 signature.
func signB64(t testing.TB, k *ecdsa.PrivateKey, msg []byte) string {
	t.Helper()
	sum := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, k, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func signRaw(t testing.TB, k *ecdsa.PrivateKey, msg []byte) []byte {
	t.Helper()
	sig, _ := base64.StdEncoding.DecodeString(signB64(t, k, msg))
	return sig
}

// dsseBundle is a sigstore bundle v0.3 with a DSSE envelope over an in-toto
// statement naming digest, signed by k.
func dsseBundle(t testing.TB, k *ecdsa.PrivateKey, repo, digest string) []byte {
	t.Helper()
	hexPart := strings.TrimPrefix(digest, "sha256:")
	st := fmt.Appendf(nil, `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":%q,"digest":{"sha256":%q}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}`, repo, hexPart)
	const pt = "application/vnd.in-toto+json"
	sig := signRaw(t, k, dsse.PAE(pt, st))
	b := &protobundle.Bundle{
		MediaType: MediaTypeBundleV03,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: hintOf(t, &k.PublicKey)}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: st, PayloadType: pt,
			Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	out, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// messageBundle is a sigstore bundle v0.3 with a message signature over the
// image manifest (whose SHA-256 is digest), signed by k.
func messageBundle(t testing.TB, k *ecdsa.PrivateKey, digest string, manifest []byte) []byte {
	t.Helper()
	sum := sha256.Sum256(manifest)
	if fmt.Sprintf("sha256:%x", sum) != digest {
		t.Fatal("manifest does not match digest")
	}
	sig := signRaw(t, k, manifest)
	b := &protobundle.Bundle{
		MediaType: MediaTypeBundleV03,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: hintOf(t, &k.PublicKey)}},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature:     sig,
		}},
	}
	out, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writePublicPEM(t testing.TB, path string, pub crypto.PublicKey) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, dir, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func newFakeClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
}

func mustNew(t testing.TB, cfg Config) *Checker {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
