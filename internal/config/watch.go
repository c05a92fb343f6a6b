package config

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

// NewWatcher starts an fsnotify watcher with no files.
func NewWatcher() (*Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("fsnotify: %w", err)
	}
	return &Watcher{Debounce: 250 * time.Millisecond, w: w, files: map[string]bool{}, dirs: map[string]bool{}}, nil
}

// SetFiles replaces the watched set.
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
			if err := w.w.Add(d); err != nil && firstErr == nil {
				firstErr = fmt.Errorf("watch %s: %w", d, err)
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

// Run calls changed (from Run's goroutine) after watched files change, until
// ctx ends. Watcher errors are passed to onErr.
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
			w.mu.Lock()
			hit := w.files[filepath.Clean(ev.Name)]
			w.mu.Unlock()
			if !hit {
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

// Close stops the watcher.
func (w *Watcher) Close() error { return w.w.Close() }
