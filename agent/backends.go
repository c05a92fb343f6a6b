package agent

import (
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/fido2"
	"github.com/stellaops/signer-agent/internal/keys/kms"
	"github.com/stellaops/signer-agent/internal/keys/pkcs11"
	"github.com/stellaops/signer-agent/internal/keys/tpm"
)

// DefaultBackends is the key backend of each URI scheme beyond file: and
// memory: (SPEC §8). One PKCS#11 opener serves the process: it owns the
// module handles.
func DefaultBackends() map[string]keys.OpenFunc {
	m := map[string]keys.OpenFunc{
		"pkcs11": (&pkcs11.Opener{}).Open,
		"tpm":    tpm.Open,
		"fido2":  fido2.Open,
	}
	for _, s := range kms.Schemes() {
		m[s] = kms.Open
	}
	return m
}
