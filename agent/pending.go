package agent

import (
	"context"

	"go.uber.org/zap"
)

// retryPendingKeys tries the backends of pending keys again every
// a.keyRetry; once one answers it reloads the configuration, which opens
// the key (and lists it in GET /keys, and makes it sign).
func (a *Agent) retryPendingKeys(ctx context.Context) {
	if a.pendingKeyAnswers(ctx) {
		_ = a.reload(ctx) // logs and reports its own failure
	}
}

// pendingKeyAnswers reports whether a pending key of the running
// configuration opens now.
func (a *Agent) pendingKeyAnswers(ctx context.Context) bool {
	for _, e := range a.snap.Load().keys {
		if e.pending == nil {
			continue
		}
		octx, cancel := context.WithTimeout(ctx, keyOpenTimeout)
		k, err := a.opener.Open(octx, e.cfg.URI)
		cancel()
		if err == nil {
			_ = k.Close()
			a.log.Info("a pending key's backend answers; reloading to open it", zap.String("key", e.cfg.ID))
			return true
		}
		a.log.Debug("pending key still unavailable", zap.String("key", e.cfg.ID), zap.Error(err))
	}
	return false
}
