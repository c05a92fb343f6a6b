package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// Progress display for hashing large trees: one line on stderr, redrawn
// with "\r" a few times a second, only when stderr is a terminal (or with
// --progress always) and the tree is large. It never goes to stdout, so
// the command's output stays parseable.

// Thresholds above which --progress auto shows progress on a terminal.
const (
	progressMinFiles = 1000
	progressMinBytes = 256 << 20
	progressInterval = 200 * time.Millisecond
)

// progress counts hashed files and bytes; a nil *progress counts nothing.
type progress struct {
	w                      io.Writer
	label                  string
	totalFiles, totalBytes int64
	files, bytes           atomic.Int64

	stop chan struct{}
	done sync.WaitGroup
}

// newProgress starts a display for mode ("auto", "always" or "never") or
// returns nil when none is shown. Stop it with finish.
func newProgress(mode string, stderr io.Writer, label string, files int, bytes int64) *progress {
	switch mode {
	case "always":
	case "auto":
		if !isTerminal(stderr) || (files < progressMinFiles && bytes < progressMinBytes) {
			return nil
		}
	default:
		return nil
	}
	p := &progress{w: stderr, label: label, totalFiles: int64(files), totalBytes: bytes, stop: make(chan struct{})}
	p.done.Go(func() {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.draw("\r")
			}
		}
	})
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (p *progress) add(n int64) {
	if p != nil {
		p.bytes.Add(n)
	}
}

func (p *progress) fileDone() {
	if p != nil {
		p.files.Add(1)
	}
}

// finish stops the display, draws the final state and ends the line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	close(p.stop)
	p.done.Wait()
	p.draw("\r")
	fmt.Fprintln(p.w)
}

func (p *progress) draw(prefix string) {
	files, bytes := p.files.Load(), p.bytes.Load()
	pct := 100.0
	if p.totalBytes > 0 {
		pct = 100 * float64(bytes) / float64(p.totalBytes)
	}
	fmt.Fprintf(p.w, "%s%s %d/%d files, %.1f/%.1f MiB (%3.0f%%)", prefix, p.label, files, p.totalFiles,
		float64(bytes)/(1<<20), float64(p.totalBytes)/(1<<20), min(pct, 100))
}

// progressFlag validates --progress.
func progressFlag(v string) error {
	switch v {
	case "auto", "always", "never":
		return nil
	}
	return usagef("--progress: want auto, always or never")
}
