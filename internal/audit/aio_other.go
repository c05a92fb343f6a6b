//go:build !(linux && (amd64 || arm64))

package audit

import "errors"

// asyncSyncer is Linux-only (see aio_linux.go); elsewhere the Log uses a
// blocking fdatasync.
type asyncSyncer struct{}

var errAIOUnusable = errors.New("linux aio unusable")

func newAsyncSyncer() (*asyncSyncer, error) {
	return nil, errors.New("linux aio is not built for this platform")
}

func (*asyncSyncer) fdatasync(uintptr) error { return errAIOUnusable }

func (*asyncSyncer) Close() error { return nil }

func (*asyncSyncer) failure() string { return "" }
