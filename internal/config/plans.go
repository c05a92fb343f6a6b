package config

// Plan is a named set of quotas (SPEC §1 step 6). Zero means unlimited.
type Plan struct {
	Name             string  `yaml:"name,omitempty"`
	QPS              float64 `yaml:"qps,omitempty"`
	Burst            int     `yaml:"burst,omitempty"`
	Concurrency      int     `yaml:"concurrency,omitempty"`
	MaxArtifactBytes int64   `yaml:"maxArtifactBytes,omitempty"`
	ArtifactsPerDay  int64   `yaml:"artifactsPerDay,omitempty"`
}

// PlanByName returns the named plan, or nil.
func (c *Config) PlanByName(name string) *Plan {
	for i := range c.Plans {
		if c.Plans[i].Name == name {
			return &c.Plans[i]
		}
	}
	return nil
}

func (c *Config) validatePlans(p *problems) {
	seen := map[string]bool{}
	for i, pl := range c.Plans {
		if pl.Name == "" || seen[pl.Name] {
			p.add(indexKey("plans", i, "name"), "required and unique")
		}
		seen[pl.Name] = true
		if pl.QPS < 0 || pl.Burst < 0 || pl.Concurrency < 0 || pl.MaxArtifactBytes < 0 || pl.ArtifactsPerDay < 0 {
			p.add(indexKey("plans", i, ""), "limits must not be negative")
		}
		if pl.QPS > 0 && pl.Burst < 1 {
			p.add(indexKey("plans", i, "burst"), "at least 1 when qps is set")
		}
	}
}

// planNames is the set of configured plan names.
func (c *Config) planNames() map[string]bool {
	names := map[string]bool{}
	for _, pl := range c.Plans {
		names[pl.Name] = true
	}
	return names
}
