package fault

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// countRecords counts the records since t0 that match, through the admin
// socket.
func countRecords(t *testing.T, p *agentProc, t0 time.Time, match func(proto.AuditRecord) bool) int {
	t.Helper()
	n := 0
	err := p.adminClient().Audit(context.Background(), proto.AuditQuery{Since: t0, Limit: proto.MaxAuditQueryLimit}, func(r proto.AuditRecord) error {
		// The query's Since has second precision; the records do not.
		if !r.Time.Before(t0) && match(r) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func refusedReload(r proto.AuditRecord) bool {
	return r.Gate == "load" && r.RequestID == "config-reload" && strings.HasPrefix(r.Reason, "configuration reload refused")
}

func appliedReload(r proto.AuditRecord) bool {
	return r.Gate == "load" && r.RequestID == "config-reload" && r.ConfigDigest != ""
}

// TestCorruptedConfig: while callers sign, the config file is replaced by
// broken ones (named cases). Each is refused three ways — the file watch,
// SIGHUP, the admin reload — and each refusal is audited, while the
// running configuration keeps signing. The good file comes back and is
// applied. A start on a broken file fails and says why.
func TestCorruptedConfig(t *testing.T) {
	p := newAgent(t, procOptions{})
	l := newLedger(t, p)
	good, err := os.ReadFile(p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := config.Load(p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	goodDigest := loaded.Digest()
	edit := func(f func(c *config.Config)) string {
		c, err := config.Decode(good)
		if err != nil {
			t.Fatal(err)
		}
		f(c)
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cases := []struct{ name, content string }{
		{"not YAML", "version: 1\nkeys: [unterminated\n"},
		{"empty file", ""},
		{"unknown key", string(good) + "\nbogus: true\n"},
		{"invalid limit", edit(func(c *config.Config) { c.Limits.MaxConnections = -5 })},
		{"key file missing", edit(func(c *config.Config) { c.Keys[0].URI = "file:" + filepath.Join(p.dir, "keys", "absent.pem") })},
		{"binary garbage", "\x00\xff\xfe\x01garbage\x00"},
	}
	ld := startLoad(t, p, l, 2)
	defer ld.halt()
	waitFor(t, 60*time.Second, "signatures", func() bool { return l.okN.Load() >= 10 })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t0 := time.Now()
			harness.WriteAtomic(t, p.cfg, c.content)
			waitFor(t, 30*time.Second, "the watch's refused reload record", func() bool { return countRecords(t, p, t0, refusedReload) >= 1 })
			p.signal(syscall.SIGHUP)
			waitFor(t, 30*time.Second, "the SIGHUP's refused reload record", func() bool { return countRecords(t, p, t0, refusedReload) >= 2 })
			if _, err := p.adminClient().Reload(context.Background()); err == nil {
				t.Fatal("the admin reload accepted a broken config")
			}
			if n := countRecords(t, p, t0, refusedReload); n < 3 {
				t.Fatalf("%d refused reload records, want 3", n)
			}
			// The running configuration still signs.
			want := l.okN.Load() + 10
			waitFor(t, 60*time.Second, "signatures on the running config", func() bool { return l.okN.Load() >= want })
			if n := countRecords(t, p, t0, func(r proto.AuditRecord) bool { return appliedReload(r) && r.ConfigDigest != goodDigest }); n != 0 {
				t.Fatalf("%d reloads applied from a broken file", n)
			}
			harness.WriteAtomic(t, p.cfg, string(good))
			waitFor(t, 30*time.Second, "the good config applied again", func() bool { return countRecords(t, p, t0, appliedReload) >= 1 })
		})
	}
	if d := loadFor(t, 0, 1); d > 0 {
		time.Sleep(d)
	}
	ld.halt()

	// A broken file at start: the agent does not serve, and says why.
	p.stop()
	harness.WriteAtomic(t, p.cfg, "version: 1\nkeys: [unterminated\n")
	if err := p.tryStart(); err == nil {
		t.Fatal("the agent started on a broken config")
	}
	if lg := p.log(); !strings.Contains(tail(lg, 3), "config") {
		t.Fatalf("no reason in the log:\n%s", tail(lg, 5))
	}
	harness.WriteAtomic(t, p.cfg, string(good))
	p.start()
	finish(t, p, l, checkOpts{})
}

// TestJWKSOutage: the Authority's JWKS file disappears, then comes back
// corrupted. Callers keep signing with tokens the cached keys verify, and
// readyz says the refresh failed and cached keys serve. A SIGHUP keeps the
// verifier and its cached keys (the authority settings did not change);
// a configuration change that needs a new verifier is refused (and
// audited) while the file is unusable, and the running configuration
// stays. Once the file is back, readyz is ok and the change applies.
func TestJWKSOutage(t *testing.T) {
	p := newAgent(t, procOptions{})
	l := newLedger(t, p)
	jwks := filepath.Join(p.dir, "authority", "jwks.json")
	good, err := os.ReadFile(jwks)
	if err != nil {
		t.Fatal(err)
	}
	goodCfg, err := os.ReadFile(p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	authority := func() string { return (&harnessHealth{p}).check(t, "authority") }
	ld := startLoad(t, p, l, 2)
	defer ld.halt()
	waitFor(t, 60*time.Second, "signatures", func() bool { return l.okN.Load() >= 10 })

	for i, c := range []struct {
		name   string
		change func()
	}{
		{"file removed", func() {
			if err := os.Remove(jwks); err != nil {
				t.Fatal(err)
			}
		}},
		{"file corrupted", func() { harness.WriteAtomic(t, jwks, `{"keys": [ {"kty": "EC"`) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t0 := time.Now()
			c.change()
			waitFor(t, 30*time.Second, "readyz to report the failed refresh", func() bool {
				return strings.Contains(authority(), "last refresh failed")
			})
			p.signal(syscall.SIGHUP)
			waitFor(t, 30*time.Second, "the SIGHUP reload (same authority settings: cached keys kept)", func() bool {
				return countRecords(t, p, t0, appliedReload) >= 1
			})
			// A change that needs the JWKS again is refused.
			harness.EditConfig(t, p.cfg, func(c *config.Config) { c.Authority.Skew = time.Duration(31+i) * time.Second })
			waitFor(t, 30*time.Second, "the refused reload record", func() bool { return countRecords(t, p, t0, refusedReload) >= 1 })
			if !strings.Contains(authority(), "last refresh failed") {
				t.Fatalf("authority check %q after the refused reload", authority())
			}
			want := l.okN.Load() + 10
			time.Sleep(loadFor(t, 0, 2))
			waitFor(t, 60*time.Second, "signatures with the cached keys", func() bool { return l.okN.Load() >= want })

			t1 := time.Now()
			harness.WriteAtomic(t, jwks, string(good))
			waitFor(t, 30*time.Second, "readyz authority ok", func() bool { return authority() == "ok" })
			p.signal(syscall.SIGHUP)
			waitFor(t, 30*time.Second, "the changed config applied", func() bool { return countRecords(t, p, t1, appliedReload) >= 1 })
			// Back to the original config, applied before the next case
			// breaks the file again.
			t2 := time.Now()
			harness.WriteAtomic(t, p.cfg, string(goodCfg))
			waitFor(t, 30*time.Second, "the original config applied", func() bool { return countRecords(t, p, t2, appliedReload) >= 1 })
		})
	}
	ld.halt()
	finish(t, p, l, checkOpts{})
}
