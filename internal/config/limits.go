package config

// Limits are agent-wide limits.
type Limits struct {
	// GlobalConcurrency caps signing requests in flight across all
	// tenants, protecting slow key backends (0: unlimited).
	GlobalConcurrency int `yaml:"globalConcurrency,omitempty"`
	// Resources are the connection, memory and audit-flood limits
	// (resources.go).
	Resources `yaml:",inline"`
}

func (l *Limits) validate(p *problems) {
	if l.GlobalConcurrency < 0 {
		p.add("limits.globalConcurrency", "must not be negative")
	}
}
