package agent

import (
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/stellaops/signer-agent/internal/config"
)

// fdReserve is the number of file descriptors the connection caps leave to
// the rest of the agent: audit segments, lock and state files, key
// backends (PKCS#11 sessions, TPM), the file watcher, the metrics listener
// and its scrapes, HTTP clients (JWKS, licensing, registry, Fulcio), the
// quota store's connection pool, the journal socket.
const fdReserve = 256

// fitConnCaps returns the connection limits to enforce: the configured
// ones, lowered when the process's open-file limit (nofile, the soft
// RLIMIT_NOFILE) could not hold them. A cap above what the descriptors
// allow never fires: accept fails with EMFILE first, on every socket the
// admin one included, which is the outage the caps exist to prevent
// (issue #12). So each capped listener (api, and the TCP one when it
// listens: each has the full cap) gets an equal share of nofile minus the
// admin socket's cap and fdReserve, at least 1. It reports whether it
// lowered anything.
func fitConnCaps(lim config.Resources, nofile uint64, listeners int) (config.Resources, bool) {
	need := uint64(listeners)*uint64(lim.MaxConnections) + uint64(lim.AdminMaxConnections) + fdReserve
	if nofile >= need || listeners < 1 {
		return lim, false
	}
	share := 1
	if room := int64(nofile) - int64(lim.AdminMaxConnections) - fdReserve; room > int64(listeners) {
		share = int(room / int64(listeners))
	}
	lim.MaxConnections = share
	lim.MaxConnectionsPerPeer = min(lim.MaxConnectionsPerPeer, share)
	return lim, true
}

// connCaps is fitConnCaps for this process, logging a lowered cap.
func (a *Agent) connCaps(lim config.Resources, listeners int) config.Resources {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		a.log.Warn("cannot read RLIMIT_NOFILE; connection caps as configured", zap.Error(err))
		return lim
	}
	fit, lowered := fitConnCaps(lim, rl.Cur, listeners)
	if lowered {
		a.log.Warn("open file limit too low for the configured connection caps; caps lowered (raise LimitNOFILE= or lower limits.maxConnections)",
			zap.Uint64("nofile", rl.Cur),
			zap.Int("maxConnections", lim.MaxConnections), zap.Int("maxConnectionsInForce", fit.MaxConnections),
			zap.Int("maxConnectionsPerPeer", lim.MaxConnectionsPerPeer), zap.Int("maxConnectionsPerPeerInForce", fit.MaxConnectionsPerPeer),
			zap.Int("adminMaxConnections", lim.AdminMaxConnections), zap.Int("reserved", fdReserve))
	}
	return fit
}
