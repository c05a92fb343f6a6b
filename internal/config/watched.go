package config

// WatchedFiles lists the files whose change should trigger a reload: the
// config file itself, file: keys and their password files, keys'
// certificate chain files, the release allowlist and keys, the revocation
// list, the licensing keys, and the keyless chain and client secret files
// (not the identity token file: the keyless backend re-reads it itself).
func (c *Config) WatchedFiles() []string {
	var out []string
	if c.path != "" {
		out = append(out, c.path)
	}
	for _, k := range c.Keys {
		out = append(out, keyFiles(k.URI)...)
		if k.CertificateChainFile != "" {
			out = append(out, k.CertificateChainFile)
		}
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
	return append(out, c.Keyless.Files()...)
}
