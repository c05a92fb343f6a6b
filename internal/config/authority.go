package config

import (
	"strings"
	"time"
)

// Authority configures OpTok verification (SPEC §5).
type Authority struct {
	Issuer        string `yaml:"issuer,omitempty"`
	Audience      string `yaml:"audience,omitempty"`      // default "signer"
	RequiredScope string `yaml:"requiredScope,omitempty"` // default "signer.sign"
	// Installation, when set, must equal the token's inst claim.
	Installation string `yaml:"installation,omitempty"`
	// JWKSFile (offline nodes) or Discovery (fetch the issuer's
	// /.well-known/openid-configuration): exactly one.
	JWKSFile    string        `yaml:"jwksFile,omitempty"`
	Discovery   bool          `yaml:"discovery,omitempty"`
	Skew        time.Duration `yaml:"skew,omitempty"`        // default 30s
	MaxLifetime time.Duration `yaml:"maxLifetime,omitempty"` // default 10m
	// RefetchMinInterval rate-limits JWKS refetches on an unknown kid.
	RefetchMinInterval time.Duration `yaml:"refetchMinInterval,omitempty"` // default 30s
}

func (a *Authority) applyDefaults(base string) {
	setDefault(&a.Audience, "signer")
	setDefault(&a.RequiredScope, "signer.sign")
	a.JWKSFile = resolve(base, a.JWKSFile)
	setDefault(&a.Skew, 30*time.Second)
	setDefault(&a.MaxLifetime, 10*time.Minute)
	setDefault(&a.RefetchMinInterval, 30*time.Second)
}

func (a *Authority) validate(p *problems) {
	if a.Issuer == "" {
		p.add("authority.issuer", "required (nothing can be signed without caller authentication)")
	}
	if (a.JWKSFile == "") == !a.Discovery {
		p.add("authority", "set exactly one of jwksFile (offline) and discovery: true")
	}
	if a.Discovery && !strings.HasPrefix(a.Issuer, "https://") {
		p.add("authority.issuer", "discovery needs an https issuer")
	}
	if a.Audience != "signer" {
		p.add("authority.audience", `must be "signer"`)
	}
	if a.Skew < 0 || a.Skew > 5*time.Minute {
		p.add("authority.skew", "between 0 and 5m")
	}
	if a.MaxLifetime <= 0 || a.MaxLifetime > time.Hour {
		p.add("authority.maxLifetime", "between 1s and 1h")
	}
}
