package agent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/keyless"
	"github.com/stellaops/signer-agent/proto"
)

// signKeyless signs rc.statement keylessly (SPEC §8.1): an ephemeral key
// certified by Fulcio for the agent's own identity, its signature
// timestamped by the TSA, first; then one signature per key rc.keys names
// (multi-signature, all or nothing). The outcome is counted, noted for
// readiness and, on success, completes the audit record's keyless entry
// (the ephemeral key's fingerprint).
func (a *Agent) signKeyless(ctx context.Context, rc *requestContext) (*attest.Result, error) {
	for _, k := range rc.keys {
		if k.pending != nil {
			// Do not ask Fulcio for a certificate nothing will use.
			return nil, k.pending
		}
	}
	t0 := time.Now()
	res, err := a.signKeylessNow(ctx, rc)
	ok := err == nil
	a.metrics.Sign(config.KeylessKeyID, keyless.Source, time.Since(t0), ok)
	for _, k := range rc.keys {
		a.metrics.Sign(k.cfg.ID, k.source, time.Since(t0), ok)
	}
	var kerr *keyless.Error
	switch {
	case ok:
		rc.keyless.note(nil, a.now())
		for i, id := range rc.rec.KeyIDs {
			if id == config.KeylessKeyID && i < len(rc.rec.KeyFingerprints) && len(res.SigningIdentity) > 0 {
				rc.rec.KeyFingerprints[i] = hintFingerprint(res.SigningIdentity[0].PublicKeyHint)
			}
		}
	case errors.As(err, &kerr):
		// A keyless failure (not a keyful key's, in a multi-signature).
		a.metrics.KeylessFailure(keylessCause(err))
		rc.keyless.note(err, a.now())
	}
	return res, err
}

func (a *Agent) signKeylessNow(ctx context.Context, rc *requestContext) (*attest.Result, error) {
	sg, release, err := rc.keyless.signer.ForRequest(ctx, config.KeylessKeyID)
	if err != nil {
		return nil, err
	}
	defer release()
	signers := make([]attest.Signer, 0, 1+len(rc.keys))
	signers = append(signers, sg)
	for _, k := range rc.keys {
		signers = append(signers, k.signer())
	}
	return attest.Sign(ctx, rc.statement, signers)
}

// keylessFallback returns the key that signs instead when keyless
// signing failed with err, and notes the switch (log, metric, audit
// reason, the record's key): the tenant's fallbackKey, when the tenant's
// policy is allowed (never required), the request named no keys, the
// keyless backend (Fulcio, the TSA, the identity token) is what failed,
// and the fallback key can sign now. Nil: the request fails.
func (a *Agent) keylessFallback(rc *requestContext, err error) *keyEntry {
	if len(rc.keys) > 0 || !errors.Is(err, keys.ErrBackendUnavailable) || keyless.RetryAfter(err) == 0 {
		return nil
	}
	t := rc.snap.cfg.Tenant(rc.tenant)
	if t.KeylessPolicy() != config.KeylessAllowed || t.FallbackKey == "" {
		return nil
	}
	fb, ok := rc.snap.keys[t.FallbackKey]
	if !ok || !fb.serves(rc.tenant) || fb.usable(a.now()) != "" || fb.pending != nil {
		return nil
	}
	cause := keylessCause(err)
	a.log.Warn("keyless signing failed; signing with the tenant's fallback key",
		zap.String("requestId", rc.id), zap.String("tenant", rc.tenant), zap.String("cause", cause),
		zap.String("fallback", fb.cfg.ID), zap.Error(err))
	a.metrics.Fallback(rc.tenant, config.KeylessKeyID, fb.cfg.ID)
	rc.rec.Reason = fmt.Sprintf("fallback from keyless (%s) to key %q: %v", cause, fb.cfg.ID, err)
	rc.keyless = nil
	rc.keys = []*keyEntry{fb}
	rc.rec.KeyIDs, rc.rec.KeySources, rc.rec.KeyFingerprints = []string{fb.cfg.ID}, []string{fb.source}, []string{fb.fingerprint}
	return fb
}

// hintFingerprint turns a publicKeyHint (base64 of the PKIX key's
// SHA-256) into the audit record's fingerprint form, "sha256:<hex>".
func hintFingerprint(hint string) string {
	sum, err := base64.StdEncoding.DecodeString(hint)
	if err != nil || len(sum) != sha256.Size {
		return ""
	}
	return "sha256:" + hex.EncodeToString(sum)
}

// auditCertificates describes, for the audit record, the certificate of
// each signature made with one: keyless (the Fulcio leaf's identity,
// issuer and fingerprint) and keyful keys with chains.
func auditCertificates(res *attest.Result) []proto.AuditCertificate {
	var out []proto.AuditCertificate
	for _, id := range res.SigningIdentity {
		if len(id.CertificateChain) == 0 {
			continue
		}
		c := proto.AuditCertificate{KeyID: id.KeyID, Identity: id.CertificateIdentity, Issuer: id.CertificateIssuer}
		if blk, _ := pem.Decode([]byte(id.CertificateChain[0])); blk != nil {
			sum := sha256.Sum256(blk.Bytes)
			c.Fingerprint = "sha256:" + hex.EncodeToString(sum[:])
		}
		out = append(out, c)
	}
	return out
}
