package agent

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/keys/pkcs11"
	"github.com/stellaops/signer-agent/internal/keystate"
	"github.com/stellaops/signer-agent/internal/metrics"
	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// keyEntry is an opened key with its configured metadata, or a pending one.
type keyEntry struct {
	cfg config.Key
	// key is nil while the key is pending: pending is why (it wraps
	// keys.ErrBackendUnavailable). Algorithm, hint and PEM are then unknown.
	key       keys.Key
	pending   error
	source    string
	algorithm string
	hint      string
	pubPEM    string
	// fingerprint is "sha256:<hex>" of the PKIX public key (audited with
	// every signature and load).
	fingerprint string
	// reused marks a key carried over from the previous snapshot (its
	// backend stays open when that snapshot retires).
	reused bool
	// revoked is set when the revocation list names the key.
	revoked *keystate.Revoked
	// chain is the key's X.509 chain (DER, leaf first) when it comes with
	// certificates, and leaf its parsed leaf (snapshot_chains.go).
	chain [][]byte
	leaf  *x509.Certificate
}

// usable reports why a key cannot sign now ("" when it can).
func (k *keyEntry) usable(now time.Time) string {
	switch {
	case k.cfg.Status == proto.KeyStatusRevoked:
		return "key is revoked"
	case k.cfg.Status == proto.KeyStatusVerifyOnly:
		return "key is verify-only"
	case k.cfg.NotBefore != nil && now.Before(*k.cfg.NotBefore):
		return "key is not valid yet"
	case k.cfg.NotAfter != nil && now.After(*k.cfg.NotAfter):
		return "key has expired"
	}
	return k.certificateProblem(now)
}

// signer is the attest.Signer of the key: its bundles carry its leaf
// certificate when it has a chain.
func (k *keyEntry) signer() attest.Signer {
	return attest.Signer{ID: k.cfg.ID, Source: k.source, Key: k.key, Chain: k.chain, Hint: k.hint, Algorithm: k.algorithm}
}

func (k *keyEntry) serves(tenant string) bool {
	for _, t := range k.cfg.Tenants {
		if t == tenant {
			return true
		}
	}
	return false
}

func (k *keyEntry) info(defaultFor map[string]bool) proto.KeyInfo {
	ki := proto.KeyInfo{
		ID:            k.cfg.ID,
		Algorithm:     k.algorithm,
		PublicKey:     k.pubPEM,
		PublicKeyHint: k.hint,
		Source:        k.source,
		Status:        k.cfg.Status,
		NotBefore:     k.cfg.NotBefore,
		NotAfter:      k.cfg.NotAfter,
		Tenants:       append([]string{}, k.cfg.Tenants...),
		Default:       defaultFor[k.cfg.ID],
	}
	if len(k.chain) > 0 {
		ki.CertificateChain = attest.ChainPEM(k.chain)
	}
	return ki
}

// openKeys opens every configured key. Keys whose URI is unchanged from prev
// are reused, except file: keys, which are re-read so that a replaced key
// file takes effect on reload. A key whose backend does not answer (the
// token is not there, the TPM or KMS does not respond: errors wrapping
// keys.ErrBackendUnavailable) is pending: it signs nothing — its tenant's
// requests fail with signing_backend_unavailable or go to the tenant's
// fallback key — and the agent tries to open it again (retryPendingKeys).
// Any other error (a bad URI, a wrong PIN, a missing key file) fails the
// load, and every key opened here is closed.
func openKeys(ctx context.Context, op *keys.Opener, cfg *config.Config, prev map[string]*keyEntry) (map[string]*keyEntry, error) {
	byURI := map[string]*keyEntry{}
	for _, e := range prev {
		if e.key != nil {
			byURI[e.cfg.URI] = e
		}
	}
	out := map[string]*keyEntry{}
	closeNew := func() {
		for _, e := range out {
			if e.key != nil && !e.reused {
				_ = e.key.Close()
			}
		}
	}
	for _, kc := range cfg.Keys {
		src := keys.Scheme(kc.URI)
		var k keys.Key
		reused := false
		if old, ok := byURI[kc.URI]; ok && src != "file" {
			k, reused = old.key, true
		} else {
			var err error
			if k, err = op.Open(ctx, kc.URI); err != nil {
				if errors.Is(err, keys.ErrBackendUnavailable) {
					out[kc.ID] = &keyEntry{cfg: kc, source: src, pending: fmt.Errorf("key %q: %w", kc.ID, err)}
					continue
				}
				closeNew()
				return nil, fmt.Errorf("key %q: %w", kc.ID, err)
			}
		}
		e, err := describeKey(kc, k, src)
		if err != nil {
			if !reused {
				_ = k.Close()
			}
			closeNew()
			return nil, fmt.Errorf("key %q: %w", kc.ID, err)
		}
		e.reused = reused
		out[kc.ID] = e
	}
	return out, nil
}

