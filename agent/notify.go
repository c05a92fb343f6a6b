package agent

import (
	"context"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// sdNotify sends a state to systemd's NOTIFY_SOCKET; without one it does
// nothing.
func sdNotify(state string) { _, _ = daemon.SdNotify(false, state) }

// watchdog pings systemd at half the WatchdogSec interval while ctx lives.
// The ping comes from the serving loop's own goroutine scheduler, so a wedged
// process stops pinging and systemd restarts it.
func (a *Agent) watchdog(ctx context.Context) error {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		a.log.Warn("watchdog settings", zap.Error(err))
		return nil
	}
	if interval <= 0 {
		return nil
	}
	every(ctx, interval/2, func() { a.notify("WATCHDOG=1") })
	return nil
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, as RELOADING=1 wants.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Sec*1_000_000 + ts.Nsec/1_000
}
