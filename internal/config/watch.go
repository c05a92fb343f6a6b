package config

import "github.com/stellaops/signer-agent/internal/fswatch"

// Watcher is fswatch.Watcher, kept so that agent/ compiles while it moves
// to package fswatch.
//
// Deprecated: use fswatch.Watcher.
type Watcher = fswatch.Watcher

// NewWatcher is fswatch.New.
//
// Deprecated: use fswatch.New.
func NewWatcher() (*Watcher, error) { return fswatch.New() }
