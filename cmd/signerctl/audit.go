package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/proto"
)

const defaultAuditDir = "/var/lib/signer-agent/audit"

// cmdAuditVerify is `signerctl audit verify`: offline, on the log files.
func (a *app) cmdAuditVerify(_ context.Context, args []string) error {
	fs := a.flagSet("audit verify", "audit verify [--dir DIR] [--json]", auditVerifyHelp)
	dir := fs.String("dir", defaultAuditDir, "audit log `DIR`")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.parse(args); err != nil {
		return err
	}
	rep, err := audit.Verify(*dir)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := printJSON(a.stdout, rep); err != nil {
			return err
		}
	} else {
		if rep.OK {
			fmt.Fprintf(a.stdout, "audit chain OK: %d records, seq %d..%d, last hash %s\n", rep.Records, rep.FirstSeq, rep.LastSeq, rep.LastHash)
		}
		printRepairs(a.stdout, rep)
	}
	if !rep.OK {
		return fmt.Errorf("audit chain broken: %v", rep.Break)
	}
	return nil
}

// cmdAuditQuery is `signerctl audit query`: through the admin socket, or
// from the files with --dir.
func (a *app) cmdAuditQuery(ctx context.Context, args []string) error {
	fs := a.flagSet("audit query", "audit query [--since T] [--until T] [--tenant T] [--decision allow|deny] [--code C] [--limit N] [--dir DIR]", auditQueryHelp)
	since := fs.String("since", "", "RFC 3339 time or duration ago (e.g. 1h)")
	until := fs.String("until", "", "RFC 3339 time")
	tenant := fs.String("tenant", "", "tenant")
	decision := fs.String("decision", "", "allow or deny")
	code := fs.String("code", "", "error code")
	limit := fs.Int("limit", 1000, "at most N records")
	dir := fs.String("dir", "", "read the log directly from `DIR` instead of the admin socket")
	if err := fs.parse(args); err != nil {
		return err
	}
	s, err := parseSince(*since)
	if err != nil {
		return usagef("--since: %v", err)
	}
	if *dir != "" {
		f := audit.Filter{Since: s, Tenant: *tenant, Decision: *decision, Code: *code, Limit: *limit}
		if *until != "" {
			if f.Until, err = time.Parse(time.RFC3339, *until); err != nil {
				return usagef("--until: want RFC 3339")
			}
		}
		enc := json.NewEncoder(a.stdout)
		return audit.Query(*dir, f, func(r audit.Record) error { return enc.Encode(&r) })
	}
	q := proto.AuditQuery{Since: s, Tenant: *tenant, Decision: *decision, Code: *code, Limit: *limit}
	if *until != "" {
		if q.Until, err = time.Parse(time.RFC3339, *until); err != nil {
			return usagef("--until: want RFC 3339")
		}
	}
	enc := json.NewEncoder(a.stdout)
	return a.admin().Audit(ctx, q, func(r proto.AuditRecord) error { return enc.Encode(&r) })
}

// cmdAuditTail is `signerctl audit tail`: like audit query, through the
// admin socket, or from the files with --dir.
func (a *app) cmdAuditTail(ctx context.Context, args []string) error {
	fs := a.flagSet("audit tail", "audit tail [-n N] [-f] [--interval D] [--dir DIR]", auditTailHelp)
	n := fs.Int("n", 20, "print the last `N` records")
	follow := fs.Bool("f", false, "follow: keep printing new records until interrupted")
	interval := fs.Duration("interval", time.Second, "with -f through the admin socket: how often to ask for new records")
	dir := fs.String("dir", "", "read the log directly from `DIR` instead of the admin socket")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *n < 0 {
		return usagef("-n must not be negative")
	}
	if *interval <= 0 {
		return usagef("--interval must be positive")
	}
	enc := json.NewEncoder(a.stdout)
	emit := func(r audit.Record) error { return enc.Encode(&r) }
	var err error
	if *dir != "" {
		err = audit.Tail(ctx, *dir, *n, *follow, emit)
	} else {
		err = a.adminTail(ctx, *n, *follow, *interval, emit)
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// cmdAuditExport is `signerctl audit export`, through the admin socket.
func (a *app) cmdAuditExport(ctx context.Context, args []string) error {
	fs := a.flagSet("audit export", "audit export --to DIR [--rotate]", "Copy the closed audit segments not yet exported into DIR (absolute, on the agent's host) with a manifest, through the admin socket; retention may then delete them.")
	to := fs.String("to", "", "destination `DIR` (absolute)")
	rotate := fs.Bool("rotate", false, "close the active segment first, so every record so far is exported")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *to == "" {
		return usagef("--to is required")
	}
	m, err := a.admin().AuditExport(ctx, proto.AuditExportRequest{Dir: *to, Rotate: *rotate})
	if err != nil {
		return err
	}
	return printJSON(a.stdout, m)
}

func parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	return time.Parse(time.RFC3339, s)
}

const auditVerifyHelp = `Walk the audit log's hash chain across all segments (offline) and report
the first broken, missing, reordered or truncated record. Exit status 1
when the chain does not hold.

Repaired tails are listed with their count: the ends of segments the log
cut off (a write torn by a crash) or left in place (a write that failed
and could not be cut off) when it reopened, each declared by a notice
record in the chain. Neither removes an acknowledged record; a DAMAGED
entry means unreadable bytes were found where acknowledged records may
have been. --json reports them as repairedTails and repairs.`

const auditQueryHelp = `Print audit records as JSON lines, oldest first, through the admin socket
(GET /admin/v1/audit) or, with --dir, straight from the log files.`

const auditTailHelp = `Print the last N audit records as JSON lines, oldest first, and with -f
keep printing new ones until interrupted. Like 'audit query', it asks the
agent through the admin socket (GET /admin/v1/audit, paging by sequence
number; -f asks again every --interval), or, with --dir, reads the log
files directly (-f then follows the files).`
