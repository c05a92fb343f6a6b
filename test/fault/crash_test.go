package fault

import (
	"testing"
	"time"
)

// TestKill9UnderLoad: eight callers sign while the agent is killed with
// SIGKILL, again and again (once in the short form, for the soak's
// duration in the soak); after each restart no 200's record is missing,
// and every allow record is a 200 or an answer the kill cut off.
func TestKill9UnderLoad(t *testing.T) {
	p := newAgent(t, procOptions{})
	l := newLedger(t, p)
	// The short form kills once; the soak keeps killing, after 100
	// signatures and up to 5 s of load each time, for its duration.
	start, rounds := time.Now(), 0
	for rounds == 0 || time.Since(start) < soak(t) {
		rounds++
		ld := startLoad(t, p, l, 8)
		want := l.okN.Load() + 100
		waitFor(t, 60*time.Second, "100 signatures under load", func() bool { return l.okN.Load() >= want })
		if soak(t) > 0 {
			time.Sleep(time.Duration(rounds%5+1) * time.Second)
		}
		p.kill9() // mid-load
		ld.halt()
		p.start() // the log recovers at open
	}
	// After the last crash the agent still signs.
	ld := startLoad(t, p, l, 2)
	want := l.okN.Load() + 10
	waitFor(t, 60*time.Second, "signatures after the restart", func() bool { return l.okN.Load() >= want })
	ld.halt()
	finish(t, p, l, checkOpts{crashed: true})
	t.Logf("%d kill -9 rounds: %s", rounds, l)
}
