package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/keys/keyless"
	"github.com/stellaops/signer-agent/internal/metrics"
)

// keylessBackend is the keyless signer of a configuration (SPEC §8.1)
// and what the agent last saw of it. It is built by buildSnapshot and
// carried over to the next snapshot while its settings (the keyless
// block and the content of the files it reads) do not change, so a
// reload keeps its Fulcio CA chain, its cached identity token and its
// reused certificate; the snapshot that drops it closes it (closeKeys).
type keylessBackend struct {
	signer *keyless.Signer
	// digest identifies the settings it was built from.
	digest string

	mu        sync.Mutex
	lastErr   error     // the last keyless signature's failure, nil after a success
	lastErrAt time.Time // when
}

// keylessFor returns the keyless backend of cfg: prev's when its settings
// did not change, a new one otherwise, nil when keyless is off. Building
// one makes no network call: a Fulcio or TSA outage does not fail a load
// (keyless requests then fail, or fall back, on their own).
func (a *Agent) keylessFor(cfg *config.Config, prev *snapshot) (*keylessBackend, error) {
	if !cfg.Keyless.Enabled() {
		return nil, nil
	}
	d, err := keylessDigest(cfg.Keyless)
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.keyless != nil && prev.keyless.digest == d {
		return prev.keyless, nil
	}
	s, err := keyless.FromConfig(cfg.Keyless)
	if err != nil {
		return nil, err
	}
	return &keylessBackend{signer: s, digest: d}, nil
}

// keylessDigest is SHA-256 over the keyless settings and the content of
// the files they name (chains, client secret): a changed file makes a new
// signer. The identity token file is not part of it: the signer re-reads
// it per request.
func keylessDigest(k config.Keyless) (string, error) {
	h := sha256.New()
	b, err := json.Marshal(k)
	if err != nil {
		return "", fmt.Errorf("keyless: %w", err)
	}
	h.Write(b)
	for _, f := range k.Files() {
		c, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("keyless: %w", err)
		}
		sum := sha256.Sum256(c)
		clear(c)
		fmt.Fprintf(h, "\x00%s\x00%x", f, sum)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// close releases the signer (its reused key, its connections).
func (k *keylessBackend) close() {
	if k != nil {
		_ = k.signer.Close()
	}
}

// note records the outcome of a keyless signature, for readiness.
func (k *keylessBackend) note(err error, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lastErr = err
	if err != nil {
		k.lastErrAt = now
	}
}

// keylessHealthTimeout bounds the readiness probe of the keyless backend.
const keylessHealthTimeout = 2 * time.Second

// health probes the backend (the identity token is fresh, Fulcio's CA is
// known: keyless.Signer.Check) and says what is wrong, "" when nothing
// is: the probe's failure, else the last keyless signature's failure
// (Fulcio or the TSA failing at signing time), if no signature has
// succeeded since.
func (k *keylessBackend) health(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, keylessHealthTimeout)
	defer cancel()
	if err := k.signer.Check(ctx); err != nil {
		return oneLine(err.Error())
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lastErr != nil {
		return "last keyless signature failed at " + k.lastErrAt.UTC().Format(time.RFC3339) + ": " + oneLine(k.lastErr.Error())
	}
	return ""
}

// keylessCause names the cause of a keyless failure for the metrics.
func keylessCause(err error) string {
	switch {
	case errors.Is(err, keyless.ErrFulcioUnavailable):
		return metrics.KeylessFulcio
	case errors.Is(err, keyless.ErrTSAUnavailable):
		return metrics.KeylessTSA
	case errors.Is(err, keyless.ErrIdentityUnavailable):
		return metrics.KeylessIdentity
	}
	return metrics.KeylessOther
}

// keylessReadiness notes the keyless backend's health in checks
// ("keyless"). A keyless outage makes the agent unready only when nothing
// could be signed without it: no active keyful key, or every tenant
// requires keyless. Otherwise keyful tenants are served and the check
// reads "degraded: …" (keyless requests fail with
// signing_backend_unavailable or fall back).
func (a *Agent) keylessReadiness(snap *snapshot, activeKeys int, checks map[string]string, down func(check, why string)) {
	why := snap.keyless.health(context.Background())
	if why == "" {
		checks["keyless"] = "ok"
		return
	}
	keyful := false
	for _, t := range snap.cfg.Tenants {
		if t.KeylessPolicy() != config.KeylessRequired {
			keyful = true
		}
	}
	if activeKeys == 0 || !keyful {
		down("keyless", "unavailable, nothing can be signed: "+why)
		return
	}
	checks["keyless"] = "degraded (keyful signing unaffected): " + why
}
