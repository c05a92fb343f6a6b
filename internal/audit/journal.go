package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/coreos/go-systemd/v22/journal"
)

// Forwarder receives the record lines of every commit once they are
// durable, in chain order (LogConfig.Forwarder). Forward is called from the
// Log's writer: it must not block, and lines is valid only during the call.
type Forwarder interface {
	Forward(lines []byte)
}

// DefaultJournalQueue is how many commits a JournalForwarder holds while
// journald is slow; more are dropped (and counted).
const DefaultJournalQueue = 4096

// JournalForwarder copies each durable record to the systemd journal
// (go-systemd's native protocol on /run/systemd/journal/socket), for
// shipping off the node with the journal. The audit log stays the record:
// forwarding is asynchronous and best effort, never delays or fails an
// Append, and a full queue drops entries (counted in Stats). Each entry
// carries the exact chained line in SIGNER_AUDIT_RECORD, so a shipped copy
// can be checked against the chain, plus fields to filter on:
//
//	journalctl SYSLOG_IDENTIFIER=signer-agent-audit SIGNER_DECISION=deny
type JournalForwarder struct {
	queue chan []byte
	done  chan struct{}
	once  sync.Once
	send  func(msg string, p journal.Priority, vars map[string]string) error

	sent, dropped, failed atomic.Uint64
}

// JournalStats counts what a JournalForwarder did with the records.
type JournalStats struct {
	Sent, Dropped, Failed uint64
}

// JournalAvailable reports whether journald's socket is there to write to.
func JournalAvailable() bool { return journal.Enabled() }

// NewJournalForwarder starts a forwarder with room for queue commits
// (DefaultJournalQueue when queue <= 0). Close it after the Log.
func NewJournalForwarder(queue int) *JournalForwarder {
	if queue <= 0 {
		queue = DefaultJournalQueue
	}
	j := &JournalForwarder{queue: make(chan []byte, queue), done: make(chan struct{}), send: journal.Send}
	go j.run()
	return j
}

// Forward implements Forwarder.
func (j *JournalForwarder) Forward(lines []byte) {
	select {
	case j.queue <- bytes.Clone(lines):
	default:
		j.dropped.Add(uint64(bytes.Count(lines, []byte{'\n'})))
	}
}

// Close sends what is queued and stops the forwarder. Forward must not be
// called after Close (close the Log first).
func (j *JournalForwarder) Close() error {
	j.once.Do(func() { close(j.queue) })
	<-j.done
	return nil
}

// Stats returns the counters.
func (j *JournalForwarder) Stats() JournalStats {
	return JournalStats{Sent: j.sent.Load(), Dropped: j.dropped.Load(), Failed: j.failed.Load()}
}

func (j *JournalForwarder) run() {
	defer close(j.done)
	for lines := range j.queue {
		for len(lines) > 0 {
			i := bytes.IndexByte(lines, '\n')
			if i < 0 {
				i = len(lines)
			}
			line := lines[:i]
			lines = lines[min(i+1, len(lines)):]
			msg, pri, vars := journalEntry(line)
			if err := j.send(msg, pri, vars); err != nil {
				j.failed.Add(1)
				continue
			}
			j.sent.Add(1)
		}
	}
}

// journalEntry maps one record line to a journal entry.
func journalEntry(line []byte) (string, journal.Priority, map[string]string) {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		// The writer encoded it: this cannot happen, but the line is still
		// worth shipping.
		return "audit record (undecodable)", journal.PriWarning, map[string]string{
			"SYSLOG_IDENTIFIER":   "signer-agent-audit",
			"SIGNER_AUDIT_RECORD": string(line),
		}
	}
	pri := journal.PriInfo
	switch r.Decision {
	case Deny:
		pri = journal.PriNotice
	case Notice:
		pri = journal.PriWarning
	}
	vars := map[string]string{
		"SYSLOG_IDENTIFIER":      "signer-agent-audit",
		"SIGNER_AUDIT_SEQ":       strconv.FormatUint(r.Seq, 10),
		"SIGNER_AUDIT_HASH":      r.Hash,
		"SIGNER_AUDIT_PREV_HASH": r.PrevHash,
		"SIGNER_AUDIT_ID":        r.AuditID,
		"SIGNER_DECISION":        r.Decision,
		"SIGNER_ROUTE":           r.Route,
		"SIGNER_AUDIT_RECORD":    string(line),
	}
	for k, v := range map[string]string{
		"SIGNER_REQUEST_ID": r.RequestID, "SIGNER_TRACE_ID": r.TraceID, "SIGNER_TENANT": r.Tenant,
		"SIGNER_CODE": r.Code, "SIGNER_GATE": r.Gate,
	} {
		if v != "" {
			vars[k] = v
		}
	}
	msg := fmt.Sprintf("audit seq=%d %s %s", r.Seq, r.Decision, r.Route)
	if r.Tenant != "" {
		msg += " tenant=" + r.Tenant
	}
	if r.Code != "" {
		msg += " code=" + r.Code
	}
	return msg, pri, vars
}
