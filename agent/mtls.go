package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
)

// socketTCP marks requests from the optional mTLS listener.
const socketTCP socketKind = "tcp"

// gateMTLS checks the certificate binding that replaces DPoP on TCP.
const gateMTLS = "mtls"

// loadTLS builds the mTLS server config of a snapshot (nil when the TCP
// listener is off). Client certificates are required and must chain to
// the configured roots; TLS 1.3 only.
func loadTLS(cfg *config.Config) (*tls.Config, error) {
	t := cfg.Listen.TCP
	if !t.Enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("listen.tcp: server certificate: %w", err)
	}
	pem, err := os.ReadFile(t.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("listen.tcp: client CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, errors.New("listen.tcp: client CA file holds no certificate")
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    roots,
	}, nil
}

// serverTLS is the listener's tls.Config: each handshake takes the TLS
// material of the current snapshot, so reloads rotate certificates and
// roots without a restart.
func (a *Agent) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			s := a.snap.Load()
			if s.tls == nil {
				return nil, errors.New("tcp listener disabled by configuration")
			}
			return s.tls, nil
		},
	}
}

// certThumbprint is base64url(SHA-256(DER)), the cnf.x5t#S256 form.
func certThumbprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// tcpPeerGate requires a verified client certificate on the TCP listener.
func tcpPeerGate(_ context.Context, rc *requestContext) *Denial {
	st := rc.r.TLS
	if st == nil || len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return deny(proto.CodePeerNotAllowed, "a verified client certificate is required", "no verified client certificate")
	}
	rc.clientCert = st.PeerCertificates[0]
	return nil
}

// mtlsGate checks that the token is bound to the presented client
// certificate (RFC 8705 cnf.x5t#S256).
func mtlsGate(_ context.Context, rc *requestContext) *Denial {
	c := rc.claims
	if c.X5TS256 == "" {
		d := deny(proto.CodeInvalidToken, "tokens on the TCP listener must be certificate-bound (cnf.x5t#S256)",
			"token has no cnf.x5t#S256 on the mTLS listener")
		d.Header = wwwAuthenticate(proto.CodeInvalidToken)
		return d
	}
	got := certThumbprint(rc.clientCert)
	if subtle.ConstantTimeCompare([]byte(got), []byte(c.X5TS256)) != 1 {
		d := deny(proto.CodeInvalidToken, "token is bound to another certificate",
			fmt.Sprintf("cnf.x5t#S256 does not match client certificate %q", rc.clientCert.Subject.CommonName))
		d.Header = wwwAuthenticate(proto.CodeInvalidToken)
		return d
	}
	return nil
}
