//go:build fido2 && cgo

package fido2

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"slices"

	libfido2 "github.com/keys-pub/go-libfido2"

	"github.com/stellaops/signer-agent/internal/keys"
)

const deviceSupport = true

// device is a FIDO2 authenticator reached through libfido2.
type device struct {
	dev   *libfido2.Device
	path  string
	label string
}

// OpenDevice opens the FIDO2 device at path (a hidraw device such as
// /dev/hidraw3); with path "", the one SIGNER_AGENT_FIDO2_DEVICE names, or
// else the first device libfido2 finds. It checks that the device speaks
// FIDO2 and supports the hmac-secret extension.
func OpenDevice(path string) (Authenticator, error) {
	if path == "" {
		path = os.Getenv(DeviceEnv)
	}
	locs, err := libfido2.DeviceLocations()
	if err != nil && path == "" {
		return nil, fmt.Errorf("%w: list devices: %v", ErrUnavailable, err)
	}
	label := ""
	for _, l := range locs {
		if path == "" || l.Path == path {
			path, label = l.Path, l.Product
			break
		}
	}
	if path == "" {
		return nil, fmt.Errorf("%w: no FIDO2 device found (set %s)", ErrUnavailable, DeviceEnv)
	}
	if label == "" {
		label = path
	}
	dev, err := libfido2.NewDevice(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, path, err)
	}
	info, err := dev.Info()
	if err != nil {
		return nil, fmt.Errorf("fido2: %s: device info: %w: %w", path, keys.ErrBackendUnavailable, err)
	}
	if !slices.Contains(info.Extensions, string(libfido2.HMACSecretExtension)) {
		return nil, fmt.Errorf("fido2: %s does not support the hmac-secret extension", path)
	}
	return &device{dev: dev, path: path, label: label}, nil
}

func (d *device) Label() string { return d.label }

// uvOption asks the authenticator for built-in user verification only when
// no PIN is given: with a PIN, the PIN performs it (and libfido2 refuses
// both).
func uvOption(requireUV bool, pin string) libfido2.OptionValue {
	if requireUV && pin == "" {
		return libfido2.True
	}
	return libfido2.Default
}

func clientDataHash() ([]byte, error) {
	// Nothing verifies the attestation or assertion signatures (the
	// hmac-secret output is what matters: a wrong one does not decrypt),
	// so the client data hash is only a random challenge.
	cdh := make([]byte, 32)
	_, err := rand.Read(cdh)
	return cdh, err
}

func (d *device) MakeCredential(rpID string, userID []byte, pin string, requireUV bool) ([]byte, error) {
	cdh, err := clientDataHash()
	if err != nil {
		return nil, err
	}
	att, err := d.dev.MakeCredential(cdh,
		libfido2.RelyingParty{ID: rpID, Name: "signer-agent"},
		libfido2.User{ID: userID, Name: "signer-agent"},
		libfido2.ES256, pin,
		&libfido2.MakeCredentialOpts{
			Extensions: []libfido2.Extension{libfido2.HMACSecretExtension},
			RK:         libfido2.False,
			UV:         uvOption(requireUV, pin),
		})
	if err != nil {
		return nil, d.mapErr(err)
	}
	if len(att.CredentialID) == 0 {
		return nil, fmt.Errorf("fido2: %s returned no credential id", d.path)
	}
	return att.CredentialID, nil
}

func (d *device) HMACSecret(rpID string, credID, salt []byte, pin string, requireUP, requireUV bool) ([]byte, error) {
	cdh, err := clientDataHash()
	if err != nil {
		return nil, err
	}
	up := libfido2.False
	if requireUP {
		up = libfido2.True
	}
	a, err := d.dev.Assertion(rpID, cdh, [][]byte{credID}, pin, &libfido2.AssertionOpts{
		Extensions: []libfido2.Extension{libfido2.HMACSecretExtension},
		UP:         up,
		UV:         uvOption(requireUV, pin),
		HMACSalt:   salt,
	})
	if err != nil {
		return nil, d.mapErr(err)
	}
	if len(a.HMACSecret) != hmacSecretSize {
		return nil, fmt.Errorf("fido2: %s returned a %d-byte hmac-secret (want %d)", d.path, len(a.HMACSecret), hmacSecretSize)
	}
	return a.HMACSecret, nil
}

// mapErr turns libfido2 errors into this package's; transport failures
// wrap keys.ErrBackendUnavailable.
func (d *device) mapErr(err error) error {
	for _, m := range []struct {
		lib, ours error
	}{
		{libfido2.ErrNoCredentials, ErrNoCredential},
		{libfido2.ErrInvalidCredential, ErrNoCredential},
		{libfido2.ErrPinInvalid, ErrPINInvalid},
		{libfido2.ErrPinRequired, ErrPINRequired},
		{libfido2.ErrPinNotSet, ErrUserVerification},
		{libfido2.ErrActionTimeout, ErrUserPresence},
		{libfido2.ErrUserPresenceRequired, ErrUserPresence},
		{libfido2.ErrUPRequired, ErrUserPresence},
		{libfido2.ErrOperationDenied, ErrUserPresence},
		{libfido2.ErrTX, keys.ErrBackendUnavailable},
		{libfido2.ErrRX, keys.ErrBackendUnavailable},
	} {
		if errors.Is(err, m.lib) {
			return fmt.Errorf("fido2: %s: %w (%v)", d.path, m.ours, err)
		}
	}
	return fmt.Errorf("fido2: %s: %w", d.path, err)
}
