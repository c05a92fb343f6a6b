// Package aiosync runs fdatasync through Linux native AIO, so the goroutine
// that waits for a flush parks on the runtime's poller instead of holding
// its P (and an OS thread) for the whole flush. The audit log's writer and
// the idempotency journal's writer use it; Sync falls back to a blocking
// fdatasync(2) where AIO is not available.
package aiosync
