package harness

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stellaops/signer-agent/agent"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/devauth"
)

// TestEditConfigRoundTrip: an edit that changes nothing leaves the dev
// config loading exactly as before, and an edit is what loads after.
func TestEditConfigRoundTrip(t *testing.T) {
	dir := ShortTempDir(t)
	path, err := agent.SetupDev(dir)
	if err != nil {
		t.Fatal(err)
	}
	before, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	EditConfig(t, path, func(*config.Config) {})
	after, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// The file's bytes (comments) and so its digest change; nothing else.
	if !cmp.Equal(before, after, cmpopts.IgnoreUnexported(config.Config{})) {
		t.Fatalf("a no-op edit changed the loaded config\nbefore %+v\nafter  %+v", before, after)
	}

	EditConfig(t, path, func(c *config.Config) {
		WithDefaultKey("second", "memory:second")(c)
		DevPlan(c).Concurrency = 1
		c.Transport.MaxBodyBytes = 4096
	})
	edited, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	k := edited.Keys[len(edited.Keys)-1]
	if k.ID != "second" || k.URI != "memory:second" || !reflect.DeepEqual(k.Tenants, []string{devauth.Tenant}) {
		t.Fatalf("key not added: %+v", k)
	}
	if edited.Tenant(devauth.Tenant).DefaultKey != "second" || edited.PlanByName(devauth.Plan).Concurrency != 1 || edited.Transport.MaxBodyBytes != 4096 {
		t.Fatalf("edits not applied: %+v %+v %+v", edited.Tenant(devauth.Tenant), edited.PlanByName(devauth.Plan), edited.Transport)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("config mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestEditConfigRefusesUnknownKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("version: 1\nbogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := &fatalRecorder{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil && r != errFatal {
				panic(r)
			}
		}()
		EditConfig(rec, path, func(*config.Config) { t.Error("edit called for an unreadable config") })
	}()
	if !rec.failed {
		t.Fatal("EditConfig accepted a config with an unknown key")
	}
}

// fatalRecorder records a Fatal/Fatalf and unwinds with errFatal instead
// of failing the real test.
type fatalRecorder struct {
	testing.TB
	failed bool
}

var errFatal = errors.New("fatal")

func (f *fatalRecorder) Helper()               {}
func (f *fatalRecorder) Fatal(...any)          { f.failed = true; panic(errFatal) }
func (f *fatalRecorder) Fatalf(string, ...any) { f.failed = true; panic(errFatal) }
