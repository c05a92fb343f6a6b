// Package fswatch reports changes to a set of files (configuration, key
// files, trust roots) so that the agent can reload them. It watches the
// files' directories through fsnotify, not the files themselves, so that an
// editor or deployment tool replacing a file by atomic rename is seen and a
// file that does not exist yet is picked up when it appears.
package fswatch

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher reports changes to a set of files. It watches their directories,
// not the files, so that editors and deployment tools that replace a file by
// atomic rename are seen, and a file that does not exist yet is picked up
// when it appears. Bursts of events are coalesced (Debounce).
type Watcher struct {
	Debounce time.Duration

	w     *fsnotify.Watcher
	mu    sync.Mutex
	files map[string]bool
	dirs  map[string]bool
}

// DefaultDebounce is the quiet time New sets: a burst of events (an editor
// writing a file in several steps) causes one call.
const DefaultDebounce = 250 * time.Millisecond

// New starts an fsnotify watcher with no files. Close releases it.
func New() (*Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("fsnotify: %w", err)
	}
	return &Watcher{Debounce: DefaultDebounce, w: w, files: map[string]bool{}, dirs: map[string]bool{}}, nil
}

// SetFiles replaces the watched set. When a directory cannot be watched
// (it does not exist yet, say) the others still are, the first error is
// returned, and the next SetFiles tries that directory again.
func (w *Watcher) SetFiles(paths []string) error {
	files := map[string]bool{}
	dirs := map[string]bool{}
	for _, p := range paths {
		p = filepath.Clean(p)
		files[p] = true
		dirs[filepath.Dir(p)] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var firstErr error
	for d := range dirs {
		if !w.dirs[d] {
			if err := w.w.Add(d); err != nil {
				// Not recorded as watched: the next SetFiles retries it.
				delete(dirs, d)
				if firstErr == nil {
					firstErr = fmt.Errorf("watch %s: %w", d, err)
				}
			}
		}
	}
	for d := range w.dirs {
		if !dirs[d] {
			_ = w.w.Remove(d)
		}
	}
	w.files, w.dirs = files, dirs
	return firstErr
}

// Run calls changed (from Run's goroutine) after watched files change, once
// per burst (Debounce), until ctx ends or the watcher is closed. Watcher
// errors are passed to onErr. The caller owns the goroutine running Run and
// joins it; Run returns promptly when ctx ends.
func (w *Watcher) Run(ctx context.Context, changed func(), onErr func(error)) {
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			if !w.watched(ev.Name) {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(w.Debounce)
			} else {
				timer.Reset(w.Debounce)
			}
			fire = timer.C
		case <-fire:
			fire = nil
			changed()
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			if onErr != nil {
				onErr(err)
			}
		}
	}
}

// watched reports whether name is in the watched set.
func (w *Watcher) watched(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.files[filepath.Clean(name)]
}

// Close stops the watcher; a running Run returns.
func (w *Watcher) Close() error { return w.w.Close() }
