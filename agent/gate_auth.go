package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/stellaops/signer-agent/internal/auth"
	"github.com/stellaops/signer-agent/proto"
)

// optokGate verifies the OpTok (SPEC §1 step 2) and takes the tenant from
// its tid.
func (a *Agent) optokGate(ctx context.Context, rc *requestContext) *Denial {
	hdr := rc.r.Header.Get(proto.HeaderAuthorization)
	var tok string
	if b, ok := strings.CutPrefix(hdr, "Bearer "); ok && rc.socket == socketTCP {
		// RFC 8705: certificate-bound tokens travel as Bearer; the binding
		// is checked by the mtls gate.
		tok = strings.TrimSpace(b)
	} else {
		var err error
		if tok, err = auth.ParseAuthorization(hdr); err != nil {
			return authDenial(err)
		}
	}
	c, err := rc.snap.auth.VerifyToken(ctx, tok)
	if err != nil {
		return authDenial(err)
	}
	rc.token, rc.claims = tok, c
	rc.rec.TokenSubject = c.Subject
	rc.rec.TokenIssuer = c.Issuer
	rc.rec.Installation = c.Installation
	rc.rec.Tenant = c.Tenant
	if c.JTI != "" {
		sum := sha256.Sum256([]byte(c.JTI))
		rc.rec.TokenJTIHash = "sha256:" + hex.EncodeToString(sum[:])
	}
	if rc.snap.cfg.Tenant(c.Tenant) == nil {
		return deny(proto.CodeTenantMismatch, "this agent does not serve the token's tenant",
			fmt.Sprintf("tenant %q is not configured", c.Tenant))
	}
	rc.tenant = c.Tenant
	return nil
}

// dpopGate checks the DPoP proof that binds the token to the caller's key
// (SPEC §1 step 3).
func (a *Agent) dpopGate(ctx context.Context, rc *requestContext) *Denial {
	proofs := rc.r.Header.Values(proto.HeaderDPoP)
	if len(proofs) != 1 {
		d := deny(proto.CodeInvalidDPoPProof, "exactly one DPoP proof header is required",
			fmt.Sprintf("%d DPoP headers", len(proofs)))
		d.Header = wwwAuthenticate(proto.CodeInvalidDPoPProof)
		return d
	}
	if err := rc.snap.auth.VerifyDPoP(ctx, proofs[0], rc.r.Method, rc.r.URL.Path, rc.claims, rc.token); err != nil {
		return authDenial(err)
	}
	return nil
}
