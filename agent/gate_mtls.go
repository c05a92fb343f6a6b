package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"fmt"

	"github.com/stellaops/signer-agent/proto"
)

// certThumbprint is base64url(SHA-256(DER)), the cnf.x5t#S256 form.
func certThumbprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
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
