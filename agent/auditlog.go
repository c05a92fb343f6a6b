package agent

import (
	"context"

	"github.com/stellaops/signer-agent/internal/audit"
)

// AuditLog is what the agent needs of its audit log: *audit.Log in
// production, *audit.Memory in tests. Every decision is appended before
// its response is written; the admin socket queries, rotates and exports
// it; readiness asks whether it can take a record.
type AuditLog interface {
	// Append makes r durable (setting its id and seq) or fails; nothing is
	// signed or changed unaudited.
	Append(ctx context.Context, r *audit.Record) error
	// AppendBatch makes the records of one batch durable together (one
	// group commit) and returns how many, from the first, are durable:
	// len(rs) and nil, or fewer and an error.
	AppendBatch(ctx context.Context, rs []*audit.Record) (int, error)
	// Query streams the records matching f, oldest first.
	Query(f audit.Filter, fn func(audit.Record) error) error
	// Rotate closes the active segment.
	Rotate(ctx context.Context) error
	// Export copies closed segments not yet exported into dir.
	Export(ctx context.Context, dir string, upTo uint64) (*audit.Manifest, error)
	// Prune applies retention, returning the segments it removed.
	Prune() ([]string, error)
	// Ready is nil when a record can be made durable now.
	Ready() error
	Close() error
}

var (
	_ AuditLog = (*audit.Log)(nil)
	_ AuditLog = (*audit.Memory)(nil)
)
