package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"time"
)

// Keyless configures keyless signing (SPEC §8.1): where Fulcio and the
// timestamp authority are, and the agent's own OIDC identity. Without a
// fulcioURL keyless signing is off.
//
//	keyless:
//	  fulcioURL: https://fulcio.example
//	  tsaURL: https://tsa.example/api/v1/timestamp
//	  fulcioChainFile: /etc/signer-agent/trust/fulcio.pem   # optional; else Fulcio's trust bundle
//	  tsaChainFile: /etc/signer-agent/trust/tsa.pem         # optional; timestamps are checked against it
//	  timeout: 10s
//	  reuseWindow: 0s                                       # 0: a new key and certificate per request
//	  identity:
//	    tokenFile: /var/run/secrets/tokens/sigstore          # a projected service-account token, or
//	    clientCredentials:                                   # client credentials at the Authority
//	      tokenURL: https://authority.example/token
//	      clientID: signer-agent-node-1
//	      clientSecretFile: /etc/signer-agent/keyless.secret
//	      audience: sigstore
type Keyless struct {
	FulcioURL       string          `yaml:"fulcioURL,omitempty"`
	TSAURL          string          `yaml:"tsaURL,omitempty"`
	FulcioChainFile string          `yaml:"fulcioChainFile,omitempty"`
	TSAChainFile    string          `yaml:"tsaChainFile,omitempty"`
	Timeout         time.Duration   `yaml:"timeout,omitempty"`
	ReuseWindow     time.Duration   `yaml:"reuseWindow,omitempty"`
	Identity        KeylessIdentity `yaml:"identity,omitempty"`
}

// KeylessIdentity is where the agent's identity token comes from: exactly
// one of TokenFile and ClientCredentials.
type KeylessIdentity struct {
	TokenFile         string                    `yaml:"tokenFile,omitempty"`
	ClientCredentials *KeylessClientCredentials `yaml:"clientCredentials,omitempty"`
}

// KeylessClientCredentials is an OAuth 2.0 client at the Authority.
type KeylessClientCredentials struct {
	TokenURL         string   `yaml:"tokenURL,omitempty"`
	ClientID         string   `yaml:"clientID,omitempty"`
	ClientSecretFile string   `yaml:"clientSecretFile,omitempty"`
	Audience         string   `yaml:"audience,omitempty"` // default "sigstore"
	Scopes           []string `yaml:"scopes,omitempty"`
}

// Keyless defaults.
const (
	DefaultKeylessTimeout = 10 * time.Second
	maxKeylessReuse       = 5 * time.Minute
)

// Enabled reports whether keyless signing is configured.
func (k *Keyless) Enabled() bool { return k.FulcioURL != "" }

// Files returns the files the keyless signer reads when it is built: the
// Fulcio and TSA chain files and the client secret file (not the identity
// token file, which it re-reads per request). Nil when keyless is off.
func (k *Keyless) Files() []string {
	if !k.Enabled() {
		return nil
	}
	var out []string
	for _, f := range []string{k.FulcioChainFile, k.TSAChainFile} {
		if f != "" {
			out = append(out, f)
		}
	}
	if cc := k.Identity.ClientCredentials; cc != nil && cc.ClientSecretFile != "" {
		out = append(out, cc.ClientSecretFile)
	}
	return out
}

func (k *Keyless) applyDefaults(base string) {
	if !k.Enabled() {
		return
	}
	if k.Timeout == 0 {
		k.Timeout = DefaultKeylessTimeout
	}
	k.FulcioChainFile = resolve(base, k.FulcioChainFile)
	k.TSAChainFile = resolve(base, k.TSAChainFile)
	k.Identity.TokenFile = resolve(base, k.Identity.TokenFile)
	if cc := k.Identity.ClientCredentials; cc != nil {
		cc.ClientSecretFile = resolve(base, cc.ClientSecretFile)
		if cc.Audience == "" {
			cc.Audience = "sigstore"
		}
	}
}

// validateKeyless checks the keyless block and every key's
// certificateChainFile (which must exist and hold PEM certificates).
func (c *Config) validateKeyless() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for i, key := range c.Keys {
		if key.CertificateChainFile == "" {
			continue
		}
		if _, err := ReadCertificateChain(key.CertificateChainFile); err != nil {
			add("keys[%d].certificateChainFile: %v", i, err)
		}
	}
	k := c.Keyless
	if !k.Enabled() {
		if k.TSAURL != "" || k.Identity.TokenFile != "" || k.Identity.ClientCredentials != nil {
			add("keyless: fulcioURL is required when keyless is configured")
		}
		return errs
	}
	checkURL := func(name, v string) {
		u, err := url.Parse(v)
		switch {
		case err != nil || u.Host == "":
			add("keyless.%s: want an absolute URL", name)
		case u.Scheme == "https":
		case u.Scheme == "http" && isLoopback(u.Hostname()):
		default:
			add("keyless.%s: want https (http only on loopback)", name)
		}
	}
	checkURL("fulcioURL", k.FulcioURL)
	if k.TSAURL == "" {
		add("keyless.tsaURL: required (keyless signatures are timestamped)")
	} else {
		checkURL("tsaURL", k.TSAURL)
	}
	if k.Timeout < 0 || k.Timeout > time.Minute {
		add("keyless.timeout: want 0 (default 10s) up to 1m")
	}
	if k.ReuseWindow < 0 || k.ReuseWindow > maxKeylessReuse {
		add("keyless.reuseWindow: want 0 up to %s", maxKeylessReuse)
	}
	for name, f := range map[string]string{"fulcioChainFile": k.FulcioChainFile, "tsaChainFile": k.TSAChainFile} {
		if f == "" {
			continue
		}
		if _, err := ReadCertificateChain(f); err != nil {
			add("keyless.%s: %v", name, err)
		}
	}
	id := k.Identity
	switch cc := id.ClientCredentials; {
	case id.TokenFile == "" && cc == nil:
		add("keyless.identity: give tokenFile or clientCredentials")
	case id.TokenFile != "" && cc != nil:
		add("keyless.identity: give tokenFile or clientCredentials, not both")
	case cc != nil:
		if cc.ClientID == "" || cc.ClientSecretFile == "" {
			add("keyless.identity.clientCredentials: clientID and clientSecretFile are required")
		}
		if cc.TokenURL == "" {
			add("keyless.identity.clientCredentials.tokenURL: required")
		} else {
			checkURL("identity.clientCredentials.tokenURL", cc.TokenURL)
		}
	}
	return errs
}

// ReadCertificateChain reads a PEM file of certificates (leaf first); it
// must hold at least one and nothing but CERTIFICATE blocks.
func ReadCertificateChain(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCertificateChain(b)
}

// ParseCertificateChain parses PEM certificates (leaf first).
func ParseCertificateChain(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q is not a CERTIFICATE", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no PEM certificate")
	}
	return out, nil
}
