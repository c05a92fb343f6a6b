package agent

import (
	"context"
	"crypto/rand"
	"fmt"
	"reflect"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/auth"
	"github.com/stellaops/signer-agent/internal/config"
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
func (a *Agent) verifierFor(ctx context.Context, cfg *config.Config, prev *snapshot) (*auth.Verifier, error) {
	if prev != nil && prev.auth != nil && reflect.DeepEqual(settingsOf(prev.cfg), settingsOf(cfg)) {
		return prev.auth, nil
	}
	var old *auth.Verifier
	if prev != nil {
		old = prev.auth
	}
	return a.newVerifier(ctx, cfg, old)
}

func newNonceKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}
