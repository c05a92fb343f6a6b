package agent

import (
	"context"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/fswatch"
)

// startWatcher watches the files the config names; it is set up before
// READY so no change after readiness is missed. Nil when watching is
// unavailable (logged).
func (a *Agent) startWatcher() *fswatch.Watcher {
	w, err := fswatch.New()
	if err != nil {
		a.log.Warn("file watching disabled", zap.Error(err))
		return nil
	}
	if err := w.SetFiles(a.Config().WatchedFiles()); err != nil {
		a.log.Warn("watching config files", zap.Error(err))
	}
	return w
}

// watchFiles is the task that reloads when a file the config names
// changes; it closes the watcher when it returns.
func (a *Agent) watchFiles(w *fswatch.Watcher) task {
	return func(ctx context.Context) error {
		defer w.Close()
		w.Run(ctx, func() {
			a.log.Info("watched file changed; reloading")
			_ = a.reload(ctx)
			if err := w.SetFiles(a.Config().WatchedFiles()); err != nil {
				a.log.Warn("watching config files", zap.Error(err))
			}
		}, func(err error) { a.log.Warn("file watcher", zap.Error(err)) })
		return nil
	}
}

// reloadOnSignals is the task that reloads on every value of the
// configured signal channel (SIGHUP under systemd's ExecReload).
func (a *Agent) reloadOnSignals(ctx context.Context) error {
	if a.reloadSignals == nil {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.reloadSignals:
			_ = a.reload(ctx)
		}
	}
}
