package agent

import (
	"bytes"
	"crypto"
	"fmt"
	"net/http"
	"os"
	"reflect"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/entitlement"
	"github.com/stellaops/signer-agent/internal/keys"
)

// entitlementFor reuses prev's checker (and its verdict cache and bypass)
// when the entitlement settings did not change; a new checker inherits the
// bypass in force.
func (a *Agent) entitlementFor(cfg *config.Config, prev *snapshot) (*entitlement.Checker, []byte, error) {
	en := cfg.Entitlement
	var keysPEM []byte
	if en.LicensingKeysFile != "" {
		var err error
		if keysPEM, err = os.ReadFile(en.LicensingKeysFile); err != nil {
			return nil, nil, fmt.Errorf("entitlement.licensingKeysFile: %w", err)
		}
	}
	// Keep the checker (verdict cache, bypass) unless the settings or the
	// licensing keys themselves changed (the file is watched).
	if prev != nil && prev.ent != nil && reflect.DeepEqual(prev.cfg.Entitlement, cfg.Entitlement) && bytes.Equal(prev.entKeys, keysPEM) {
		return prev.ent, keysPEM, nil
	}
	var licensing []crypto.PublicKey
	if keysPEM != nil {
		var err error
		if licensing, err = keys.ParsePublicKeysPEM(keysPEM); err != nil {
			return nil, nil, fmt.Errorf("entitlement.licensingKeysFile: %w", err)
		}
	}
	c, err := entitlement.New(entitlement.Config{
		LicensingKeys: licensing, Issuer: en.Issuer, IntrospectionURL: en.IntrospectionURL,
		HTTPClient: &http.Client{}, Timeout: en.Timeout, Retries: en.Retries,
		CacheTTL: en.CacheTTL, Grace: en.Grace, Now: a.now,
	})
	if err != nil {
		return nil, nil, err
	}
	if prev != nil && prev.ent != nil {
		c.SetBypass(prev.ent.ActiveBypass())
	}
	return c, keysPEM, nil
}
