package fido2

import "errors"

// DeviceEnv names the environment variable that selects the FIDO2 device
// (a hidraw path such as /dev/hidraw3); without it OpenDevice("") uses the
// first device found.
const DeviceEnv = "SIGNER_AGENT_FIDO2_DEVICE"

// ErrUnavailable: FIDO2 devices cannot be used (this binary was built
// without the fido2 tag, or no device was found).
var ErrUnavailable = errors.New("fido2 devices unavailable")

// Available reports whether this binary was built with FIDO2 device
// support (the fido2 build tag, with cgo).
func Available() bool { return deviceSupport }
