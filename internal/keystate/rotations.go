package keystate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/fsutil"
	"github.com/stellaops/signer-agent/proto"
)

// RotationsFile is the file, in the state directory, that holds the key
// rotations made through the admin API.
const RotationsFile = "key-rotations.yaml"

const rotationsHeader = "# Key rotations made through signer-agent's admin API.\n"

// Rotation replaces key From by key To: To becomes active with From's
// tenants and takes over as default key where From was; From becomes
// verify-only. To is unique among key ids, so it names the rotation.
type Rotation struct {
	From string    `yaml:"from"`
	To   string    `yaml:"to"`
	URI  string    `yaml:"uri"`
	At   time.Time `yaml:"at"`
	// Generated is the key file the agent generated for To (file keys
	// rotated without a URI); undoing the rotation removes it.
	Generated string `yaml:"generated,omitempty"`
}

type rotationList struct {
	Rotations []Rotation `yaml:"rotations"`
}

// RotationsPath is the rotations file of a configuration.
func RotationsPath(stateDir string) string { return filepath.Join(stateDir, RotationsFile) }

// LoadRotations reads the recorded rotations (none when the file is
// missing).
func LoadRotations(stateDir string) ([]Rotation, error) {
	var rl rotationList
	if err := readYAML(RotationsPath(stateDir), "key rotations", &rl); err != nil {
		return nil, err
	}
	return rl.Rotations, nil
}

// ApplyRotations lays the rotations recorded in cfg's state directory over
// the loaded configuration.
func ApplyRotations(cfg *config.Config) error {
	rs, err := LoadRotations(cfg.StateDir)
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

// AddRotation records r durably. A rotation onto an id already recorded is
// refused.
func AddRotation(stateDir string, r Rotation) error {
	rs, err := LoadRotations(stateDir)
	if err != nil {
		return err
	}
	for _, x := range rs {
		if x.To == r.To {
			return fmt.Errorf("key rotations: a rotation onto %q is already recorded", r.To)
		}
	}
	return writeRotations(stateDir, append(rs, r))
}

// UndoRotation removes the rotation onto key id to (and the key file it
// generated, if any). Other rotations, including ones recorded after it,
// stay. Undoing a rotation that is not recorded does nothing.
func UndoRotation(stateDir, to string) error {
	rs, err := LoadRotations(stateDir)
	if err != nil {
		return err
	}
	kept := rs[:0:0]
	var gone *Rotation
	for i := range rs {
		if rs[i].To == to && gone == nil {
			gone = &rs[i]
			continue
		}
		kept = append(kept, rs[i])
	}
	if gone == nil {
		return nil
	}
	if err := writeRotations(stateDir, kept); err != nil {
		return err
	}
	if gone.Generated != "" {
		if err := os.Remove(gone.Generated); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("key rotations: remove generated key: %w", err)
		}
		if err := fsutil.SyncDir(filepath.Dir(gone.Generated)); err != nil {
			return err
		}
	}
	return nil
}

func writeRotations(stateDir string, rs []Rotation) error {
	b, err := yaml.Marshal(&rotationList{Rotations: rs})
	if err != nil {
		return fmt.Errorf("key rotations: %w", err)
	}
	return fsutil.WriteFileAtomic(RotationsPath(stateDir), append([]byte(rotationsHeader), b...), 0o600)
}
