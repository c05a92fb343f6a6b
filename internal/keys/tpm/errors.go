package tpm

import (
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/stellaops/signer-agent/internal/keys"
)

// Errors callers branch on.
var (
	// ErrAuthFailed: the TPM refused the key's auth value. The key then
	// refuses to sign without asking the TPM again, so a wrong auth-file
	// cannot walk the dictionary-attack counter into lockout; fix the file
	// and open the key again.
	ErrAuthFailed = errors.New("TPM refused the key's auth value (wrong auth-file?)")
	// ErrLockout: the TPM is in dictionary-attack lockout and refuses keys
	// that have an auth value until the lockout recovery time has passed or
	// the lockout hierarchy resets it. Errors wrapping it also wrap
	// keys.ErrBackendUnavailable.
	ErrLockout = errors.New("TPM is in dictionary-attack lockout")
)

// classify adds the sentinels callers branch on to an error of a TPM
// operation: transport failures, TPM warnings (the TPM is busy, out of
// memory, testing itself, or locked out) and a TPM that lost its state are
// keys.ErrBackendUnavailable; a refused auth value is ErrAuthFailed.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if isTransport(err) {
		return fmt.Errorf("%w: %w", keys.ErrBackendUnavailable, err)
	}
	var rc tpm2.TPMRC
	if !errors.As(err, &rc) {
		return err
	}
	switch {
	case errors.Is(rc, tpm2.TPMRCAuthFail), errors.Is(rc, tpm2.TPMRCBadAuth):
		return fmt.Errorf("%w: %w", ErrAuthFailed, err)
	case rc == tpm2.TPMRCLockout:
		return fmt.Errorf("%w: %w: %w", keys.ErrBackendUnavailable, ErrLockout, err)
	case rc.IsWarning(), rc == tpm2.TPMRCInitialize, rc == tpm2.TPMRCFailure:
		return fmt.Errorf("%w: %w", keys.ErrBackendUnavailable, err)
	}
	return err
}

// isStaleHandle reports whether the TPM says a handle or session it was
// given does not exist: it lost what was loaded (a reset the connection
// survived), and loading again may help.
func isStaleHandle(err error) bool {
	var rc tpm2.TPMRC
	if !errors.As(err, &rc) {
		return false
	}
	if errors.Is(rc, tpm2.TPMRCHandle) {
		return true
	}
	return rc >= tpm2.TPMRCReferenceH0 && rc <= tpm2.TPMRCReferenceS0+6
}
