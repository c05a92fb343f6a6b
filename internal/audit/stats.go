package audit

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a Log's counters, for metrics.
type Stats struct {
	// Appends counts records made durable (including Notice records).
	Appends uint64
	// Failed counts Appends that returned an error.
	Failed uint64
	// Batches counts group commits.
	Batches uint64
	// Fsyncs counts fdatasync/fsync calls on segments and the directory.
	Fsyncs uint64
	// Bytes counts bytes written to segments.
	Bytes uint64
	// Rotations counts segments started because the active one was full
	// (or Rotate was called).
	Rotations uint64
	// Recoveries counts Recovery entries written in Notice records.
	Recoveries uint64
	// Pruned counts segments deleted by retention.
	Pruned uint64
	// PreallocatedBytes counts zero-filled bytes written ahead of the
	// records.
	PreallocatedBytes uint64
	// QueueDepth is the number of requests waiting for the writer.
	QueueDepth int
	// LastSeq is the seq of the last durable record.
	LastSeq uint64
	// LastCommitLatency is how long the last group commit took (writes
	// and fdatasyncs).
	LastCommitLatency time.Duration
	// LastAppendLatency is how long the last successful Append waited,
	// queueing included.
	LastAppendLatency time.Duration
	// Unavailable is true while the last commit failed: Appends fail until
	// a write succeeds again.
	Unavailable bool
	// SyncMode is how segments are flushed: SyncAIO or SyncBlocking.
	SyncMode string
	// SyncFallback says why SyncMode is SyncBlocking.
	SyncFallback string
}

// Sync modes (Stats.SyncMode).
const (
	// SyncAIO: fdatasync runs as a Linux AIO flush and the writer waits on
	// the runtime's poller, leaving its P to the request handlers.
	SyncAIO = "aio"
	// SyncBlocking: a blocking fdatasync(2).
	SyncBlocking = "fdatasync"
)

type counters struct {
	appends, failed, batches, fsyncs, bytes atomic.Uint64
	rotations, recoveries, pruned, lastSeq  atomic.Uint64
	prealloc                                atomic.Uint64
	lastCommit, lastAppend                  atomic.Int64
	room                                    atomic.Int64 // preallocated space ahead of the records (Ready)
	unavailable                             atomic.Bool
}

// Stats returns the current counters.
func (l *Log) Stats() Stats {
	st := Stats{
		Appends:           l.st.appends.Load(),
		Failed:            l.st.failed.Load(),
		Batches:           l.st.batches.Load(),
		Fsyncs:            l.st.fsyncs.Load(),
		Bytes:             l.st.bytes.Load(),
		Rotations:         l.st.rotations.Load(),
		Recoveries:        l.st.recoveries.Load(),
		Pruned:            l.st.pruned.Load(),
		PreallocatedBytes: l.st.prealloc.Load(),
		QueueDepth:        len(l.reqs),
		LastSeq:           l.st.lastSeq.Load(),
		LastCommitLatency: time.Duration(l.st.lastCommit.Load()),
		LastAppendLatency: time.Duration(l.st.lastAppend.Load()),
		Unavailable:       l.st.unavailable.Load(),
	}
	st.SyncMode, st.SyncFallback = l.syncMode()
	return st
}

func (l *Log) syncMode() (mode, fallback string) {
	if l.aio == nil {
		return SyncBlocking, l.syncWhy
	}
	if why := l.aio.Failure(); why != "" {
		return SyncBlocking, why
	}
	return SyncAIO, ""
}

// Observer is told what the Log does, so the agent can feed histograms
// and logs without this package depending on either. Committed is called
// from the writer goroutine after every group commit and must be quick;
// Event may come from the writer or the maintenance goroutine.
type Observer interface {
	Committed(Commit)
	Event(Event)
}

// Commit describes one group commit.
type Commit struct {
	// Records were made durable; Failed were answered with Err.
	Records, Failed int
	Bytes           int
	// Latency covers the writes and fdatasyncs of the commit.
	Latency time.Duration
	Err     error
}

// Event kinds.
const (
	EventRotated        = "rotated"         // a new segment was started
	EventRecovered      = "recovered"       // Open repaired the end of a segment
	EventAbandoned      = "abandoned"       // a segment was left with a failed write in it
	EventWriteFailed    = "write_failed"    // a repair step failed (the Append error says the rest)
	EventPreallocFailed = "prealloc_failed" // zero-filling space ahead of the records failed
	EventPruned         = "pruned"          // retention deleted a segment
	EventPruneFailed    = "prune_failed"    // retention could not run
)

// Event is a maintenance event worth a log line.
type Event struct {
	Kind    string
	Segment string
	Detail  string
	Err     error
}

type nopObserver struct{}

func (nopObserver) Committed(Commit) {}
func (nopObserver) Event(Event)      {}
