package agent

import (
	"context"
	"fmt"
	"sort"

	"github.com/stellaops/signer-agent/internal/audit"
	"go.uber.org/zap"
)

// Gate of the records that note a configuration load.
const gateLoad = "load"

// loadRecord is the notice record of a configuration put in force (at
// start or by a reload): the config file's digest and every key's id,
// source and fingerprint (a pending key's fingerprint is unknown: "").
// A different private key swapped in under the same id shows as a new
// fingerprint.
func (a *Agent) loadRecord(s *snapshot, what string) audit.Record {
	ids := make([]string, 0, len(s.keys))
	for id := range s.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	r := audit.Record{
		Time: a.now().UTC(), RequestID: "config-" + what, Route: "",
		Decision: audit.Notice, Gate: gateLoad, ConfigDigest: s.cfg.Digest(),
		Reason: fmt.Sprintf("configuration %s: %s", what, s.cfg.Path()),
	}
	for _, id := range ids {
		k := s.keys[id]
		r.KeyIDs = append(r.KeyIDs, id)
		r.KeySources = append(r.KeySources, k.source)
		r.KeyFingerprints = append(r.KeyFingerprints, k.fingerprint)
	}
	return r
}

// auditLoad appends the load record of s; a configuration that cannot be
// audited is not put in force.
func (a *Agent) auditLoad(ctx context.Context, s *snapshot, what string) error {
	r := a.loadRecord(s, what)
	if err := a.auditor.Append(ctx, &r); err != nil {
		return fmt.Errorf("the %s could not be audited: %w", what, err)
	}
	return nil
}

// auditRefusedLoad notes a reload that was refused (the running
// configuration stays); a failure to record it is logged.
func (a *Agent) auditRefusedLoad(ctx context.Context, cause error) {
	r := audit.Record{
		Time: a.now().UTC(), RequestID: "config-reload", Decision: audit.Notice, Gate: gateLoad,
		Reason: "configuration reload refused, the running one stays: " + cause.Error(),
	}
	if err := a.auditor.Append(ctx, &r); err != nil {
		a.log.Error("audit append failed for a refused reload", zap.Error(err))
	}
}
