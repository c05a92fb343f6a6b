package config

// Per-tenant keyless policy (SPEC §8.1): tenants[].keyless.
//
//	tenants:
//	  - id: tenant-a
//	    keyless: allowed   # off (default) | allowed | required
//
//   - off: a request with options.mode keyless is refused (403
//     key_unavailable).
//   - allowed: options.mode keyless signs with the keyless backend; a
//     request without a mode signs with the tenant's default key. When
//     the keyless backend fails (Fulcio, the timestamp authority or the
//     agent's identity token), the tenant's fallbackKey signs instead, if
//     it has one (audited, counted); otherwise 503
//     signing_backend_unavailable.
//   - required: every request signs keylessly: a request without a mode
//     is keyless, and one that asks for keyful signing (options.mode
//     keyful, or key ids without options.mode keyless) is refused (403
//     key_unavailable). There is no keyful fallback.
//
// allowed and required need the keyless block (keyless.fulcioURL …).

// Keyless policy values.
const (
	KeylessOff      = "off"
	KeylessAllowed  = "allowed"
	KeylessRequired = "required"
)

// KeylessKeyID is the key id keyless signatures carry (the envelope's
// keyid, signingIdentity.keyId, the audit record's keyIds): no configured
// key may use it.
const KeylessKeyID = "keyless"

// KeylessPolicy returns the tenant's keyless policy (off when unset).
func (t *Tenant) KeylessPolicy() string {
	if t == nil || t.Keyless == "" {
		return KeylessOff
	}
	return t.Keyless
}

func (c *Config) applyKeylessPolicyDefaults() {
	for i := range c.Tenants {
		setDefault(&c.Tenants[i].Keyless, KeylessOff)
	}
}

// validateKeylessPolicy checks every tenant's keyless policy and that no
// key is named like keyless signatures.
func (c *Config) validateKeylessPolicy(p *problems) {
	for i, t := range c.Tenants {
		switch t.Keyless {
		case KeylessOff, "":
		case KeylessAllowed, KeylessRequired:
			if !c.Keyless.Enabled() {
				p.add(indexKey("tenants", i, "keyless"), "%q needs keyless signing configured (keyless.fulcioURL, tsaURL, identity)", t.Keyless)
			}
		default:
			p.add(indexKey("tenants", i, "keyless"), "want off, allowed or required")
		}
	}
	for i, k := range c.Keys {
		if k.ID == KeylessKeyID {
			p.add(indexKey("keys", i, "id"), "%q is reserved for keyless signatures", KeylessKeyID)
		}
	}
}