// closeKeys closes the opened keys of ks.
func closeKeys(ks map[string]*keyEntry) {
	for _, e := range ks {
		if e.key != nil {
			_ = e.key.Close()
		}
	}
}

func describeKey(kc config.Key, k keys.Key, src string) (*keyEntry, error) {
	pub := k.Public()
	alg, _, err := keys.Algorithm(pub)
	if err != nil {
		return nil, err
	}
	hint, err := keys.PublicKeyHint(pub)
	if err != nil {
		return nil, err
	}
	pemBytes, err := keys.MarshalPublicKeyPEM(pub)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &keyEntry{cfg: kc, key: k, source: src, algorithm: alg, hint: hint, pubPEM: string(pemBytes),
		fingerprint: "sha256:" + hex.EncodeToString(sum[:])}, nil
}

// errNoDefaultKey is returned when a tenant asks for its default key and
// has none.
var errNoDefaultKey = errors.New("tenant has no default key")

// applyRevocations marks listed keys revoked in a freshly opened key set.
func applyRevocations(ks map[string]*keyEntry, rev map[string]keystate.Revoked) {
	for id, r := range rev {
		if k, ok := ks[id]; ok {
			k.cfg.Status = proto.KeyStatusRevoked
			k.revoked = &r
		}
	}
}

// warnKeys logs the keys of a new configuration that are pending, and
// PKCS#11 keys whose PIN is in the configuration itself.
func (a *Agent) warnKeys(ks map[string]*keyEntry) {
	for _, e := range ks {
		if e.source == "pkcs11" {
			if u, err := pkcs11.ParseURI(e.cfg.URI); err == nil && u.HasPINValue() {
				a.log.Warn("the key's URI carries its PIN (pin-value): anyone who can read the configuration has it; use pin-source=file:… with a 0400 file",
					zap.String("key", e.cfg.ID))
			}
		}
		if e.pending != nil {
			a.log.Warn("key backend unavailable; the key signs nothing until it answers (tried again periodically)",
				zap.String("key", e.cfg.ID), zap.Duration("retryEvery", a.keyRetry), zap.Error(e.pending))
		}
	}
}

// publishKeys exports the signing keys' age and expiry (only keys that can
// sign: verify-only and revoked keys would trip the expiry alerts).
func (a *Agent) publishKeys(s *snapshot) {
	var out []metrics.KeyInfo
	for _, k := range s.keys {
		if k.cfg.Status != proto.KeyStatusActive {
			continue
		}
		ki := metrics.KeyInfo{ID: k.cfg.ID, Source: k.source}
		if k.cfg.NotBefore != nil {
			ki.Created = *k.cfg.NotBefore
		}
		if k.cfg.NotAfter != nil {
			ki.NotAfter = *k.cfg.NotAfter
		}
		out = append(out, ki)
	}
	a.metrics.SetKeyInfo(out)
}
