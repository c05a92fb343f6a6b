//go:build tools

// Package nfpm pins nfpm, the .deb builder `make dist` runs, in a module of
// its own so that its dependencies never move the versions cosign is built
// with (tools/go.mod).
package nfpm

import (
	_ "github.com/goreleaser/nfpm/v2/cmd/nfpm"
)
