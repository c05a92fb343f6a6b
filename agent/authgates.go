package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/auth"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
)

// Gate names of the authentication step.
const (
	gateOpTok = "optok"
	gateDPoP  = "dpop"
)

// authSettings is what decides whether a verifier can be kept across a
// reload (keeping it keeps its JWKS cache, token cache and jti replay cache).
type authSettings struct {
	Authority config.Authority
	DPoP      config.DPoP
}

func settingsOf(cfg *config.Config) authSettings {
	return authSettings{Authority: cfg.Authority, DPoP: cfg.DPoP}
}

// newVerifier builds the OpTok/DPoP verifier for a config. The nonce key is
// the agent's, so nonces stay valid across reloads.
func (a *Agent) newVerifier(ctx context.Context, cfg *config.Config, prev *auth.Verifier) (*auth.Verifier, error) {
	au := cfg.Authority
	v, err := auth.New(ctx, auth.Config{
		Issuer:             au.Issuer,
		Audience:           au.Audience,
		RequiredScope:      au.RequiredScope,
		Installation:       au.Installation,
		JWKSFile:           au.JWKSFile,
		Discovery:          au.Discovery,
		Skew:               au.Skew,
		MaxLifetime:        au.MaxLifetime,
		RefetchMinInterval: au.RefetchMinInterval,
		HTUBase:            cfg.DPoP.HTUBase,
		NonceRequired:      cfg.DPoP.NonceIsRequired(),
		NonceWindow:        cfg.DPoP.NonceWindow,
		NonceKey:           a.nonceKey,
		Now:                a.now,
		// Share the jti replay history, so a proof accepted just before a
		// reload cannot be replayed just after it.
		ReplayFrom:  prev,
		ReportError: func(err error) { a.log.Warn("authority keys", zap.Error(err)) },
	})
	if err != nil {
		return nil, fmt.Errorf("authority: %w", err)
	}
	return v, nil
}

// verifierFor reuses prev's verifier when the authentication settings did
// not change.
func (a *Agent) verifierFor(ctx context.Context, cfg *config.Config, prev *snapshot) (*auth.Verifier, bool, error) {
	if prev != nil && prev.auth != nil && reflect.DeepEqual(settingsOf(prev.cfg), settingsOf(cfg)) {
		return prev.auth, true, nil
	}
	var old *auth.Verifier
	if prev != nil {
		old = prev.auth
	}
	v, err := a.newVerifier(ctx, cfg, old)
	return v, false, err
}

func newNonceKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

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

// authDenial maps an auth error to a denial with WWW-Authenticate.
func authDenial(err error) *Denial {
	var ae *auth.Error
	if !errors.As(err, &ae) {
		return &Denial{Code: proto.CodeInvalidToken, Detail: "token could not be verified", Reason: err.Error(),
			Header: wwwAuthenticate(proto.CodeInvalidToken)}
	}
	d := &Denial{Code: ae.Code, Detail: ae.Detail, Reason: ae.Reason}
	if d.Detail == "" {
		d.Detail = ae.Code.Title()
	}
	switch ae.Code.Status() {
	case http.StatusUnauthorized, http.StatusForbidden:
		if ae.Code == proto.CodeTenantMismatch {
			break
		}
		d.Header = wwwAuthenticate(ae.Code)
	}
	return d
}

// wwwAuthenticate is the DPoP challenge (RFC 9449 §7.1) for a code.
func wwwAuthenticate(code proto.Code) http.Header {
	h := http.Header{}
	h.Set(proto.HeaderWWWAuthenticate, fmt.Sprintf(`DPoP error=%q, algs="ES256 EdDSA"`, string(code)))
	return h
}
