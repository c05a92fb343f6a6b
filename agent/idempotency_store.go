package agent

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/idempotency"
)

// confirmSlack widens the audit scan that confirms journaled answers: an
// answer's record is timed a little before the answer is journaled, and
// clocks step.
const confirmSlack = 5 * time.Minute

// openIdempotency opens the idempotency store (SPEC §4.6) with its journal
// in idempotency.dir. An answer comes back from the journal only when
// every audit record it rests on is in the audit log (the journal is
// written before the audit record, so an answer whose record never became
// durable was never sent). It needs the audit log open.
func (a *Agent) openIdempotency(cfg *config.Config) (*idempotency.Store, error) {
	ic := cfg.Idempotency
	s, err := idempotency.Open(idempotency.Config{
		Dir: ic.Dir, Window: ic.Window, MaxEntries: ic.MaxEntries, MaxBytes: ic.MaxBytes, Now: a.now,
		Confirm: func(ids map[string]bool) error {
			f := audit.Filter{Since: a.now().Add(-ic.Window - confirmSlack)}
			return a.auditor.Query(f, func(r audit.Record) error {
				if _, ok := ids[r.AuditID]; ok {
					ids[r.AuditID] = true
				}
				return nil
			})
		},
	})
	if err != nil {
		return nil, fmt.Errorf("idempotency: %w", err)
	}
	if st := s.Stats(); st.Loaded+st.Dropped > 0 {
		a.log.Info("idempotent answers restored from the journal",
			zap.Int("restored", st.Loaded), zap.Int("dropped", st.Dropped), zap.Duration("window", ic.Window))
	}
	return s, nil
}

// warnIdempotencyChange notes, on a reload, that the idempotency settings
// (read at start, like the quota store's) did not change.
func (a *Agent) warnIdempotencyChange(old, next *config.Config) {
	if old.Idempotency != next.Idempotency {
		a.log.Warn("idempotency settings changed; they apply at the next start")
	}
}
