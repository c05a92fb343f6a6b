//go:build !(linux && (amd64 || arm64))

package aiosync

import "errors"

// Syncer is Linux-only (see aio_linux.go); elsewhere Sync uses a
// blocking fdatasync.
type Syncer struct{}

var ErrUnusable = errors.New("linux aio unusable")

func New() (*Syncer, error) {
	return nil, errors.New("linux aio is not built for this platform")
}

func (*Syncer) Fdatasync(uintptr) error { return ErrUnusable }

func (*Syncer) Close() error { return nil }

func (*Syncer) Failure() string { return "" }
