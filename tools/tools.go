//go:build tools

// Package tools pins the command-line tools the tests run (cosign), so that
// `make tools` builds exactly these versions from the module proxy.
package tools

import (
	_ "github.com/sigstore/cosign/v3/cmd/cosign"
)
