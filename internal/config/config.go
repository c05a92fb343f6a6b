// Package config loads and validates the agent's YAML configuration
// (SPEC §12). Files are `version: 1`; unknown keys are refused; every value
// is validated before the agent uses it; relative paths are resolved against
// the directory of the config file.
//
// Each section of the file (listen, transport, authority, …) lives in its
// own file here: its type, an applyDefaults method and a validate method
// that reports bad values through problems, naming the key. A new section
// adds such a file and one line each to Config.applyDefaults and
// Config.Validate.
//
// Decode and Marshal read and write a file as written (no defaults), for
// tools and tests that edit a configuration.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// Version is the only configuration version this build reads.
const Version = 1

// DefaultStateDir is stateDir's default.
const DefaultStateDir = "/var/lib/signer-agent"

// Config is one validated configuration snapshot. It is immutable once
// returned by Load: reloads build a new one.
//
// Every field is tagged omitempty: a zero value means "the default", so
// Marshal writes only what is set and Decode reads it back the same.
type Config struct {
	Version   int       `yaml:"version,omitempty"`
	StateDir  string    `yaml:"stateDir,omitempty"`
	Listen    Listen    `yaml:"listen,omitempty"`
	Transport Transport `yaml:"transport,omitempty"`
	Peers     Peers     `yaml:"peers,omitempty"`
	Authority Authority `yaml:"authority,omitempty"`
	DPoP      DPoP      `yaml:"dpop,omitempty"`
	// Entitlement configures Proof-of-Entitlement checks (SPEC §6).
	Entitlement Entitlement `yaml:"entitlement,omitempty"`
	// Release configures scanner release integrity (SPEC §7).
	Release Release  `yaml:"release,omitempty"`
	Plans   []Plan   `yaml:"plans,omitempty"`
	Limits  Limits   `yaml:"limits,omitempty"`
	Tenants []Tenant `yaml:"tenants,omitempty"`
	Keys    []Key    `yaml:"keys,omitempty"`
	// Keyless configures keyless signing (keyless.go).
	Keyless Keyless `yaml:"keyless,omitempty"`
	// RevocationList is a watched YAML file of revoked key ids
	// (revoked: [{id, reason, at}]); default <stateDir>/revoked-keys.yaml.
	// POST /admin/v1/keys/{id}/revoke appends to it.
	RevocationList string  `yaml:"revocationList,omitempty"`
	Audit          Audit   `yaml:"audit,omitempty"`
	Metrics        Metrics `yaml:"metrics,omitempty"`
	Logging        Logging `yaml:"logging,omitempty"`
	// Quota says where plan quotas are counted (SPEC §16; quota.go).
	Quota Quota `yaml:"quota,omitempty"`
	// Idempotency keeps answers for retries (SPEC §4.6; idempotency.go).
	Idempotency Idempotency `yaml:"idempotency,omitempty"`

	// path is the file the config was loaded from (empty for in-memory);
	// digest is "sha256:<hex>" of its bytes.
	path   string
	digest string
}

// Path is the file the config came from.
func (c *Config) Path() string { return c.path }

// Digest is "sha256:<hex>" of the configuration file's bytes as loaded.
func (c *Config) Digest() string { return c.digest }

// Load reads, parses and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config path: %w", err)
	}
	return Parse(b, filepath.Dir(abs), abs)
}

// Parse parses and validates config bytes. Relative paths resolve against
// baseDir. file is recorded as the config's path (may be empty).
func Parse(b []byte, baseDir, file string) (*Config, error) {
	c, err := Decode(b)
	if err != nil {
		return nil, err
	}
	c.path = file
	c.digest = digestOf(b)
	c.applyDefaults(baseDir)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Decode parses exactly one YAML document as written: unknown keys are
// refused, but no default is applied, no path resolved and nothing
// validated. It is for tools that edit a config file and write it back
// with Marshal; the agent uses Load.
func Decode(b []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config: empty document")
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("config: more than one YAML document")
	}
	return &c, nil
}

// Marshal renders c as YAML (two-space indent, fields in declaration
// order, zero values left out). Decode or Parse of the result gives back
// the same configuration; comments of the original file are not kept.
func (c *Config) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// applyDefaults fills every unset value and makes relative paths absolute
// against base, section by section. stateDir comes first: the audit
// directory and the revocation list default to paths under it.
func (c *Config) applyDefaults(base string) {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	c.StateDir = resolve(base, c.StateDir)
	c.Keyless.applyDefaults(base)
	c.applyKeylessPolicyDefaults()
	c.Listen.applyDefaults(base)
	c.Transport.applyDefaults()
	c.Limits.Resources.applyDefaults()
	c.applyQuotaDefaults(base)
	c.applyKeyDefaults(base)
	c.Authority.applyDefaults(base)
	c.Release.applyDefaults(base)
	c.Entitlement.applyDefaults(base)
	c.DPoP.applyDefaults()
	c.Audit.applyDefaults(base, c.StateDir)
	c.Idempotency.applyDefaults(base, c.StateDir)
	if c.RevocationList == "" {
		c.RevocationList = filepath.Join(c.StateDir, "revoked-keys.yaml")
	}
	c.RevocationList = resolve(base, c.RevocationList)
	c.Metrics.applyDefaults()
	c.Logging.applyDefaults()
}

// Validate checks a config with defaults applied and reports every problem
// at once, each naming its key.
func (c *Config) Validate() error {
	p := &problems{}
	if c.Version != Version {
		p.add("version", "must be %d, got %d", Version, c.Version)
	}
	c.Listen.validate(p)
	c.Transport.validate(p)
	c.Authority.validate(p)
	c.DPoP.validate(p)
	c.Entitlement.validate(p)
	c.Release.validate(p)
	c.validateTenants(p)
	c.validatePlans(p)
	c.Audit.validate(p)
	c.Idempotency.validate(p)
	c.Limits.validate(p)
	c.Limits.Resources.validate(p, c.Transport.MaxBodyBytes)
	for _, err := range c.validateQuota() {
		p.errs = append(p.errs, err)
	}
	c.validateKeys(p)
	c.Metrics.validate(p)
	c.Logging.validate(p)
	for _, err := range c.validateKeyless() {
		p.errs = append(p.errs, err)
	}
	c.validateKeylessPolicy(p)
	return p.err()
}

// resolve makes a relative path absolute against base.
func resolve(base, p string) string {
	if p == "" || filepath.IsAbs(p) || base == "" {
		return p
	}
	return filepath.Join(base, p)
}
