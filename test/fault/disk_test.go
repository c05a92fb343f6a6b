package fault

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/testtools"
	"github.com/stellaops/signer-agent/proto"
)

// readyz asks the api socket's readyz and returns its audit check.
func readyz(t *testing.T, p *agentProc) (ok bool, auditCheck string) {
	t.Helper()
	c := &client.Client{Socket: p.api}
	defer c.CloseIdleConnections()
	h, err := c.Ready(context.Background())
	if h == nil {
		t.Fatalf("readyz: %v", err)
	}
	return err == nil && h.Status == "ok", h.Checks["audit"]
}

// TestDiskFull: the audit log lives on a 16 MiB tmpfs (256 MiB in the
// soak). While callers
// sign, the disk fills up: signing stops with audit_unavailable (nothing
// is signed that cannot be audited) and readyz says why. Space comes
// back: signing resumes by itself. Restarted on a full or nearly full
// disk, readyz is not ok before any write has failed (or, when not even
// the start can be audited, the agent does not serve at all).
func TestDiskFull(t *testing.T) {
	size := "16m"
	if soak(t) > 0 {
		size = "256m" // the soak's records alone would fill 16 MiB
	}
	needRoot(t, "a full disk is a small tmpfs")
	mnt := testtools.MountTmpfs(t, size)
	p := newAgent(t, procOptions{edit: func(c *config.Config) {
		c.Audit.Dir = filepath.Join(mnt, "audit")
		c.Audit.PreallocateBytes = 64 << 10
	}})
	l := newLedger(t, p)
	ld := startLoad(t, p, l, 4)
	waitFor(t, 60*time.Second, "signatures", func() bool { return l.okN.Load() >= 20 })

	filler := testtools.Fill(t, mnt, 0)
	waitFor(t, 60*time.Second, "audit_unavailable refusals on the full disk", func() bool {
		return l.codes()[proto.CodeAuditUnavailable] >= 5
	})
	if ok, check := readyz(t, p); ok || !strings.Contains(check, "unavailable") {
		t.Fatalf("readyz on a full disk: ok %v, audit %q", ok, check)
	}
	time.Sleep(loadFor(t, 0, 3)) // soak: stay full a while

	// Space comes back: signing resumes without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	resumed := l.okN.Load() + 20
	waitFor(t, 60*time.Second, "signatures after space came back", func() bool { return l.okN.Load() >= resumed })
	if ok, check := readyz(t, p); !ok {
		t.Fatalf("readyz after space came back: audit %q", check)
	}
	time.Sleep(loadFor(t, 0, 3))
	ld.halt()
	t.Logf("full and back: %s", l)

	// A restart on a full disk: either the start cannot be audited and
	// the agent does not serve, or its start record fits in the slack of
	// the segment's last block (a tmpfs page here) and readyz is not ok
	// before any write has failed.
	p.stop()
	filler = testtools.Fill(t, mnt, 0)
	if err := p.tryStart(); err != nil {
		if lg := p.log(); !strings.Contains(lg, "could not be audited") {
			t.Fatalf("the agent did not start on a full disk, and does not say why:\n%s", tail(lg, 10))
		}
		t.Logf("restart on a full disk: refused (%v)", err)
	} else {
		ok, check := readyz(t, p)
		if ok || !strings.Contains(check, "nearly full") {
			t.Fatalf("readyz right after a restart on a full disk: ok %v, audit %q", ok, check)
		}
		t.Logf("restart on a full disk: serving, not ready: %s", check)
		p.stop()
	}

	// Nearly full: it starts (its start record fits) but is not ready,
	// before any write has failed.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	filler = testtools.Fill(t, mnt, 256<<10)
	p.start()
	ok, check := readyz(t, p)
	if ok || !strings.Contains(check, "nearly full") {
		t.Fatalf("readyz on a nearly full disk right after the start: ok %v, audit %q", ok, check)
	}
	t.Logf("readyz after a restart on a nearly full disk: %s", check)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if ok, check := readyz(t, p); !ok {
		t.Fatalf("readyz with space: audit %q", check)
	}
	finish(t, p, l, checkOpts{unaudited: []proto.Code{proto.CodeAuditUnavailable}})
}

// harnessHealth reads one readiness check of an agent.
type harnessHealth struct{ p *agentProc }

func (h *harnessHealth) check(t *testing.T, name string) string {
	t.Helper()
	c := &client.Client{Socket: h.p.api}
	defer c.CloseIdleConnections()
	hl, err := c.Ready(context.Background())
	if hl == nil {
		t.Fatalf("readyz: %v", err)
	}
	return hl.Checks[name]
}
