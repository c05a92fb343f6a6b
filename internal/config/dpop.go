package config

import (
	"net/url"
	"time"

	"github.com/stellaops/signer-agent/proto"
)

// DPoP configures sender binding (RFC 9449).
type DPoP struct {
	HTUBase       string        `yaml:"htuBase,omitempty"`       // default "http://signer-agent"
	NonceRequired *bool         `yaml:"nonceRequired,omitempty"` // default true
	NonceWindow   time.Duration `yaml:"nonceWindow,omitempty"`   // default 5m
}

// NonceIsRequired reports the effective nonce setting.
func (d DPoP) NonceIsRequired() bool { return d.NonceRequired == nil || *d.NonceRequired }

func (d *DPoP) applyDefaults() {
	setDefault(&d.HTUBase, "http://"+proto.Host)
	setDefault(&d.NonceWindow, 5*time.Minute)
}

func (d *DPoP) validate(p *problems) {
	if u, err := url.Parse(d.HTUBase); err != nil || u.Scheme == "" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		p.add("dpop.htuBase", "want scheme://host without path or query")
	}
	if d.NonceWindow < 10*time.Second || d.NonceWindow > time.Hour {
		p.add("dpop.nonceWindow", "between 10s and 1h")
	}
}
