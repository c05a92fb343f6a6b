//go:build !fido2 || !cgo

package fido2

import "fmt"

const deviceSupport = false

// OpenDevice would open a FIDO2 device; this binary was built without the
// fido2 tag (or without cgo), so it always fails with ErrUnavailable.
func OpenDevice(path string) (Authenticator, error) {
	return nil, fmt.Errorf("%w: built without the fido2 tag (rebuild with -tags fido2, CGO_ENABLED=1 and libfido2-dev installed)", ErrUnavailable)
}
