package agent

import (
	"context"
	"sort"
	"strings"
	"time"
)

// statusLoop mirrors readiness in systemd's STATUS= and the signer_ready
// gauge, every 10 s, when it changes.
func (a *Agent) statusLoop(ctx context.Context) error {
	last := ""
	every(ctx, 10*time.Second, func() {
		snap := a.acquire()
		h := a.readiness(snap)
		snap.release()
		line := "ready"
		if h.Status != "ok" {
			var bad []string
			for k, v := range h.Checks {
				if !strings.HasPrefix(v, "ok") {
					bad = append(bad, k+": "+v)
				}
			}
			sort.Strings(bad)
			line = "NOT READY: " + strings.Join(bad, "; ")
		}
		a.metrics.SetReady(h.Status == "ok")
		if line != last {
			a.notify("STATUS=" + oneLine(line+"; "+a.statusText()))
			last = line
		}
	})
	return nil
}

func (a *Agent) setStatus(s string) { a.status.Store(s) }

func (a *Agent) statusText() string {
	s, _ := a.status.Load().(string)
	return s
}
