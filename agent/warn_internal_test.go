package agent

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/keys"
)

// TestWarnKeys: a load warns about each pending key and each PKCS#11 key
// whose PIN sits in the configuration (without logging the PIN).
func TestWarnKeys(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	a := &Agent{log: zap.New(core), keyRetry: DefaultKeyRetryInterval}
	const pin = "8231-user-pin"
	a.warnKeys(map[string]*keyEntry{
		"inline": {cfg: config.Key{ID: "inline", URI: "pkcs11:token=t;object=k?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=" + pin}, source: "pkcs11"},
		"file":   {cfg: config.Key{ID: "file", URI: "pkcs11:token=t;object=k?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pin"}, source: "pkcs11"},
		"down":   {cfg: config.Key{ID: "down", URI: "tpm:/k.tpmkey"}, source: "tpm", pending: errors.Join(keys.ErrBackendUnavailable)},
	})
	got := map[string]string{}
	for _, e := range logs.All() {
		got[e.ContextMap()["key"].(string)] = e.Message
		for _, f := range e.Context {
			if strings.Contains(f.String, pin) || strings.Contains(e.Message, pin) {
				t.Errorf("a warning carries the PIN: %+v", e)
			}
		}
	}
	if len(got) != 2 || !strings.Contains(got["inline"], "pin-value") || !strings.Contains(got["down"], "unavailable") {
		t.Errorf("warnings: %v", got)
	}
}
