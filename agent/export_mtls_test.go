package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestSignExportMTLS: the TCP listener serves POST /sign/export with a
// certificate-bound token (the mtls gate in DPoP's place): a bound token
// and its certificate sign an export; a token bound to another
// certificate is refused with nothing signed.
func TestSignExportMTLS(t *testing.T) {
	ca := newCA(t, "clients")
	dir := harness.ShortTempDir(t)
	srv := ca.issue(t, "signer-agent", true)
	writePEM(t, filepath.Join(dir, "server.pem"), "CERTIFICATE", srv.Certificate[0])
	kd, _ := x509.MarshalECPrivateKey(srv.PrivateKey.(*ecdsa.PrivateKey))
	writePEM(t, filepath.Join(dir, "server.key"), "EC PRIVATE KEY", kd)
	if err := os.WriteFile(filepath.Join(dir, "clients.pem"), ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	h := harness.StartAgent(t, harness.Options{Dir: dir, Edit: func(c *config.Config) {
		c.Listen.TCP = config.TCP{Address: "127.0.0.1:0", CertFile: "server.pem", KeyFile: "server.key", ClientCAFile: "clients.pem"}
	}})
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	alice := ca.issue(t, "exporter-alice", false)
	bob := ca.issue(t, "exporter-bob", false)
	iss := h.DevIssuer(t)
	dk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	claims := harness.StandardClaims(t, dk)
	sum := sha256.Sum256(alice.Leaf.Raw)
	claims["cnf"] = map[string]any{"x5t#S256": base64URL(sum[:])}
	aliceTok := harness.SignToken(t, iss.Key, jose.ES256, iss.KeyID, claims)
	tlsClient := func(cert tls.Certificate) *client.Client {
		return mtlsClient(h, roots, &cert, aliceTok)
	}
	ctx := context.Background()
	res, err := tlsClient(alice).SignExport(ctx, exportRequest(3))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Bundles) != 1 || len(res.Manifest) == 0 || res.ManifestDigest == "" {
		t.Fatalf("response %+v", res)
	}
	if r := h.Signed(); len(r) != 1 || r[0].Route != proto.PathSignExport || r[0].ManifestDigest != res.ManifestDigest {
		t.Fatalf("allow records %+v", r)
	}
	_, err = tlsClient(bob).SignExport(ctx, exportRequest(3))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != proto.CodeInvalidToken || ce.Status != 401 {
		t.Fatalf("token bound to another certificate: %v", err)
	}
	if len(h.Signed()) != 1 {
		t.Fatal("signed with a token bound to another certificate")
	}
}
