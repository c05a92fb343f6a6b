package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// rotationsFile holds key rotations made through the admin API, applied
// over the configuration at every load: the operator's YAML is never
// rewritten by the agent.
const rotationsFile = "key-rotations.yaml"

type rotationList struct {
	Rotations []rotation `yaml:"rotations"`
}

// rotation replaces key From by key To: To becomes active with From's
// tenants and takes over as default (and fallback) key where From was; From
// becomes verify-only.
type rotation struct {
	From string    `yaml:"from"`
	To   string    `yaml:"to"`
	URI  string    `yaml:"uri"`
	At   time.Time `yaml:"at"`
}

func rotationsPath(cfg *config.Config) string { return filepath.Join(cfg.StateDir, rotationsFile) }

func loadRotations(cfg *config.Config) ([]rotation, error) {
	b, err := os.ReadFile(rotationsPath(cfg))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("key rotations: %w", err)
	}
	var rl rotationList
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rl); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("key rotations: %w", err)
	}
	return rl.Rotations, nil
}

// applyRotations lays the recorded rotations over a loaded configuration.
func applyRotations(cfg *config.Config) error {
	rs, err := loadRotations(cfg)
	if err != nil {
		return err
	}
	for _, r := range rs {
		var from *config.Key
		for i := range cfg.Keys {
			if cfg.Keys[i].ID == r.From {
				from = &cfg.Keys[i]
			}
			if cfg.Keys[i].ID == r.To {
				return fmt.Errorf("key rotations: key %q already exists in the configuration", r.To)
			}
		}
		if from == nil {
			continue // the configuration no longer has the old key
		}
		from.Status = proto.KeyStatusVerifyOnly
		cfg.Keys = append(cfg.Keys, config.Key{ID: r.To, URI: r.URI, Tenants: append([]string(nil), from.Tenants...), Status: proto.KeyStatusActive})
		for i := range cfg.Tenants {
			if cfg.Tenants[i].DefaultKey == r.From {
				cfg.Tenants[i].DefaultKey = r.To
			}
		}
	}
	return nil
}

// rotateKey records a rotation of key id to newID; when uri is empty and
// the old key is a file key, a new key of the same algorithm is generated
// in the state directory.
func (a *Agent) rotateKey(old *keyEntry, newID, uri string) (string, error) {
	a.keyAdminMu.Lock()
	defer a.keyAdminMu.Unlock()
	cfg := a.Config()
	if _, ok := a.snap.Load().keys[newID]; ok {
		return "", fmt.Errorf("key %q already exists", newID)
	}
	if uri == "" {
		if old.source != "file" {
			return "", fmt.Errorf("give the new key's uri: %s keys are created with signerctl keys create", old.source)
		}
		p := filepath.Join(cfg.StateDir, "keys", newID+".pem")
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return "", err
		}
		if _, err := os.Stat(p); err == nil {
			return "", fmt.Errorf("%s exists", p)
		}
		k, err := keys.GenerateFileKey(p, old.algorithm)
		if err != nil {
			return "", err
		}
		_ = k.Close()
		uri = "file:" + p
	}
	rs, err := loadRotations(cfg)
	if err != nil {
		return "", err
	}
	rs = append(rs, rotation{From: old.cfg.ID, To: newID, URI: uri, At: a.now().UTC().Truncate(time.Second)})
	b, err := yaml.Marshal(&rotationList{Rotations: rs})
	if err != nil {
		return "", err
	}
	p := rotationsPath(cfg)
	if err := os.WriteFile(p+".tmp", append([]byte("# Key rotations made through signer-agent's admin API.\n"), b...), 0o600); err != nil {
		return "", err
	}
	return uri, os.Rename(p+".tmp", p)
}

// undoRotation drops the last recorded rotation (its reload failed).
func (a *Agent) undoRotation() {
	a.keyAdminMu.Lock()
	defer a.keyAdminMu.Unlock()
	cfg := a.Config()
	rs, err := loadRotations(cfg)
	if err != nil || len(rs) == 0 {
		return
	}
	b, err := yaml.Marshal(&rotationList{Rotations: rs[:len(rs)-1]})
	if err != nil {
		return
	}
	p := rotationsPath(cfg)
	if os.WriteFile(p+".tmp", b, 0o600) == nil {
		_ = os.Rename(p+".tmp", p)
	}
}
