package config

import (
	"net"
	"net/url"
	"time"
)

// Entitlement configures PoE verification: offline JWTs signed by the
// licensing key(s) in LicensingKeysFile, and/or online introspection.
type Entitlement struct {
	LicensingKeysFile string        `yaml:"licensingKeysFile,omitempty"` // PEM public key(s)
	Issuer            string        `yaml:"issuer,omitempty"`            // optional exact iss of JWT PoEs
	IntrospectionURL  string        `yaml:"introspectionURL,omitempty"`  // <url>/license/introspect
	Timeout           time.Duration `yaml:"timeout,omitempty"`           // default 3s
	Retries           int           `yaml:"retries,omitempty"`           // default 2
	CacheTTL          time.Duration `yaml:"cacheTTL,omitempty"`          // default 5m
	Grace             time.Duration `yaml:"grace,omitempty"`             // default 1h
}

func (e *Entitlement) applyDefaults(base string) {
	e.LicensingKeysFile = resolve(base, e.LicensingKeysFile)
	setDefault(&e.Timeout, 3*time.Second)
	setDefault(&e.Retries, 2)
	setDefault(&e.CacheTTL, 5*time.Minute)
	setDefault(&e.Grace, time.Hour)
}

func (e *Entitlement) validate(p *problems) {
	if e.LicensingKeysFile == "" && e.IntrospectionURL == "" {
		p.add("entitlement", "set licensingKeysFile (offline PoEs) and/or introspectionURL (online); nothing is signed without a PoE")
	} else if e.IntrospectionURL != "" {
		if u, err := url.Parse(e.IntrospectionURL); err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			p.add("entitlement.introspectionURL", "want https (http only to a loopback host)")
		}
	}
	if e.Retries < 0 || e.Retries > 10 || e.Timeout < 0 || e.Grace < 0 || e.CacheTTL < 0 {
		p.add("entitlement", "timeout, retries (0–10), cacheTTL and grace must not be negative")
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
