package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/stellaops/signer-agent/internal/config"
)

// raiseNOFILE sets the soft RLIMIT_NOFILE to the hard limit (SPEC §3) and
// logs both. Every connection holds a descriptor; the agent's own caps
// (limits.maxConnections, limits.adminMaxConnections) are meant to be hit
// long before the process runs out, so the soft limit must not be the
// usual 1024. The Go runtime already raises it when the process starts
// (and restores the original for the processes it starts); doing it here
// again makes it explicit, and logs what the agent has to work with. The
// hard limit is the unit's LimitNOFILE= under systemd.
func raiseNOFILE(log *zap.Logger) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("cannot read RLIMIT_NOFILE", zap.Error(err))
		return
	}
	if lim.Cur < lim.Max {
		soft := lim.Cur
		lim.Cur = lim.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			log.Warn("cannot raise RLIMIT_NOFILE to its hard limit", zap.Uint64("soft", soft), zap.Uint64("hard", lim.Max), zap.Error(err))
			return
		}
	}
	log.Info("open file limit (RLIMIT_NOFILE, soft raised to hard)", zap.Uint64("soft", lim.Cur), zap.Uint64("hard", lim.Max))
}

// memoryLimitEnv is the Go runtime's own setting, which wins over the
// configuration.
const memoryLimitEnv = "GOMEMLIMIT"

// applyMemoryLimit sets the Go runtime's soft memory limit from
// limits.memoryLimit (SPEC §3), unless GOMEMLIMIT is set (the runtime read
// it at start). -1 leaves the runtime without a limit. It returns what is
// in force and where it came from.
func applyMemoryLimit(r config.Resources) (limit int64, source string) {
	if v, ok := os.LookupEnv(memoryLimitEnv); ok && v != "" {
		return debug.SetMemoryLimit(-1), memoryLimitEnv + "=" + v
	}
	if r.MemoryLimit <= 0 {
		return debug.SetMemoryLimit(-1), "none (limits.memoryLimit: -1)"
	}
	debug.SetMemoryLimit(r.MemoryLimit)
	return r.MemoryLimit, fmt.Sprintf("limits.memoryLimit (%d MiB)", r.MemoryLimit>>20)
}
