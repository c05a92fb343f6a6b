package harness

import (
	"os"
	"testing"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/devauth"
)

// EditConfig rewrites the config file at path through its typed form: the
// file is decoded as written (config.Decode: no defaults applied, unknown
// keys refused), edit changes it, and it is written back atomically
// (config.Marshal, WriteAtomic), so a running agent's file watch sees one
// change. Comments are not kept. Use it through Options.Edit before an
// agent starts, or on h.Config to test a reload.
//
//	harness.EditConfig(t, h.Config, func(c *config.Config) {
//		c.Tenant(devauth.Tenant).PredicateTypes = append(c.Tenant(devauth.Tenant).PredicateTypes, newType)
//	})
func EditConfig(t testing.TB, path string, edit func(c *config.Config)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Decode(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	edit(c)
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	WriteAtomic(t, path, string(out))
}

// DevTenant returns the dev config's tenant (devauth.Tenant); it panics
// when an edit removed it, which is a bug in the test.
func DevTenant(c *config.Config) *config.Tenant {
	tn := c.Tenant(devauth.Tenant)
	if tn == nil {
		panic("harness: the config has no tenant " + devauth.Tenant)
	}
	return tn
}

// DevPlan returns the dev config's plan (devauth.Plan); it panics when an
// edit removed it.
func DevPlan(c *config.Config) *config.Plan {
	p := c.PlanByName(devauth.Plan)
	if p == nil {
		panic("harness: the config has no plan " + devauth.Plan)
	}
	return p
}

// WithKey is an edit that adds key id (uri) for the dev tenant.
func WithKey(id, uri string) func(c *config.Config) {
	return func(c *config.Config) {
		c.Keys = append(c.Keys, config.Key{ID: id, URI: uri, Tenants: []string{devauth.Tenant}})
	}
}

// WithDefaultKey is an edit that adds key id (uri) for the dev tenant and
// makes it the tenant's default key.
func WithDefaultKey(id, uri string) func(c *config.Config) {
	return func(c *config.Config) {
		WithKey(id, uri)(c)
		DevTenant(c).DefaultKey = id
	}
}
