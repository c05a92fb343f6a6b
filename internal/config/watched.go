package config

// WatchedFiles lists the files whose change should trigger a reload: the
// config file itself, file: keys and their password files, the release
// allowlist and keys, the revocation list and the licensing keys.
func (c *Config) WatchedFiles() []string {
	var out []string
	if c.path != "" {
		out = append(out, c.path)
	}
	for _, k := range c.Keys {
		out = append(out, keyFiles(k.URI)...)
	}
	if c.Release.AllowlistFile != "" {
		out = append(out, c.Release.AllowlistFile)
	}
	if c.RevocationList != "" {
		out = append(out, c.RevocationList)
	}
	out = append(out, c.Release.KeyFiles...)
	if c.Entitlement.LicensingKeysFile != "" {
		out = append(out, c.Entitlement.LicensingKeysFile)
	}
	return out
}
