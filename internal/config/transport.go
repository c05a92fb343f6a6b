package config

import "time"

// Transport defaults.
const (
	DefaultMaxBodyBytes      = 32 << 20
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 120 * time.Second
	DefaultIdleTimeout       = 90 * time.Second
	DefaultDrainTimeout      = 20 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
)

// Transport holds the HTTP limits.
type Transport struct {
	MaxBodyBytes      int64         `yaml:"maxBodyBytes,omitempty"`
	MaxHeaderBytes    int           `yaml:"maxHeaderBytes,omitempty"`
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout,omitempty"`
	ReadTimeout       time.Duration `yaml:"readTimeout,omitempty"`
	WriteTimeout      time.Duration `yaml:"writeTimeout,omitempty"`
	IdleTimeout       time.Duration `yaml:"idleTimeout,omitempty"`
	DrainTimeout      time.Duration `yaml:"drainTimeout,omitempty"`
}

func (t *Transport) applyDefaults() {
	setDefault(&t.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&t.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&t.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&t.ReadTimeout, DefaultReadTimeout)
	setDefault(&t.WriteTimeout, DefaultWriteTimeout)
	setDefault(&t.IdleTimeout, DefaultIdleTimeout)
	setDefault(&t.DrainTimeout, DefaultDrainTimeout)
}

func (t *Transport) validate(p *problems) {
	if t.MaxBodyBytes < 1024 {
		p.add("transport.maxBodyBytes", "at least 1024")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"readHeaderTimeout", t.ReadHeaderTimeout},
		{"readTimeout", t.ReadTimeout},
		{"writeTimeout", t.WriteTimeout},
		{"idleTimeout", t.IdleTimeout},
		{"drainTimeout", t.DrainTimeout},
	} {
		if d.v < 0 {
			p.add("transport."+d.key, "must be positive")
		}
	}
}

// setDefault sets *v to def when it is the zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
