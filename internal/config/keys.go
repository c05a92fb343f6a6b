package config

import (
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// Key is a configured signing key.
type Key struct {
	ID        string     `yaml:"id,omitempty"`
	URI       string     `yaml:"uri,omitempty"`
	Tenants   []string   `yaml:"tenants,omitempty"`
	Status    string     `yaml:"status,omitempty"` // active (default), verify-only, revoked
	NotBefore *time.Time `yaml:"notBefore,omitempty"`
	NotAfter  *time.Time `yaml:"notAfter,omitempty"`
	// CertificateChainFile is a PEM chain for the key, leaf first
	// (keyless.go).
	CertificateChainFile string `yaml:"certificateChainFile,omitempty"`
}

func (c *Config) applyKeyDefaults(base string) {
	for i := range c.Keys {
		setDefault(&c.Keys[i].Status, proto.KeyStatusActive)
		c.Keys[i].URI = resolveKeyURI(base, c.Keys[i].URI)
		c.Keys[i].CertificateChainFile = resolve(base, c.Keys[i].CertificateChainFile)
	}
}

// resolveKeyURI makes a relative file: path absolute against base.
func resolveKeyURI(base, uri string) string {
	rest, ok := strings.CutPrefix(uri, "file:")
	if !ok || strings.HasPrefix(rest, "/") || base == "" {
		return uri
	}
	return "file:" + filepath.Join(base, rest)
}

func (c *Config) validateKeys(p *problems) {
	tenants := c.tenantIDs()
	seen := map[string]bool{}
	for i := range c.Keys {
		k := &c.Keys[i]
		key := func(field string) string { return indexKey("keys", i, field) }
		if k.ID == "" {
			p.add(key("id"), "required")
		}
		if seen[k.ID] {
			p.add(key("id"), "duplicate %q", k.ID)
		}
		seen[k.ID] = true
		if keys.Scheme(k.URI) == "" {
			p.add(key("uri"), "want scheme:…")
		}
		switch k.Status {
		case proto.KeyStatusActive, proto.KeyStatusVerifyOnly, proto.KeyStatusRevoked:
		default:
			p.add(key("status"), "want active, verify-only or revoked")
		}
		if k.NotBefore != nil && k.NotAfter != nil && !k.NotAfter.After(*k.NotBefore) {
			p.add(key(""), "notAfter must be after notBefore")
		}
		if len(k.Tenants) == 0 {
			p.add(key("tenants"), "at least one")
		}
		for _, t := range k.Tenants {
			if !tenants[t] {
				p.add(key("tenants"), "unknown tenant %q", t)
			}
		}
	}
}

// keysByID maps key ids to keys (the last one for a duplicate id, which
// validateKeys reports).
func (c *Config) keysByID() map[string]*Key {
	ids := map[string]*Key{}
	for i := range c.Keys {
		ids[c.Keys[i].ID] = &c.Keys[i]
	}
	return ids
}

// keyFiles returns the local files a file: key URI names (the key and its
// password file).
func keyFiles(uri string) []string {
	if keys.Scheme(uri) != "file" {
		return nil
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil
	}
	p := u.Path
	if p == "" {
		p = u.Opaque
	}
	out := []string{p}
	if pf := u.Query().Get("password-file"); pf != "" {
		out = append(out, pf)
	}
	return out
}
