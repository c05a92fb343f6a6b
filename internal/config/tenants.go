package config

import "slices"

// Tenant is one tenant's signing policy.
type Tenant struct {
	ID             string   `yaml:"id,omitempty"`
	PredicateTypes []string `yaml:"predicateTypes,omitempty"`
	DefaultKey     string   `yaml:"defaultKey,omitempty"`
	// FallbackKey signs when the default key's backend fails (HSM gone,
	// TPM error); the switch is audited and counted.
	FallbackKey string `yaml:"fallbackKey,omitempty"`
	// Plan names the tenant's plan until its Proof-of-Entitlement names
	// one; empty: no plan limits.
	Plan string `yaml:"plan,omitempty"`
	// Keyless is the tenant's keyless signing policy: off (the default),
	// allowed or required (keylesspolicy.go).
	Keyless string `yaml:"keyless,omitempty"`
}

// Tenant returns the tenant with id, or nil.
func (c *Config) Tenant(id string) *Tenant {
	for i := range c.Tenants {
		if c.Tenants[i].ID == id {
			return &c.Tenants[i]
		}
	}
	return nil
}

// validateTenants checks each tenant and its references to plans and keys.
func (c *Config) validateTenants(p *problems) {
	seen := map[string]bool{}
	plans := c.planNames()
	keys := c.keysByID()
	for i, t := range c.Tenants {
		key := func(field string) string { return indexKey("tenants", i, field) }
		if t.ID == "" {
			p.add(key("id"), "required")
		}
		if seen[t.ID] {
			p.add(key("id"), "duplicate %q", t.ID)
		}
		seen[t.ID] = true
		if len(t.PredicateTypes) == 0 {
			p.add(key("predicateTypes"), "at least one (nothing could be signed)")
		}
		if t.Plan != "" && !plans[t.Plan] {
			p.add(key("plan"), "unknown plan %q", t.Plan)
		}
		if t.FallbackKey != "" {
			k := keys[t.FallbackKey]
			switch {
			case k == nil:
				p.add(key("fallbackKey"), "unknown key %q", t.FallbackKey)
			case !slices.Contains(k.Tenants, t.ID):
				p.add(key("fallbackKey"), "key %q does not serve tenant %q", t.FallbackKey, t.ID)
			case t.FallbackKey == t.DefaultKey:
				p.add(key("fallbackKey"), "must differ from defaultKey")
			}
		}
		if t.DefaultKey != "" {
			k := keys[t.DefaultKey]
			switch {
			case k == nil:
				p.add(key("defaultKey"), "unknown key %q", t.DefaultKey)
			case !slices.Contains(k.Tenants, t.ID):
				p.add(key("defaultKey"), "key %q does not serve tenant %q", t.DefaultKey, t.ID)
			}
		}
	}
}

// tenantIDs is the set of configured tenant ids.
func (c *Config) tenantIDs() map[string]bool {
	ids := map[string]bool{}
	for _, t := range c.Tenants {
		ids[t.ID] = true
	}
	return ids
}
