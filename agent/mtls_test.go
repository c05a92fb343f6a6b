package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// testCA issues certificates for the mTLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: k, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) issue(t *testing.T, cn string, server bool) tls.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: leaf}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMTLSListener: callers on other hosts use TLS 1.3 with client
// certificates and tokens bound to them (cnf.x5t#S256, RFC 8705).
func TestMTLSListener(t *testing.T) {
	ca := newCA(t, "clients")
	other := newCA(t, "strangers")
	dir := harness.ShortTempDir(t)
	srv := ca.issue(t, "signer-agent", true)
	writePEM(t, filepath.Join(dir, "server.pem"), "CERTIFICATE", srv.Certificate[0])
	kd, _ := x509.MarshalECPrivateKey(srv.PrivateKey.(*ecdsa.PrivateKey))
	writePEM(t, filepath.Join(dir, "server.key"), "EC PRIVATE KEY", kd)
	os.WriteFile(filepath.Join(dir, "clients.pem"), ca.pem, 0o600)

	h := harness.StartAgent(t, harness.Options{Dir: dir, Edit: func(c *config.Config) {
		c.Listen.TCP = config.TCP{Address: "127.0.0.1:0", CertFile: "server.pem", KeyFile: "server.key", ClientCAFile: "clients.pem"}
	}})
	if h.TCPAddr == "" {
		t.Fatal("no TCP listener")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	alice := ca.issue(t, "scanner-alice", false)
	bob := ca.issue(t, "scanner-bob", false)
	mallory := other.issue(t, "mallory", false)

	tlsClient := func(cert *tls.Certificate, bearer string) *client.Client {
		return mtlsClient(h, roots, cert, bearer)
	}
	iss := h.DevIssuer(t)
	tokenFor := func(cnf map[string]any) string {
		dk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		c := harness.StandardClaims(t, dk)
		c["cnf"] = cnf
		return harness.SignToken(t, iss.Key, jose.ES256, iss.KeyID, c)
	}
	x5t := func(c tls.Certificate) string {
		sum := sha256.Sum256(c.Leaf.Raw)
		return base64URL(sum[:])
	}
	aliceTok := tokenFor(map[string]any{"x5t#S256": x5t(alice)})
	ctx := context.Background()

	t.Run("bound token and certificate sign", func(t *testing.T) {
		res, err := tlsClient(&alice, aliceTok).SignDSSE(ctx, signRequest())
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Bundles) != 1 {
			t.Fatal("no bundle")
		}
	})
	for _, c := range []struct {
		name string
		cert *tls.Certificate
		tok  string
	}{
		{"token bound to another certificate", &bob, aliceTok},
		{"DPoP-bound token on the TCP listener", &alice, tokenFor(map[string]any{"jkt": "AAAA"})},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(h.Signed())
			_, err := tlsClient(c.cert, c.tok).SignDSSE(ctx, signRequest())
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Code != proto.CodeInvalidToken || ce.Status != 401 ||
				!strings.Contains(ce.Header.Get("WWW-Authenticate"), "invalid_token") {
				t.Fatalf("got %v", err)
			}
			if len(h.Signed()) != before {
				t.Fatal("signed")
			}
		})
	}
	for _, c := range []struct {
		name string
		cert *tls.Certificate
	}{{"no client certificate", nil}, {"certificate from another CA", &mallory}} {
		t.Run(c.name, func(t *testing.T) {
			before := len(h.Signed())
			_, err := tlsClient(c.cert, aliceTok).SignDSSE(ctx, signRequest())
			var ce *client.Error
			if err == nil || errors.As(err, &ce) {
				t.Fatalf("handshake should fail, got %v", err)
			}
			if len(h.Signed()) != before {
				t.Fatal("signed")
			}
		})
	}
	t.Run("certificate-bound token on the Unix socket", func(t *testing.T) {
		cl := &client.Client{Socket: h.APISock, Token: client.StaticToken(aliceTok), DPoPKey: h.Creds.Key}
		_, err := cl.SignDSSE(ctx, signRequest())
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 401 {
			t.Fatalf("got %v", err)
		}
	})
}

// mtlsClient is a client of h's TCP listener trusting roots, presenting
// cert (none when nil) and sending bearer as a Bearer token, with h's PoE
// and scanner image digest.
func mtlsClient(h *harness.Agent, roots *x509.CertPool, cert *tls.Certificate, bearer string) *client.Client {
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &client.Client{
		PoE:                &proto.PoE{Format: "jwt", Value: h.Creds.PoE},
		ScannerImageDigest: h.Creds.ScannerImageDigest,
		Dial: func(ctx context.Context) (net.Conn, error) {
			d := tls.Dialer{Config: cfg}
			return d.DialContext(ctx, "tcp", h.TCPAddr)
		},
		Authorize: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+bearer)
			return nil
		},
	}
}
